"""F16 GGUF -> quantized GGUF with `llama_cpp.llama_model_quantize` (no binary needed).

The output is written under a temporary name and renamed into place on success. An optional
importance matrix (tensor name -> mean squared input activation per column, see `imatrix.py`)
is passed through `llama_model_quantize_params.imatrix`.

k-quants pack rows in blocks of 256; where a tensor's row width is not a multiple of 256
(SmolLM2's d=576), llama.cpp itself falls back to a legacy type (q5_0/q5_1/q8_0 depending on
the target) for that tensor. `tensor_types` reads the result back, so the card states how many
tensors each type got.
"""

from __future__ import annotations

import ctypes
import logging
from collections import Counter
from pathlib import Path

import numpy as np

from ..errors import SentiEdgeError
from .config import QUANT_TYPES
from ..jsonl import ensure_space
from .files import atomic_path

log = logging.getLogger(__name__)


def _imatrix_array(imatrix: dict[str, np.ndarray]):
    """A NULL-terminated C array of llama_model_imatrix_data, plus the buffers it points into."""
    import llama_cpp

    keep = []
    arr = (llama_cpp.llama_model_imatrix_data * (len(imatrix) + 1))()
    for i, (name, values) in enumerate(sorted(imatrix.items())):
        data = np.ascontiguousarray(values, dtype=np.float32)
        bname = name.encode()
        keep += [data, bname]
        arr[i].name = bname
        arr[i].data = data.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        arr[i].size = data.size
    arr[len(imatrix)].name = None
    return arr, keep


def quantize(src: Path, dst: Path, qtype: str, *, n_threads: int = 1, imatrix: dict[str, np.ndarray] | None = None,
             verbose: bool = False) -> dict:
    """Quantize `src` (F16 GGUF) to `dst` as `qtype`; returns size and tensor-type counts."""
    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr

    q = QUANT_TYPES[qtype]
    ensure_space(dst.parent, int(src.stat().st_size * q.bits / 16), f"{dst.name}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.nthread = max(1, n_threads)
    params.ftype = q.ftype
    keep = None
    if imatrix:
        arr, keep = _imatrix_array(imatrix)
        params.imatrix = ctypes.cast(arr, ctypes.POINTER(llama_cpp.llama_model_imatrix_data))
        keep.append(arr)
    with atomic_path(dst) as tmp:
        with suppress_stdout_stderr(disable=verbose):
            rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), ctypes.byref(params))
        if rc != 0:
            raise SentiEdgeError(f"llama_model_quantize returned {rc} for {src.name} -> {qtype}; rerun with --verbose to see llama.cpp's message")
    del keep
    types = tensor_types(dst)
    log.info("quantized %s -> %s (%s): %s", src.name, dst.name, qtype, types)
    return {"size": dst.stat().st_size, "tensor_types": types, "imatrix": bool(imatrix)}


def tensor_types(path: Path) -> dict[str, int]:
    """How many tensors of each ggml type the file holds, e.g. {"Q4_K": 120, "Q5_0": 60, "F32": 61}."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    return dict(Counter(t.tensor_type.name for t in reader.tensors).most_common())


def fallback_note(qtype: str, types: dict[str, int]) -> str:
    """A sentence on tensors that did not get the type's main block format (k-quants on odd widths)."""
    if not qtype.startswith(("q4_k", "q5_k", "q6_k")):
        return ""
    others = {t: n for t, n in types.items() if not t.endswith("_K") and t != "F32"}
    if not others:
        return ""
    listed = ", ".join(f"{n} {t}" for t, n in others.items())
    return (f"{qtype.upper()}: rows whose width is not a multiple of 256 cannot use k-quants; "
            f"llama.cpp stored {listed} instead")
