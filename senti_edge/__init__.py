"""senti-edge: offline sentiment analysis with small distilled LLMs on a laptop.

The runtime API (no torch): `analyze(texts, task=...)` for a one-off call, `Analyzer` to keep a
model loaded, `Engine` for label-logit scoring and generation over llama.cpp.
"""

__version__ = "0.1.0"

from .errors import SentiEdgeError

__all__ = ["SentiEdgeError", "__version__", "analyze", "Analyzer", "Engine"]


def __getattr__(name):  # lazy, so `import senti_edge` does not load llama.cpp
    if name in ("analyze", "Analyzer"):
        from .runtime import analyzer

        return getattr(analyzer, name)
    if name == "Engine":
        from .runtime.engine import Engine

        return Engine
    raise AttributeError(name)
