"""An importance matrix for the low-bit types, computed in torch on calibration prompts.

llama.cpp's `llama-imatrix` records, for every matrix multiplication, the mean of the squared
input activations per input column; quantization then weights its rounding error by it. We do
the same with forward hooks on every `nn.Linear` of the merged model, then rename the modules
to GGUF tensor names with gguf-py's tensor-name map and keep only tensors the F16 file has with
the right width. The quantize API takes the result as a list of (name, floats).

Calibration texts are written apart from the probe set, so verification does not test on the
data the quantizer was tuned to.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)

CALIBRATION: tuple[str, ...] = (
    "The delivery was quick and the product works exactly as described.",
    "I am really unhappy with the quality of this jacket; it tore after two washes.",
    "The museum is open from ten to six, except on Mondays.",
    "Wow, what a game! The final minutes were incredible.",
    "The app is slow, ugly and full of ads.",
    "We ordered the pasta and the salad for two people.",
    "Such a lovely little cafe, we will definitely come back.",
    "The battery barely lasts half a day, which is unacceptable.",
    "Tickets are available online and at the box office.",
    "I was pleasantly surprised by how easy the setup was.",
    "Nobody at the front desk seemed to care about our complaint.",
    "The results will be published next week.",
    "The landscape photography in this book is stunning.",
    "It arrived late, broken, and without any instructions.",
    "The course covers statistics, programming and data ethics.",
    "Yeah, right, the 'premium' version is totally worth double the price.",
)


def calibration_token_ids(gguf_path: Path, task_name: str = "polarity", texts: Sequence[str] = CALIBRATION) -> list[list[int]]:
    """The calibration prompts tokenized by our runtime, exactly as they will be scored."""
    from ..runtime.engine import Engine
    from ..runtime.prompts import build_prefix, build_query
    from ..runtime.tasks import get_task

    task = get_task(task_name)
    prefix = build_prefix(task)
    with Engine(str(gguf_path), n_threads=1, n_ctx=1024) as eng:
        head = eng.tokenize_segments(prefix, bos=True)
        return [head + eng.tokenize_segments(build_query(task, t)) for t in texts]


def compute_imatrix(model_dir: Path, gguf_path: Path, token_ids: Sequence[Sequence[int]], *, n_threads: int = 1) -> dict[str, np.ndarray]:
    """GGUF tensor name -> mean squared input activation per column, for every linear layer."""
    import gguf
    from gguf import GGUFReader

    from ..hfstack import load_stack

    torch = load_stack()[0]
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(max(1, n_threads))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    def hook(name):
        def fn(module, inputs, output):
            x = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).double()
            sums[name] = sums.get(name, 0) + (x * x).sum(0)
            counts[name] = counts.get(name, 0) + x.shape[0]
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    try:
        with torch.inference_mode():
            for ids in token_ids:
                model(torch.tensor([list(ids)]))
    finally:
        for h in handles:
            h.remove()

    reader = GGUFReader(str(gguf_path))
    widths = {t.name: int(t.shape[0]) for t in reader.tensors}  # gguf-py lists ne[0] first
    arch_name = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    arch = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}.get(arch_name)
    if arch is None:
        log.warning("no tensor-name map for architecture %s; quantizing without an importance matrix", arch_name)
        return {}
    name_map = gguf.get_tensor_name_map(arch, model.config.num_hidden_layers)
    out: dict[str, np.ndarray] = {}
    for name, total in sums.items():
        gname = name_map.get_name(name + ".weight", try_suffixes=(".weight",))
        values = (total / counts[name]).float().numpy()
        if gname and widths.get(gname) == values.size and np.isfinite(values).all():
            out[gname] = values
    log.info("importance matrix: %d of %d linear layers mapped to GGUF tensors", len(out), len(sums))
    return out
