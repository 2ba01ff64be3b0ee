"""Runtime: model registry, prompts, label scoring and the llama.cpp engine (no torch)."""
