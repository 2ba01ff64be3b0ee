"""The torch side's one loader: torch, transformers and peft, and a causal LM from a GGUF or a folder.

`distill` (the student, the HF teacher) and `quantize` (the base to merge into, the reference
logits) both start from a model that may be a registry name, a `.gguf` file or a Hugging Face
directory. A GGUF is dequantized by transformers' own loader (`gguf_file=`) into float32; a spec
with an adapter (`BASE+ADAPTER.gguf`, or a registry entry applied at load time) is merged first
by `runtime.build`, so the model is the one the spec names, not its bare base.

The stack is imported here only, quiet unless senti-edge logs at INFO (`--verbose`), and a
missing package is one `SentiEdgeError` that says which extra to install.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import tempfile
import warnings
from pathlib import Path

from .errors import SentiEdgeError

INSTALL_HINT = "pip install 'senti-edge[distill]'"


def _quiet() -> bool:
    return not logging.getLogger().isEnabledFor(logging.INFO) and not logging.getLogger("senti_edge").isEnabledFor(logging.INFO)


def load_stack():
    """(torch, transformers, peft), or an error naming what is missing and the extra to install."""
    quiet = _quiet()
    if quiet:
        logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # imported by peft; warns about CPU kernels
    try:
        import peft
        import torch
        import transformers
    except ImportError as exc:
        raise SentiEdgeError(f"torch, transformers and peft are needed ({exc.name} is missing); {INSTALL_HINT}") from None
    if quiet:
        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    return torch, transformers, peft


@contextlib.contextmanager
def _quiet_gguf_progress():
    """transformers' GGUF loader shows a tqdm bar that its own progress-bar switch misses."""
    if not _quiet():
        yield
        return
    try:
        from transformers import modeling_gguf_pytorch_utils as gguf_utils
        bar = gguf_utils.tqdm
    except (ImportError, AttributeError):
        yield
        return
    gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = bar


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def load_causal_lm(source: str | Path, *, gguf: Path | None = None):
    """(model, tokenizer) in float32 on CPU, from a Hugging Face directory `source`, or from the
    GGUF file `gguf` (`source` then only names it in errors)."""
    torch, transformers, _ = load_stack()
    kwargs = {"gguf_file": gguf.name} if gguf else {}
    src = str(gguf.parent if gguf else source)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(src, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise SentiEdgeError(f"could not load the tokenizer of {source}: {first_line(exc)}") from None
    try:
        with _quiet_gguf_progress():
            model = transformers.AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32, **kwargs)
    except (ValueError, KeyError, OSError, NotImplementedError, RuntimeError) as exc:
        raise SentiEdgeError(f"transformers cannot load {source} ({first_line(exc)}); its architecture may be "
                             "unsupported: give a Hugging Face model directory instead") from None
    model.eval()
    return model, tokenizer


def load_gguf_spec(spec: str):
    """(model, tokenizer) of a registry name, `.gguf` path or `BASE+ADAPTER.gguf`, dequantized;
    an adapter is merged into the weights first (float64, `runtime.build`)."""
    from .runtime.build import merge_to_f32
    from .runtime.fetch import resolve

    ref = resolve(spec)
    if ref.adapter is None:
        return load_causal_lm(spec, gguf=ref.path)
    with tempfile.TemporaryDirectory(prefix="senti-edge-merge.") as td:
        merged = Path(td) / "merged.f32.gguf"
        merge_to_f32(ref.path, ref.adapter, merged)
        return load_causal_lm(spec, gguf=merged)
