"""What `senti-edge quantize` is asked to do: one dataclass, plus the table of quantization types.

`QuantizeConfig` is built by the CLI (or by a caller) and written as `quantize.json` next to the
outputs, together with the results, so a rerun or the next stage needs nothing else.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SentiEdgeError



@dataclass(frozen=True)
class QuantType:
    """One output type: its llama.cpp file type and the verification thresholds against F16."""

    name: str  # lower case, as in file names: "q4_k_m"
    ftype: int  # llama_ftype (llama_cpp.LLAMA_FTYPE_MOSTLY_*)
    bits: float  # approximate bits per weight, for disk-space estimates
    min_agreement: float  # argmax-label agreement with the merged F16 file on the probe set
    max_kl: float  # mean KL(F16 || this) of the label distributions, in nats
    imatrix: bool = False  # quantize with the importance matrix (every type below 8 bits)


# ftype numbers are llama.cpp's `enum llama_ftype` (stable across versions; checked against
# llama_cpp.LLAMA_FTYPE_MOSTLY_* in tests). Thresholds are loose enough for a 135M model, whose
# 576-wide rows are the worst case for quantization, and whose close calls flip easily, and tight
# enough to catch a broken conversion (a wrong tensor layout gives chance agreement and KL > 0.3).
# Measured on SmolLM2-135M with a random LoRA, 32 probes: Q8_0 0.97 / 0.0005, Q4_K_M 0.84 / 0.009,
# Q4_0 0.84 / 0.017 (agreement / mean KL); the F16 file differed from torch by at most 0.033.
# The importance matrix matters even at 5 bits here: without it Q5_K_M (mostly Q5_1 after the
# fallback) had mean KL 0.048, worse than Q4_K_M with it (0.007).
QUANT_TYPES: dict[str, QuantType] = {
    q.name: q
    for q in (
        QuantType("q8_0", 7, 8.5, 0.95, 0.01),
        QuantType("q6_k", 18, 6.6, 0.92, 0.02, imatrix=True),
        QuantType("q5_k_m", 17, 5.7, 0.88, 0.05, imatrix=True),
        QuantType("q5_0", 8, 5.5, 0.88, 0.05, imatrix=True),
        QuantType("q4_k_m", 15, 4.9, 0.80, 0.10, imatrix=True),
        QuantType("q4_0", 2, 4.5, 0.80, 0.10, imatrix=True),
        # Q4_0's size, a non-linear codebook: llama.cpp's fast CPU matmul takes it (not Q4_1).
        QuantType("iq4_nl", 25, 4.5, 0.80, 0.10, imatrix=True),
    )
}
DEFAULT_TYPES = tuple(QUANT_TYPES)
F16_FTYPE = 1


def parse_types(spec: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """`"q8_0,Q4_0"` or a list -> normalised, de-duplicated names; `all` means every type."""
    items = re.split(r"[,\s]+", spec) if isinstance(spec, str) else list(spec)
    names: list[str] = []
    for item in items:
        item = item.strip().lower().replace("-", "_")
        if not item:
            continue
        if item == "all":
            names += [n for n in DEFAULT_TYPES if n not in names]
            continue
        if item not in QUANT_TYPES:
            raise SentiEdgeError(f"unknown quantization type {item!r}; choose from {', '.join(QUANT_TYPES)} or all")
        if item not in names:
            names.append(item)
    if not names:
        raise SentiEdgeError("no quantization type given; use e.g. --types q8_0,q4_k_m")
    return tuple(names)


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass
class QuantizeConfig:
    """Inputs, outputs and checks of one quantize run."""

    adapter: str | None = field(default=None, metadata={
        "help": "PEFT LoRA adapter directory (adapter_config.json); None: convert `base` as is"})
    base: str = field(default="smollm2-135m", metadata={
        "help": "base model: a registry name, a .gguf file, or a Hugging Face model directory"})
    out_dir: str = field(default="", metadata={"help": "directory for every output file"})
    name: str = field(default="", metadata={"help": "model name for files and the registry; default: the output directory name"})
    types: tuple[str, ...] = field(default=DEFAULT_TYPES, metadata={"help": "quantization types made from F16"})
    imatrix: bool = field(default=True, metadata={
        "help": "compute an importance matrix on calibration prompts for the types below 8 bits"})
    q8_direct: bool = field(default=False, metadata={
        "help": "make Q8_0 with the converter straight from the merged float32 weights instead of from F16"})
    export_lora: bool = field(default=True, metadata={"help": "also write the adapter alone as a GGUF LoRA"})
    register: bool = field(default=True, metadata={"help": "add the results to the user registry"})
    force: bool = field(default=False, metadata={"help": "overwrite existing outputs"})
    task: str = field(default="polarity", metadata={"help": "task whose labels the probe set is scored on"})
    probes: str | None = field(default=None, metadata={"help": "probe texts: a .txt (one per line) or .jsonl (field text); default: built-in set"})
    max_probes: int = field(default=64, metadata={"help": "use at most this many probe texts"})
    n_threads: int = field(default=0, metadata={"help": "CPU threads for conversion checks and quantization; 0: free cores"})
    max_f16_logit_diff: float = field(default=0.25, metadata={
        "help": "largest allowed label-logit difference between the F16 GGUF and the merged model in torch"})
    min_lora_agreement: float = field(default=0.9, metadata={
        "help": "least label agreement of base GGUF + GGUF LoRA with the merged F16 file"})
    strict: bool = field(default=True, metadata={"help": "fail (exit 1) when a check misses its threshold"})

    def __post_init__(self) -> None:
        self.types = parse_types(self.types)
        if not self.out_dir:
            raise SentiEdgeError("out_dir is empty; give an output directory with -o/--out")
        if not self.name:
            self.name = Path(self.out_dir).resolve().name
        if not _NAME.match(self.name):
            raise SentiEdgeError(f"name {self.name!r} is not a valid model name (letters, digits, . _ -; at most 64)")
        if self.max_probes < 4:
            raise SentiEdgeError(f"max_probes={self.max_probes} is too few to measure agreement; use 4 or more")
        if self.n_threads < 0:
            raise SentiEdgeError(f"n_threads={self.n_threads} must be 0 (auto) or positive")
        if self.adapter is None and self.export_lora:
            self.export_lora = False

    # -- output layout -------------------------------------------------------------------------

    @property
    def out(self) -> Path:
        return Path(self.out_dir)

    @property
    def merged_dir(self) -> Path:
        return self.out / "merged-hf"

    def gguf_path(self, qtype: str) -> Path:
        return self.out / f"{self.name}-{qtype}.gguf"

    @property
    def f16_path(self) -> Path:
        return self.gguf_path("f16")

    @property
    def lora_path(self) -> Path:
        return self.out / f"{self.name}-lora-f16.gguf"

    @property
    def card_path(self) -> Path:
        return self.out / "README.md"

    @property
    def report_path(self) -> Path:
        return self.out / "quantize.json"

    def outputs(self) -> list[Path]:
        paths = [self.merged_dir, self.f16_path, *(self.gguf_path(t) for t in self.types)]
        if self.export_lora:
            paths.append(self.lora_path)
        return paths + [self.card_path, self.report_path]

    def check_targets(self) -> None:
        """Refuse to overwrite earlier outputs unless `force`."""
        if self.force:
            return
        existing = [p for p in self.outputs() if p.exists()]
        if existing:
            more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
            raise SentiEdgeError(f"{existing[0]} exists{more}; pass --force to overwrite or choose another --out")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["types"] = list(self.types)
        return d

