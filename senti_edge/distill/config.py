"""What a distillation run does: one dataclass per part, loaded from a TOML recipe.

A recipe (`configs/distill-smollm2.toml`) has top-level keys (`out_dir`, `seed`, `student`) and
one table per part: `[teacher]`, `[corpus]`, `[knowdist]`, `[icldist]`, `[consistency]`, `[train]`. Unknown keys
and values of the wrong type are errors that name the key. `--set part.key=value` overrides
apply on top. The effective config is written as `config.json` into `out_dir`, so a rerun (or
the next stage) needs nothing else.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from ..errors import SentiEdgeError
from ..sentibench import DATASETS

PERSPECTIVES = ("polarity", "emotion", "aspects", "stance", "irony", "intensity")
QC_REASONS = ("teacher_error", "empty", "truncated", "off_format", "repetitive", "inconsistent")
PROVENANCE = "distill_config.json"  # in every trained adapter's directory: the config and the teacher data's manifests


def _check_choice(name: str, value: Any, choices: Sequence) -> None:
    if value not in choices:
        raise SentiEdgeError(f"{name} = {value!r} is not valid; choose one of {', '.join(map(str, choices))}")


def _check_positive(name: str, value: float, zero_ok: bool = False) -> None:
    if value < 0 or (value == 0 and not zero_ok):
        raise SentiEdgeError(f"{name} = {value!r} must be {'>= 0' if zero_ok else '> 0'}")


@dataclass
class TeacherConfig:
    backend: str = field(default="gguf", metadata={"help": "gguf (llama.cpp), openai (any OpenAI-compatible server) or hf (transformers)"})
    model: str = field(default="qwen2.5-coder-1.5b", metadata={"help": "registry name or .gguf path (gguf), model name (openai), HF dir (hf)"})
    url: str = field(default="http://127.0.0.1:8080/v1", metadata={"help": "openai: base URL of the server"})
    api_key_env: str = field(default="OPENAI_API_KEY", metadata={"help": "openai: environment variable holding the API key (may be unset)"})
    concurrency: int = field(default=4, metadata={"help": "openai: requests in flight"})
    max_retries: int = field(default=5, metadata={"help": "openai: retries per request, with exponential backoff"})
    backoff: float = field(default=1.0, metadata={"help": "openai: first backoff in seconds (doubles each retry)"})
    timeout: float = field(default=120.0, metadata={"help": "openai: seconds per request"})
    rate_limit: float = field(default=0.0, metadata={"help": "openai: requests per second at most (0: no limit)"})
    n_threads: int = field(default=0, metadata={"help": "gguf/hf: CPU threads (0: free cores)"})
    n_ctx: int = field(default=4096, metadata={"help": "gguf: context size"})
    max_errors: int = field(default=5, metadata={"help": "stop after this many teacher failures in a row"})

    def __post_init__(self):
        _check_choice("teacher.backend", self.backend, ("gguf", "openai", "hf"))
        _check_positive("teacher.concurrency", self.concurrency)
        _check_positive("teacher.max_retries", self.max_retries, zero_ok=True)
        _check_positive("teacher.rate_limit", self.rate_limit, zero_ok=True)
        _check_positive("teacher.max_errors", self.max_errors)


@dataclass
class CorpusConfig:
    sentibench_dir: str = field(default="", metadata={"help": "SentiBench root; only its train.json files are read"})
    datasets: list = field(default_factory=list, metadata={"help": "SentiBench datasets (e.g. sc/sst2); empty: all 12"})
    files: list = field(default_factory=list, metadata={"help": "your own texts: .txt (one per line), .jsonl, .csv (labelled with label_field)"})
    text_field: str = field(default="text", metadata={"help": "text field/column in .jsonl and .csv files"})
    label_field: str = field(default="", metadata={"help": "label field/column of labelled .jsonl/.csv files: each such file becomes an ICLDist task of its own"})
    max_texts: int = field(default=0, metadata={"help": "at most this many texts, drawn evenly across sources (0: all)"})

    def __post_init__(self):
        _check_positive("corpus.max_texts", self.max_texts, zero_ok=True)
        for d in self.datasets:
            if any(part in ("val", "test") or part.startswith(("val.", "test.")) for part in Path(d).parts):
                raise SentiEdgeError(f"corpus.datasets entry {d!r} names a val/test split; only train splits may be used")


@dataclass
class KnowDistConfig:
    enabled: bool = field(default=True, metadata={"help": "run stage 1 (knowledge distillation)"})
    perspectives: list = field(default_factory=lambda: list(PERSPECTIVES), metadata={"help": "analysis perspectives to sample from"})
    per_text: int = field(default=1, metadata={"help": "perspectives sampled per text"})
    max_tokens: int = field(default=160, metadata={"help": "teacher tokens per analysis"})
    drop: list = field(default_factory=lambda: list(QC_REASONS), metadata={"help": "quality-control reasons that drop an item"})
    downweight: list = field(default_factory=list, metadata={"help": "reasons that keep an item with weight `low_weight`"})
    low_weight: float = field(default=0.3, metadata={"help": "loss weight of down-weighted items"})

    def __post_init__(self):
        for p in self.perspectives:
            _check_choice("knowdist.perspectives entry", p, PERSPECTIVES)
        if not self.perspectives:
            raise SentiEdgeError("knowdist.perspectives is empty; give at least one of " + ", ".join(PERSPECTIVES))
        for r in [*self.drop, *self.downweight]:
            _check_choice("knowdist quality-control reason", r, QC_REASONS)
        _check_positive("knowdist.per_text", self.per_text)
        _check_positive("knowdist.max_tokens", self.max_tokens)


@dataclass
class ICLDistConfig:
    enabled: bool = field(default=True, metadata={"help": "run stage 2 (in-context-learning distillation)"})
    n_items: int = field(default=2000, metadata={"help": "diversified prompts to build"})
    datasets: list = field(default_factory=list, metadata={"help": "labelled SentiBench datasets for tasks and demos; empty: all"})
    min_shots: int = field(default=0, metadata={"help": "fewest demonstrations per prompt"})
    max_shots: int = field(default=8, metadata={"help": "most demonstrations per prompt"})
    group_size: int = field(default=8, metadata={"help": "prompts sharing one task, format and demonstrations (the teacher evaluates that prefix once)"})
    canonical_fraction: float = field(default=0.3, metadata={"help": "share of groups in the runtime's own prompt format"})
    demo_chars: int = field(default=400, metadata={"help": "cut demonstration texts to this many characters"})
    query_chars: int = field(default=1500, metadata={"help": "cut query texts to this many characters"})
    general_fraction: float = field(default=0.1, metadata={"help": "share of general instruction tasks (summary, keywords, ...)"})
    aspects_fraction: float = field(default=0.15, metadata={"help": "share of opinion-tuple tasks on the ABSA train texts (zero-shot)"})
    max_tokens: int = field(default=96, metadata={"help": "teacher tokens for generative tasks"})
    gold: str = field(default="report", metadata={"help": "off, report (teacher agreement with gold) or filter (drop disagreeing answers)"})
    kl_weight: float = field(default=1.0, metadata={"help": "weight of the KL term to the teacher's label-word distribution"})

    def __post_init__(self):
        _check_choice("icldist.gold", self.gold, ("off", "report", "filter"))
        if not 0 <= self.min_shots <= self.max_shots <= 8:
            raise SentiEdgeError(f"icldist shots must satisfy 0 <= min_shots <= max_shots <= 8, got {self.min_shots}..{self.max_shots}")
        if not (0 <= self.general_fraction and 0 <= self.aspects_fraction and self.general_fraction + self.aspects_fraction <= 1):
            raise SentiEdgeError(f"icldist.general_fraction ({self.general_fraction}) and aspects_fraction "
                                 f"({self.aspects_fraction}) must be >= 0 and sum to at most 1")
        _check_positive("icldist.n_items", self.n_items)
        _check_positive("icldist.group_size", self.group_size)
        _check_positive("icldist.demo_chars", self.demo_chars)
        _check_positive("icldist.query_chars", self.query_chars)
        if not 0 <= self.canonical_fraction <= 1:
            raise SentiEdgeError(f"icldist.canonical_fraction must be in [0, 1], got {self.canonical_fraction}")


@dataclass
class ConsistencyConfig:
    enabled: bool = field(default=False, metadata={"help": "run stage 3: the runtime's zero-shot prompt, with distractors around the text (no teacher calls)"})
    init: str = field(default="icldist", metadata={"help": "start from stage 2's adapter (icldist) or a new LoRA on the student (fresh)"})
    gold: str = field(default="filter", metadata={"help": "teacher answers that disagree with the train label: filter (drop), correct (train label instead) or weight (by the teacher's probability of the train label)"})
    gold_texts: int = field(default=0, metadata={"help": "more train texts per classification set, with their train label as target"})
    gold_datasets: list = field(default_factory=list, metadata={"help": "the classification sets (bench names, e.g. twitter) that get gold_texts; empty: every set"})
    distractor_share: float = field(default=0.5, metadata={"help": "share of examples that also appear with a distractor appended or prepended"})
    text_chars: int = field(default=1000, metadata={"help": "cut texts to this many characters"})
    replay: float = field(default=0.1, metadata={"help": "share of stage 2's examples mixed in"})
    label_share: float = field(default=1.0, metadata={"help": "share of the label examples kept (drawn at random), so a stage aimed at opinion lists keeps the labels in fewer steps"})
    aspects_gold: int = field(default=0, metadata={"help": "train texts of each fine-grained set whose gold fills the runtime's whole opinion object (asqp_rest16), with that gold list as the answer to the runtime's aspects prompt"})

    def __post_init__(self):
        _check_choice("consistency.init", self.init, ("icldist", "fresh"))
        _check_choice("consistency.gold", self.gold, ("filter", "correct", "weight"))
        for name in ("distractor_share", "replay", "label_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise SentiEdgeError(f"consistency.{name} must be in [0, 1], got {getattr(self, name)}")
        _check_positive("consistency.gold_texts", self.gold_texts, zero_ok=True)
        known = sorted(n for n, d in DATASETS.items() if d.task != "aspects")
        for name in self.gold_datasets:
            if name not in known:
                raise SentiEdgeError(f"consistency.gold_datasets entry {name!r} is not a classification set; choose from {', '.join(known)}")
        _check_positive("consistency.aspects_gold", self.aspects_gold, zero_ok=True)
        _check_positive("consistency.text_chars", self.text_chars)


@dataclass
class TrainConfig:
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha"})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout"})
    target_modules: list = field(default_factory=lambda: ["all-linear"], metadata={"help": "module names, or all-linear"})
    qlora: bool = field(default=False, metadata={"help": "load the student in 4-bit (bitsandbytes); needs CUDA, refused without it"})
    stage2_init: str = field(default="merge", metadata={"help": "stage 2 starts from stage 1's adapter: merge (new LoRA on merged model), continue, or fresh"})
    stage2_replay: float = field(default=0.0, metadata={"help": "share of the stage-1 examples mixed into stage 2, so the student keeps writing analyses (0: none, 1: all)"})
    batch_size: int = field(default=8, metadata={"help": "sequences per step"})
    max_length: int = field(default=384, metadata={"help": "longest sequence in tokens (longer prompts lose their middle: the instruction and the query stay)"})
    epochs: int = field(default=1, metadata={"help": "passes over the data"})
    max_steps: int = field(default=0, metadata={"help": "stop after this many steps (0: epochs decide)"})
    lr: float = field(default=2e-4, metadata={"help": "peak learning rate"})
    warmup_steps: int = field(default=10, metadata={"help": "linear warm-up steps"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    grad_clip: float = field(default=1.0, metadata={"help": "max gradient norm (0: off)"})
    group_by_length: bool = field(default=True, metadata={"help": "batch sequences of similar length (less padding)"})
    checkpoint_every: int = field(default=50, metadata={"help": "steps between checkpoints"})
    keep_checkpoints: int = field(default=2, metadata={"help": "checkpoints kept on disk"})
    n_threads: int = field(default=0, metadata={"help": "torch CPU threads (0: torch default)"})
    dtype: str = field(default="float32", metadata={"help": "float32 or bfloat16 weights"})
    amp: str = field(default="auto", metadata={"help": "bf16 autocast: auto (where the hardware is fast at bf16), bf16 or off"})

    def __post_init__(self):
        _check_choice("train.stage2_init", self.stage2_init, ("merge", "continue", "fresh"))
        if not 0 <= self.stage2_replay <= 1:
            raise SentiEdgeError(f"train.stage2_replay must be in [0, 1], got {self.stage2_replay}")
        _check_choice("train.dtype", self.dtype, ("float32", "bfloat16"))
        _check_choice("train.amp", self.amp, ("auto", "bf16", "off"))
        for name in ("lora_r", "lora_alpha", "batch_size", "max_length", "epochs", "checkpoint_every", "keep_checkpoints"):
            _check_positive(f"train.{name}", getattr(self, name))
        _check_positive("train.lr", self.lr)
        if not 0 <= self.lora_dropout < 1:
            raise SentiEdgeError(f"train.lora_dropout = {self.lora_dropout} must be in [0, 1)")
        if self.max_length < 16:
            raise SentiEdgeError(f"train.max_length = {self.max_length} is too short; use 16 or more")


@dataclass
class DistillConfig:
    out_dir: str = field(default="runs/distill", metadata={"help": "where every stage writes its files"})
    seed: int = field(default=42, metadata={"help": "seed for sampling, shuffling and LoRA init"})
    student: str = field(default="smollm2-135m", metadata={"help": "registry name, .gguf path or Hugging Face directory"})
    teacher_records: str = field(default="", metadata={"help": "folder of packed teacher records (<stage>.jsonl.gz): generation starts from them, so a complete pack needs no teacher"})
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    knowdist: KnowDistConfig = field(default_factory=KnowDistConfig)
    icldist: ICLDistConfig = field(default_factory=ICLDistConfig)
    consistency: ConsistencyConfig = field(default_factory=ConsistencyConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> "DistillConfig":
        return _build(cls, data, "", source)


def _coerce(value: Any, default: Any, key: str, source: str) -> Any:
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, list):
        ok = isinstance(value, list)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise SentiEdgeError(f"{source}: {key} = {value!r} should be a {type(default).__name__}")
    return value


def _build(cls, data: dict, prefix: str, source: str):
    if not isinstance(data, dict):
        raise SentiEdgeError(f"{source}: [{prefix.rstrip('.')}] should be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise SentiEdgeError(
            f"{source}: unknown key {prefix + unknown[0]!r}; known keys are {', '.join(prefix + k for k in fields)}")
    defaults = cls()
    kwargs = {}
    for name, value in data.items():
        default = getattr(defaults, name)
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, f"{prefix}{name}.", source)
        else:
            kwargs[name] = _coerce(value, default, prefix + name, source)
    return cls(**kwargs)


def parse_override(item: str) -> tuple[list[str], Any]:
    """`train.lr=1e-4` -> (["train", "lr"], 1e-4); the value is read as TOML, else as a string."""
    if "=" not in item:
        raise SentiEdgeError(f"override {item!r} should look like part.key=value")
    key, raw = item.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip().split("."), value


def load_config(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> DistillConfig:
    """Read a TOML recipe (or the defaults when `path` is None) and apply `part.key=value` overrides."""
    data: dict = {}
    source = str(path) if path else "defaults"
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise SentiEdgeError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SentiEdgeError(f"{path}: not valid TOML ({exc})") from None
    for item in overrides:
        keys, value = parse_override(item)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return DistillConfig.from_dict(data, source)
