"""From a student and its LoRA adapter to verified, deployable GGUF files.

    merge.py     adapter + base -> merged safetensors directory (peft merge_and_unload)
    convert.py   llama.cpp's converters from the pinned llama-cpp-python sdist -> F16 GGUF, GGUF LoRA
    imatrix.py   importance matrix for the 4-bit types (torch hooks on calibration prompts)
    quantize.py  F16 -> Q8_0 ... Q4_0 with llama_cpp.llama_model_quantize
    verify.py    probe-set agreement, KL and logit differences through the senti-edge runtime
    card.py      README.md model card
    pipeline.py  `run(QuantizeConfig)`: all of the above, then register the results

torch, transformers and peft are imported inside functions only (`pip install 'senti-edge[distill]'`).
"""

from .config import QUANT_TYPES, QuantizeConfig

__all__ = ["QUANT_TYPES", "QuantizeConfig", "run"]


def run(cfg: QuantizeConfig, **kwargs) -> dict:
    """Run the quantize stage; see `senti_edge.quantize.pipeline.run`."""
    from .pipeline import run as _run

    return _run(cfg, **kwargs)
