"""Run SentiBench cells: one (model, dataset, seed) at a time, each saved as one JSON file.

`run_bench(config)` reads every selected split first (bad data fails before any model loads),
then, per model, loads the engine once (timing the load and resetting the peak-RSS counter),
and evaluates its pending cells:

- classification: restricted label logits from `Engine.score` (the runtime's scorer); in
  `fixed` demo mode one draw of k train demonstrations per (dataset, seed) forms a prefix the
  engine evaluates once; in `per-example` mode (the paper's) every item gets a fresh draw.
- fine-grained: greedy `Engine.generate` up to `max_tokens`, stopped at the end of the line,
  parsed by `formats.parse_tuples` (a malformed answer is an empty prediction and a format error),
  optionally constrained by `formats.tuples_grammar` (`grammar=True`).

A cell file is written atomically when the cell ends; a rerun with the same settings skips it
(and skips loading a model whose cells are all done). Then `report.write_reports` merges the
cells into results.json, results.md and the plots.
"""

from __future__ import annotations

import logging
import os
import platform
import random
import re
import resource
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .. import __version__
from ..errors import SentiEdgeError
from ..jsonl import write_json
from ..runtime.prompts import Example, Task, build_prefix, build_query
from ..runtime.registry import locked
from . import baselines as bl
from .datasets import DATASETS, DatasetSpec, Item, load_split, select_datasets
from .formats import build_tuple_prefix, close_truncated, build_tuple_query, parse_tuples, tuples_grammar
from .metrics import classification_scores, tuple_scores

log = logging.getLogger(__name__)

DEMO_MODES = ("fixed", "per-example")
CELL_FORMAT = 1
LOCK_NAME = ".bench.lock"  # in the results directory, held while a bench writes there


@dataclass
class BenchConfig:
    """What to run; the settings that change results are stored in every cell file."""

    data_dir: Path = field(metadata={"help": "SentiBench root holding <category>/<dataset>/<split>.json"})
    out_dir: Path = field(metadata={"help": "results directory (one JSON per cell, merged reports)"})
    models: tuple[str, ...] = field(default=(), metadata={"help": "registry names, .gguf paths or BASE+ADAPTER.gguf"})
    baselines: tuple[str, ...] = field(default=(), metadata={"help": "majority and/or vader"})
    datasets: tuple[str, ...] = field(default=tuple(DATASETS), metadata={"help": "dataset names"})
    split: str = field(default="val", metadata={"help": "split file name (val, test, ...)"})
    limit: int | None = field(default=None, metadata={"help": "first N items per dataset"})
    shots: int = field(default=4, metadata={"help": "demonstrations per prompt"})
    seeds: tuple[int, ...] = field(default=(42,), metadata={"help": "demonstration seeds"})
    demos: str = field(default="fixed", metadata={"help": "fixed (one draw per dataset and seed) or per-example"})
    grammar: bool = field(default=False, metadata={"help": "grammar-constrained generation for fine-grained sets"})
    max_tokens: int = field(default=150, metadata={"help": "new tokens per fine-grained answer"})
    demo_chars: int = field(default=2000, metadata={"help": "cut demonstration texts to this many characters"})
    n_threads: int | None = field(default=None, metadata={"help": "llama.cpp threads (default: free cores)"})
    n_ctx: int = field(default=4096, metadata={"help": "context tokens"})

    def __post_init__(self) -> None:
        self.data_dir, self.out_dir = Path(self.data_dir), Path(self.out_dir)
        self.models, self.baselines = tuple(self.models), tuple(self.baselines)
        self.seeds, self.datasets = tuple(int(s) for s in self.seeds), tuple(self.datasets)
        if self.demos not in DEMO_MODES:
            raise SentiEdgeError(f"demos={self.demos!r}: choose one of {', '.join(DEMO_MODES)}")
        if self.shots < 0:
            raise SentiEdgeError(f"shots={self.shots}: give 0 or more demonstrations")
        if self.limit is not None and self.limit < 1:
            raise SentiEdgeError(f"limit={self.limit}: give a positive number of items, or no limit")
        if not self.seeds:
            raise SentiEdgeError("seeds: give at least one seed, e.g. 42,52,62")
        if len(set(self.seeds)) != len(self.seeds):
            raise SentiEdgeError(f"seeds {self.seeds} repeat a seed")
        if self.max_tokens < 1 or self.demo_chars < 1 or self.n_ctx < 256:
            raise SentiEdgeError(f"max_tokens={self.max_tokens}, demo_chars={self.demo_chars}, n_ctx={self.n_ctx}: too small")
        unknown = [b for b in self.baselines if b not in bl.BASELINES]
        if unknown:
            raise SentiEdgeError(f"unknown baseline {unknown[0]!r}; choose from {', '.join(bl.BASELINES)}")
        if not self.models and not self.baselines:
            raise SentiEdgeError("nothing to run: give --model and/or --baseline")
        bad = [d for d in self.datasets if d not in DATASETS]
        if bad:
            select_datasets(bad)  # raises with the list of valid names

    def settings(self) -> dict:
        """The settings a cell's result depends on; a cell with other settings is recomputed."""
        return {"split": self.split, "limit": self.limit, "shots": self.shots, "demos": self.demos,
                "grammar": self.grammar, "max_tokens": self.max_tokens, "demo_chars": self.demo_chars,
                "format": CELL_FORMAT}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["data_dir"], d["out_dir"] = str(self.data_dir), str(self.out_dir)
        return d


# -- small helpers ---------------------------------------------------------------------------

def slug(name: str) -> str:
    """A file-name-safe id for a model spec or baseline."""
    base = "+".join(Path(p).name.removesuffix(".gguf") if ("/" in p or p.endswith(".gguf")) else p
                    for p in name.split("+"))
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", base).strip("._") or "model"


def cell_path(out_dir: Path, model_id: str, dataset: str, seed: int) -> Path:
    return Path(out_dir) / "cells" / model_id / f"{dataset}-seed{seed}.json"


def cell_done(path: Path, settings: dict) -> bool:
    import json

    if not path.exists():
        return False
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh).get("settings") == settings
    except (OSError, ValueError):
        return False  # unreadable: recompute


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
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        import llama_cpp
        llama_version = llama_cpp.__version__
    except ImportError:
        llama_version = None
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "usable_cpus": usable, "n_threads": n_threads,
            "load_avg_at_start": list(os.getloadavg()), "platform": platform.platform(),
            "python": platform.python_version(), "llama_cpp_python": llama_version, "senti_edge": __version__}


def draw(n: int, k: int, seed: int) -> list[int]:
    """k distinct train indices; the same draw as `prompts.sample_demos(pool, k, seed)`."""
    return random.Random(seed).sample(range(n), min(k, n)) if k > 0 and n else []


def item_seed(seed: int, index: int) -> int:
    return seed * 1_000_003 + index


# -- cells -----------------------------------------------------------------------------------

class Timer:
    """Per-item milliseconds from group completions (`on_done(n)` spreads a group's time evenly)."""

    def __init__(self, progress: Callable[[int], None] | None = None):
        self.ms: list[float] = []
        self.progress = progress
        self.start = self.last = time.perf_counter()

    def done(self, n: int = 1) -> None:
        now = time.perf_counter()
        self.ms += [(now - self.last) * 1000 / n] * n
        self.last = now
        if self.progress:
            self.progress(n)

    def cost(self) -> dict:
        total = time.perf_counter() - self.start
        n = len(self.ms)
        return {"eval_s": total, "examples_per_s": n / total if total > 0 else None,
                "ms_per_example_median": statistics.median(self.ms) if self.ms else None}


def _task(spec: DatasetSpec) -> Task:
    return Task(spec.name, spec.labels, spec.instruction, needs_target=spec.needs_target)


def _demo(it: Item, cfg: BenchConfig) -> Item:
    return it._replace(text=it.text[: cfg.demo_chars])


def run_classification(eng, spec: DatasetSpec, train: Sequence[Item], test: Sequence[Item], seed: int,
                       cfg: BenchConfig, timer: Timer) -> tuple[list[dict], dict]:
    task = _task(spec)
    ids = eng.label_token_ids(spec.labels)

    def prefix_for(idx: list[int]):
        return build_prefix(task, [Example(*_demo(train[i], cfg)[1:]) for i in idx])

    queries = [build_query(task, it.text, it.target) for it in test]
    if cfg.demos == "fixed":
        idx = draw(len(train), cfg.shots, seed)
        logits = eng.score(prefix_for(idx), queries, ids, on_done=timer.done)
        demos: list = idx
    else:
        rows, demos = [], []
        for it, q in zip(test, queries):
            idx = draw(len(train), cfg.shots, item_seed(seed, it.index))
            rows.append(eng.score(prefix_for(idx), [q], ids)[0])
            demos.append(idx)
            timer.done(1)
        logits = np.asarray(rows)
    pred = [spec.labels[j] for j in logits.argmax(axis=1)]
    preds = [{"index": it.index, "pred": p, "logits": [round(float(x), 4) for x in row]}
             for it, p, row in zip(test, pred, logits)]
    metrics = classification_scores([it.gold for it in test], pred)
    return preds, {"metrics": metrics, "demos": demos}


def run_tuples(eng, spec: DatasetSpec, train: Sequence[Item], test: Sequence[Item], seed: int,
               cfg: BenchConfig, timer: Timer) -> tuple[list[dict], dict]:
    arity = len(spec.fields)
    grammar = tuples_grammar(arity, spec.labels) if cfg.grammar else None

    def prefix_for(idx: list[int]):
        return build_tuple_prefix(spec.instruction, spec.labels, [(_demo(train[i], cfg).text, train[i].gold) for i in idx])

    fixed = draw(len(train), cfg.shots, seed) if cfg.demos == "fixed" else None
    preds, demos, parsed_all = [], [], []
    for it in test:
        idx = fixed if fixed is not None else draw(len(train), cfg.shots, item_seed(seed, it.index))
        text, finished = eng.generate(prefix_for(idx) + build_tuple_query(it.text), max_tokens=cfg.max_tokens,
                                      grammar=grammar, stop=["\n"])
        parsed = parse_tuples(close_truncated(text) if grammar and not finished else text, arity, spec.labels)
        parsed_all.append(parsed)
        if fixed is None:
            demos.append(idx)
        preds.append({"index": it.index, "output": text, "finished": finished,
                      "pred": None if parsed is None else [list(t) for t in parsed], "format_error": parsed is None})
        timer.done(1)
    metrics = tuple_scores([it.gold for it in test], parsed_all)
    return preds, {"metrics": metrics, "demos": fixed if fixed is not None else demos}


def run_baseline(name: str, spec: DatasetSpec, train: Sequence[Item], test: Sequence[Item], timer: Timer):
    pred = bl.BASELINES[name](spec, train, test)
    timer.done(len(test))
    preds = [{"index": it.index, "pred": p} for it, p in zip(test, pred)]
    return preds, {"metrics": classification_scores([it.gold for it in test], pred), "demos": []}


# -- orchestration ---------------------------------------------------------------------------

_QUANT = re.compile(r"(?i)(?<![A-Za-z0-9])(I?Q\d+_[A-Z0-9_]*?|BF16|F16|F32)(?=\.gguf$|[^A-Za-z0-9_]|$)")


def guess_quant(ref) -> str:
    if ref.entry.quant:
        return ref.entry.quant
    m = _QUANT.search(ref.path.name)
    return m.group(1).upper() if m else ""


@dataclass
class Unit:
    """One model or baseline and its pending cells."""

    spec: str
    kind: str  # "model" or "baseline"
    id: str
    cells: list[tuple[DatasetSpec, int]]


def plan(cfg: BenchConfig) -> list[Unit]:
    specs = select_datasets(cfg.datasets)
    settings = cfg.settings()
    units, seen = [], {}
    for kind, names in (("model", cfg.models), ("baseline", cfg.baselines)):
        for name in names:
            uid = slug(name) if kind == "model" else f"baseline-{name}"
            if uid in seen:
                raise SentiEdgeError(f"{name!r} and {seen[uid]!r} would share the results folder {uid}; give each once")
            seen[uid] = name
            cells = [(d, s) for d in specs for s in cfg.seeds
                     if (kind == "model" or bl.applies(name, d))
                     and not cell_done(cell_path(cfg.out_dir, uid, d.name, s), settings)]
            units.append(Unit(name, kind, uid, cells))
    return units


def load_data(cfg: BenchConfig, specs: Sequence[DatasetSpec]) -> dict[str, tuple[list[Item], list[Item]]]:
    """(train, test) per dataset; train is needed for demonstrations and the majority class."""
    data = {}
    for spec in specs:
        test = load_split(cfg.data_dir, spec, cfg.split, cfg.limit)
        train = load_split(cfg.data_dir, spec, "train") if (cfg.shots > 0 or cfg.baselines) else []
        data[spec.name] = (train, test)
    return data


def _load_engine(spec: str, cfg: BenchConfig):
    from ..runtime.engine import Engine

    peak_rss_reset()
    t0 = time.perf_counter()
    try:
        eng = Engine(spec, n_threads=cfg.n_threads, n_ctx=cfg.n_ctx)
    except SentiEdgeError as exc:
        raise SentiEdgeError(f"model {spec}: {exc}") from None
    load_s = time.perf_counter() - t0
    ref = eng.ref
    size = ref.path.stat().st_size + (ref.adapter.stat().st_size if ref.adapter else 0)
    info = {"name": ref.name, "path": str(ref.path), "adapter": str(ref.adapter) if ref.adapter else None,
            "size_bytes": size, "quant": guess_quant(ref), "params": ref.entry.params, "load_s": load_s,
            "n_threads": eng.n_threads, "n_ctx": eng.n_ctx}
    return eng, info


def run_bench(cfg: BenchConfig, *, progress: bool = True) -> dict:
    """Run every pending cell of `cfg`, then write the merged reports; returns the merged results.

    The results directory is locked for the whole run: a second bench on the same directory
    fails at once (rather than waiting hours, or interleaving cells and reports).
    """
    specs = select_datasets(cfg.datasets)
    data = load_data(cfg, specs)
    busy = f"another senti-edge bench is writing {cfg.out_dir}; wait for it to finish, or give another --out"
    with locked(cfg.out_dir / LOCK_NAME, busy=busy):
        return _run_locked(cfg, data, progress)


def _run_locked(cfg: BenchConfig, data, progress: bool) -> dict:
    from tqdm import tqdm

    from .report import write_reports

    units = plan(cfg)
    write_json(cfg.out_dir / "config.json", cfg.to_dict())
    machine = machine_info(cfg.n_threads)
    total = sum(len(data[d.name][1]) for u in units for d, _ in u.cells)
    log.info("%d cells to run (%d items)", sum(len(u.cells) for u in units), total)
    bar = tqdm(total=total, unit="ex", disable=not progress, dynamic_ncols=True, leave=True)
    start = time.perf_counter()
    try:
        for unit in units:
            if unit.cells:
                _run_unit(unit, cfg, data, machine, bar)
    finally:
        bar.close()
    return write_reports(cfg.out_dir, cfg, machine, wall_s=time.perf_counter() - start)


def _run_unit(unit: Unit, cfg: BenchConfig, data, machine: dict, bar) -> None:
    eng = None
    if unit.kind == "model":
        eng, info = _load_engine(unit.spec, cfg)
    else:
        peak_rss_reset()
        info = {"name": unit.spec, "path": None, "adapter": None, "size_bytes": bl.baseline_size(unit.spec),
                "quant": "", "params": "", "load_s": 0.0, "n_threads": 1, "n_ctx": None}
    try:
        for spec, seed in unit.cells:
            train, test = data[spec.name]
            bar.set_description(f"{unit.id} {spec.name} s{seed}")
            timer = Timer(bar.update)
            tokens0 = eng.stats.prompt_tokens if eng else 0
            gen0 = eng.stats.generated_tokens if eng else 0
            trunc0 = eng.stats.truncated if eng else 0
            if eng is None:
                preds, extra = run_baseline(unit.spec, spec, train, test, timer)
            elif spec.generative:
                preds, extra = run_tuples(eng, spec, train, test, seed, cfg, timer)
            else:
                preds, extra = run_classification(eng, spec, train, test, seed, cfg, timer)
            cost = timer.cost()
            for p, ms in zip(preds, timer.ms):
                p["ms"] = round(ms, 3)
            cost.update(prompt_tokens=(eng.stats.prompt_tokens - tokens0) if eng else 0,
                        generated_tokens=(eng.stats.generated_tokens - gen0) if eng else 0,
                        truncated=(eng.stats.truncated - trunc0) if eng else 0, peak_rss_mb=peak_rss_mb())
            cell = {"model": unit.spec, "model_id": unit.id, "kind": unit.kind, "dataset": spec.name,
                    "category": spec.category, "seed": seed, "settings": cfg.settings(), "n": len(test),
                    "metrics": extra["metrics"], "demos": extra["demos"], "cost": cost, "model_info": info,
                    "machine": machine, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "predictions": preds}
            write_json(cell_path(cfg.out_dir, unit.id, spec.name, seed), cell)
    finally:
        if eng is not None:
            eng.close()
