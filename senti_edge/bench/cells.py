"""Where a cell lives, what makes it reusable, and what the machine was.

A cell file is reused only when its stored `settings` equal the cache key computed now
(`cell_key`): the protocol and the options that change answers, and the sha256 of every file the
answers came from (the model's GGUF, its LoRA adapter, the split file, the train file where
demonstrations or a trained baseline read it), plus `n_ctx`. So a rerun after a model file was
replaced, or against another copy of the data, recomputes instead of reusing a stale cell.
Hashes are memoised per (path, size, mtime) for the life of the process.
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
from functools import lru_cache
from pathlib import Path

from .. import __version__
from ..files import sha256_file

CELL_FORMAT = 2  # 2: cache key with file hashes and protocol; bootstrap replicates
ROBUSTNESS = "robustness"  # the cell name of a unit's robustness columns


def slug(name: str) -> str:
    """A file-name-safe id for a model spec or baseline."""
    base = "+".join(Path(p).name.removesuffix(".gguf") if ("/" in p or p.endswith(".gguf")) else p
                    for p in name.split("+"))
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", base).strip("._") or "model"


def cell_path(out_dir: Path, unit_id: str, dataset: str, seed: int | None = None, protocol: str | None = None) -> Path:
    """cells/<unit>/[<protocol>/]<dataset>[-seed<seed>].json: models keep one folder per protocol;
    seeds name a file only where demonstrations are drawn (the paper protocol)."""
    folder = Path(out_dir) / "cells" / unit_id
    if protocol:
        folder = folder / protocol
    return folder / (f"{dataset}-seed{seed}.json" if seed is not None else f"{dataset}.json")


def partial_path(out_dir: Path, cell: Path) -> Path:
    """partial/<unit>/[<protocol>/]<dataset>[-seed<seed>].jsonl: the chunks of a model cell that is
    still running, kept outside cells/ (which holds only finished cells) and removed when it ends."""
    return Path(out_dir) / "partial" / cell.relative_to(Path(out_dir) / "cells").with_suffix(".jsonl")


def read_cell(path: Path, key: dict) -> dict | None:
    """The cell at `path` if its settings equal `key` (else None: absent, stale or unreadable)."""
    try:
        with open(path, encoding="utf-8") as fh:
            cell = json.load(fh)
    except (OSError, ValueError):
        return None
    return cell if cell.get("settings") == key else None


@lru_cache(maxsize=None)
def _sha(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(Path(path))


def file_sha256(path: Path | None) -> str | None:
    """The file's sha256, or None for no file (loading the data reports a missing split)."""
    if path is None or not Path(path).is_file():
        return None
    st = Path(path).stat()
    return _sha(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def model_files(spec: str, task: str | None = None) -> dict:
    """The files a model spec resolves to for `task` (a registry model may add a task adapter),
    and their hashes (no model is loaded)."""
    from ..runtime.fetch import resolve

    ref = resolve(spec, task=task)
    return {"model_sha256": file_sha256(ref.path), "adapter_sha256": file_sha256(ref.adapter)}


def peak_rss_reset() -> None:
    """Reset the kernel's peak-RSS mark of this process (Linux), so each model gets its own peak."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    """Peak resident memory of this process since the last reset (VmHWM), else since start."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine_info(n_threads: int | None) -> dict:
    from ..runtime.cpu import cpu

    c = cpu()
    try:
        import llama_cpp
        llama_version = llama_cpp.__version__
    except ImportError:
        llama_version = None
    return {"cpu": c.model, "cpu_count": os.cpu_count(), "usable_cpus": c.cores, "n_threads": n_threads,
            "load_avg_at_start": list(os.getloadavg()), "platform": platform.platform(),
            "python": platform.python_version(), "llama_cpp_python": llama_version, "senti_edge": __version__}
