"""SentiBench runner: quality against latency, size and memory for any set of models.

`run_bench(BenchConfig(...))` runs the cells and writes the reports; `senti-edge bench` is its
command line (`senti_edge.bench.cli`). The 12 datasets and their reader are `senti_edge.sentibench`.
Modules: `datasets` (choosing datasets, tuple prompts, the `aspects` mapping), `formats` (tuple
answers: prompt, parser, grammar), `protocols` (shipped: what `analyze` does; paper: k-shot),
`baselines` (majority, VADER, TF-IDF and MiniLM classifiers), `injection` (robustness),
`metrics` (with bootstrap intervals), `cells` (paths and the cache key), `runner`, `report`, `plots`.
Names are imported on first use, so importing the CLI stays fast.
"""

import importlib

_EXPORTS = {
    "BenchConfig": ".runner", "run_bench": ".runner", "select_datasets": ".datasets",
    "CATEGORIES": "..sentibench", "DATASETS": "..sentibench", "DatasetSpec": "..sentibench", "Item": "..sentibench",
    "load_split": "..sentibench",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
