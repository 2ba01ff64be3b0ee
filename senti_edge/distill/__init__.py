"""senti_edge.distill: targeted distillation (KnowDist, then ICLDist) from a teacher LLM into a LoRA student.

Modules: `config` (dataclasses, TOML recipes), `corpus` (texts by reference), `teachers` (gguf,
openai, hf backends), `records` (append-and-resume generation), `knowdist`, `icldist` (the two
stages' prompts and quality control), `train` (the LoRA loop), `pipeline` (stages in order),
`cli` (`senti-edge distill`). Importing this package loads neither torch nor llama.cpp.
"""

from .config import DistillConfig, TrainConfig, load_config

__all__ = ["DistillConfig", "TrainConfig", "load_config"]
