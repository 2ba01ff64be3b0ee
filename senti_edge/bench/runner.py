"""Run SentiBench cells: one (model or baseline, dataset[, seed]) at a time, each saved as one JSON file.

`run_bench(config)` reads every selected split first (bad data fails before any model loads),
then, per model, opens a session of the chosen protocol once (`protocols.Shipped`: what
`senti-edge analyze` does; `protocols.Paper`: k-shot, uncalibrated), resetting the peak-RSS
counter, and evaluates its pending cells; each cell records the files its own engine loaded
(`engine_info`: a task adapter counts in its size) and their load time. Baselines are fitted on each
dataset's train split (fit time and size recorded) and predict the same items.

Every cell is scored here (`score_cell`: the metric, a 95% bootstrap interval and its
replicates). In the same run, each model and baseline also gets its robustness cell: flip rates
on the first `robust_n` val sentences of `robust_dataset` under appended distractors and
injected instructions (`injection.robustness`).

A cell file is written atomically when the cell ends and reused only while its cache key
(`cell_key`) holds; a model whose cells are all current is not loaded. A model cell runs
`CHUNK` items at a time, each chunk appended to the cell's partial file (`cells.partial_path`,
with the key on its first line), so an interrupted cell (the teacher on IMDB takes hours on
one core) resumes at its first unfinished chunk; the partial file goes when the cell is written. Then
`report.write_reports` merges the cells into results.json, results.md and the plots. The results
directory is locked while a bench writes it; a bench that fails leaves neither the lock file nor
a folder it created and filled with nothing.
"""

from __future__ import annotations

import logging
import re
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import SentiEdgeError
from ..files import locked
from ..jsonl import JsonlAppender, write_json
from ..runtime.scoring import softmax
from ..sentibench import DATASETS, DatasetSpec, Item, load_split
from . import baselines as bl
from .cells import (CELL_FORMAT, ROBUSTNESS, cell_path, file_sha256, machine_info, model_files, partial_path,
                    peak_rss_mb, peak_rss_reset, read_cell, slug)
from .datasets import select_datasets
from .injection import robustness
from .metrics import (bootstrap_classification, bootstrap_tuples, ci95, classification_scores, resample,
                      tuple_scores)
from .protocols import PROTOCOLS, SESSIONS, draw, item_seed  # noqa: F401  (draw, item_seed: public helpers)

log = logging.getLogger(__name__)

DEMO_MODES = ("fixed", "per-example")
LOCK_NAME = ".bench.lock"  # in the results directory, held while a bench writes there
CHUNK = 25  # a model cell saves its predictions every CHUNK items


@dataclass
class BenchConfig:
    """What to run; the settings that change results are stored in every cell file."""

    data_dir: Path = field(metadata={"help": "SentiBench root holding <category>/<dataset>/<split>.json"})
    out_dir: Path = field(metadata={"help": "results directory (one JSON per cell, merged reports)"})
    models: tuple[str, ...] = field(default=(), metadata={"help": "registry names, .gguf paths or BASE+ADAPTER.gguf"})
    baselines: tuple[str, ...] = field(default=(), metadata={"help": "majority, vader, tfidf, minilm"})
    datasets: tuple[str, ...] = field(default=tuple(DATASETS), metadata={"help": "dataset names"})
    protocol: str = field(default="shipped", metadata={"help": "shipped (what analyze does) or paper (k-shot)"})
    split: str = field(default="val", metadata={"help": "split file name (val, test, ...)"})
    limit: int | None = field(default=None, metadata={"help": "first N items per dataset"})
    shots: int = field(default=4, metadata={"help": "paper: demonstrations per prompt"})
    seeds: tuple[int, ...] = field(default=(42,), metadata={"help": "paper: demonstration seeds"})
    demos: str = field(default="fixed", metadata={"help": "paper: fixed (one draw per dataset and seed) or per-example"})
    grammar: bool = field(default=False, metadata={"help": "paper: grammar-constrained generation for fine-grained sets"})
    max_tokens: int = field(default=150, metadata={"help": "paper: new tokens per fine-grained answer"})
    demo_chars: int = field(default=2000, metadata={"help": "paper: cut demonstration texts to this many characters"})
    robust_dataset: str = field(default="sst2", metadata={"help": "val sentences the robustness columns perturb"})
    robust_n: int = field(default=50, metadata={"help": "how many of them (0: no robustness columns)"})
    n_threads: int | None = field(default=None, metadata={"help": "llama.cpp threads (default: free cores)"})
    n_ctx: int = field(default=4096, metadata={"help": "context tokens"})

    def __post_init__(self) -> None:
        self.data_dir, self.out_dir = Path(self.data_dir), Path(self.out_dir)
        self.models, self.baselines = tuple(self.models), tuple(self.baselines)
        self.seeds, self.datasets = tuple(int(s) for s in self.seeds), tuple(self.datasets)
        if self.protocol not in PROTOCOLS:
            raise SentiEdgeError(f"protocol={self.protocol!r}: choose one of {', '.join(PROTOCOLS)}")
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
        if self.protocol == "shipped" and len(self.seeds) > 1:
            raise SentiEdgeError("seeds draw the paper protocol's demonstrations; the shipped protocol is "
                                 "zero-shot, so give one seed (or --protocol paper)")
        if self.max_tokens < 1 or self.demo_chars < 1 or self.n_ctx < 256 or self.robust_n < 0:
            raise SentiEdgeError(f"max_tokens={self.max_tokens}, demo_chars={self.demo_chars}, n_ctx={self.n_ctx}, "
                                 f"robust_n={self.robust_n}: out of range")
        unknown = [b for b in self.baselines if b not in bl.BASELINES]
        if unknown:
            raise SentiEdgeError(f"unknown baseline {unknown[0]!r}; choose from {', '.join(bl.BASELINES)}")
        if not self.models and not self.baselines:
            raise SentiEdgeError("nothing to run: give --model and/or --baseline")
        bad = [d for d in (*self.datasets, self.robust_dataset) if d not in DATASETS]
        if bad:
            select_datasets(bad)  # raises with the list of valid names
        if DATASETS[self.robust_dataset].generative or "positive" not in DATASETS[self.robust_dataset].labels:
            raise SentiEdgeError(f"robust_dataset={self.robust_dataset!r}: give a polarity set (sst2, yelp2, imdb, twitter)")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["data_dir"], d["out_dir"] = str(self.data_dir), str(self.out_dir)
        return d


# -- the cache key ---------------------------------------------------------------------------

@dataclass
class Cell:
    """One cell of a unit: a dataset (or the robustness columns), its seed, file and cache key."""

    spec: DatasetSpec
    seed: int | None
    path: Path
    key: dict
    robustness: bool = False


@dataclass
class Unit:
    """One model or baseline and its cells."""

    spec: str
    kind: str  # "model" or "baseline"
    id: str
    cells: list[Cell]

    @property
    def pending(self) -> list[Cell]:
        return [c for c in self.cells if read_cell(c.path, c.key) is None]


def _uses_train(cfg: BenchConfig, kind: str, name: str) -> bool:
    if kind == "baseline":
        return name != "vader"
    return cfg.protocol == "paper" and cfg.shots > 0


def cell_key(cfg: BenchConfig, kind: str, name: str, spec: DatasetSpec, files: dict, robust: bool = False) -> dict:
    """Everything a cell's answers depend on: reuse a cell only while this is unchanged."""
    key = {"format": CELL_FORMAT, "split": cfg.split, "limit": cfg.limit,
           "data_sha256": file_sha256(spec.path(cfg.data_dir, cfg.split))}
    if robust:
        key.update(limit=None, robust_n=cfg.robust_n)
    if _uses_train(cfg, kind, name):
        key["train_sha256"] = file_sha256(spec.path(cfg.data_dir, "train"))
    if kind == "baseline":
        return {**key, "baseline": name, "baseline_config": bl.CONFIG[name]}
    key.update(protocol=cfg.protocol, n_ctx=cfg.n_ctx, **files)
    if cfg.protocol == "paper":
        key.update(shots=cfg.shots, demos=cfg.demos, demo_chars=cfg.demo_chars)
        if spec.generative:
            key.update(grammar=cfg.grammar, max_tokens=cfg.max_tokens)
    return key


def plan(cfg: BenchConfig) -> list[Unit]:
    """Every unit with all its cells and their keys (models are resolved and hashed, not loaded)."""
    specs = select_datasets(cfg.datasets)
    units, seen = [], {}
    for kind, names in (("model", cfg.models), ("baseline", cfg.baselines)):
        for name in names:
            uid = slug(name) if kind == "model" else f"baseline-{name}"
            if uid in seen:
                raise SentiEdgeError(f"{name!r} and {seen[uid]!r} would share the results folder {uid}; give each once")
            seen[uid] = name
            protocol = cfg.protocol if kind == "model" else None
            seeds = cfg.seeds if protocol == "paper" else (None,)
            # the shipped path loads what `analyze -t TASK` loads, task adapters included
            tasks = {d.task for d in (*specs, DATASETS[cfg.robust_dataset])} if protocol == "shipped" else {None}
            by_task = {t: model_files(name, t) for t in tasks} if kind == "model" else {}

            def files(d: DatasetSpec) -> dict:
                return by_task.get(d.task if protocol == "shipped" else None, {})

            cells = [Cell(d, s, cell_path(cfg.out_dir, uid, d.name, s, protocol), cell_key(cfg, kind, name, d, files(d)))
                     for d in specs for s in seeds if kind == "model" or bl.applies(name, d)]
            if cfg.robust_n:
                r = DATASETS[cfg.robust_dataset]
                if kind == "model" or bl.applies(name, r):
                    cells.append(Cell(r, seeds[0], cell_path(cfg.out_dir, uid, ROBUSTNESS, seeds[0], protocol),
                                      cell_key(cfg, kind, name, r, files(r), robust=True), robustness=True))
            units.append(Unit(name, kind, uid, cells))
    return units


# -- data ------------------------------------------------------------------------------------

def load_data(cfg: BenchConfig, units: Sequence[Unit]) -> dict[str, tuple[list[Item], list[Item]]]:
    """(train, test) per dataset the units need; train only where demonstrations or a baseline read it."""
    need: dict[str, tuple[DatasetSpec, bool, int | None]] = {}
    for u in units:
        for c in u.cells:
            train = _uses_train(cfg, u.kind, u.spec)
            limit = cfg.robust_n if c.robustness else cfg.limit
            old = need.get(c.spec.name)
            if old:  # the robustness sentences and the dataset's own cell: load the longer slice
                limit = None if old[2] is None or limit is None else max(old[2], limit)
                train = train or old[1]
            need[c.spec.name] = (c.spec, train, limit)
    return {name: (load_split(cfg.data_dir, spec, "train") if train else [],
                   load_split(cfg.data_dir, spec, cfg.split, limit))
            for name, (spec, train, limit) in need.items()}


def _items(data, cfg: BenchConfig, cell: Cell) -> tuple[list[Item], list[Item]]:
    train, test = data[cell.spec.name]
    n = cfg.robust_n if cell.robustness else cfg.limit
    return train, test[:n] if n is not None else test


# -- timing and scoring ----------------------------------------------------------------------

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


def score_cell(spec: DatasetSpec, test: Sequence[Item], preds: list[dict]) -> dict:
    """The cell's metrics from its predictions, with a 95% bootstrap interval and the replicates
    (kept so that averages over datasets and seeds get an interval too)."""
    gold = [it.gold for it in test]
    if spec.generative:
        pred = [p["pred"] for p in preds]  # None where nothing parsed; a cut answer keeps its finished tuples
        metrics = tuple_scores(gold, pred, [p["format_error"] for p in preds])
        reps = bootstrap_tuples(gold, pred, resample(len(gold)))
    else:
        pred = [p["pred"] for p in preds]
        metrics = classification_scores(gold, pred, spec.labels, confidence(preds))
        reps = bootstrap_classification(gold, pred, spec.labels, resample(len(gold)))
    metrics["ci95"] = ci95(reps)
    metrics["bootstrap"] = [round(float(r), 4) for r in reps]
    return metrics


def confidence(preds: list[dict]) -> list[float] | None:
    """The predicted label's probability per item, from the label distribution (`probs`, the
    shipped path) or the label words' logits (`logits`, the paper's arg-max); None where the
    predictions carry neither (the baselines)."""
    if preds and all("probs" in p for p in preds):
        return [max(p["probs"]) for p in preds]
    if preds and all("logits" in p for p in preds):
        return [float(softmax(np.asarray(p["logits"])).max()) for p in preds]
    return None


# -- orchestration ---------------------------------------------------------------------------

_QUANT = re.compile(r"(?i)(?<![A-Za-z0-9])(I?Q\d+_[A-Z0-9_]*?|BF16|F16|F32)(?=\.gguf$|[^A-Za-z0-9_]|$)")


def guess_quant(ref) -> str:
    if ref.entry.quant:
        return ref.entry.quant
    m = _QUANT.search(ref.path.name)
    return m.group(1).upper() if m else ""


def _open_model(spec: str, cfg: BenchConfig):
    """A protocol session on the model, the peak-RSS counter reset as it opens."""
    peak_rss_reset()
    try:
        return SESSIONS[cfg.protocol](spec, cfg)
    except SentiEdgeError as exc:
        raise SentiEdgeError(f"model {spec}: {exc}") from None


def engine_info(eng, protocol: str) -> dict:
    """The facts of the files a cell ran on (load time, size, quantization)."""
    ref = eng.ref
    size = ref.path.stat().st_size + (ref.adapter.stat().st_size if ref.adapter else 0)
    return {"name": ref.name, "path": str(ref.path), "adapter": str(ref.adapter) if ref.adapter else None,
            "size_bytes": size, "quant": guess_quant(ref), "params": ref.entry.params, "load_s": eng.load_s,
            "n_threads": eng.n_threads, "n_ctx": eng.n_ctx, "protocol": protocol}


def run_bench(cfg: BenchConfig, *, progress: bool = True) -> dict:
    """Run every pending cell of `cfg`, then write the merged reports; returns the merged results.

    The results directory is locked for the whole run: a second bench on the same directory
    fails at once (rather than waiting hours, or interleaving cells and reports). The lock file
    goes when the run ends, and so does a results folder this run created if nothing landed in it.
    """
    out = cfg.out_dir
    created = not out.exists()
    units = plan(cfg)
    data = load_data(cfg, units)
    busy = f"another senti-edge bench is writing {out}; wait for it to finish, or give another --out"
    lock = out / LOCK_NAME
    try:
        with locked(lock, busy=busy):
            try:
                return _run_locked(cfg, units, data, progress)
            finally:
                lock.unlink(missing_ok=True)
    except BaseException:
        if created:
            _remove_if_empty(out)
        raise


def _remove_if_empty(out: Path) -> None:
    """Remove a results folder that holds no cell (finished or partial): its config.json and empty folders."""
    if not out.is_dir() or any(p.is_file() for d in ("cells", "partial") for p in (out / d).rglob("*.json*")):
        return
    (out / "config.json").unlink(missing_ok=True)
    for d in sorted((p for p in out.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()
    if not any(out.iterdir()):
        out.rmdir()


def report_only(cfg: BenchConfig) -> dict:
    """Rewrite results.json, results.md and the plots from the cells on disk; run nothing.

    config.json is rewritten too: it describes the reports beside it, so a subset run's config
    does not stay next to reports rebuilt over every model.
    """
    from .report import write_reports

    if not cfg.out_dir.is_dir():
        raise SentiEdgeError(f"{cfg.out_dir} does not exist; run the bench into it first")
    units = plan(cfg)
    write_json(cfg.out_dir / "config.json", cfg.to_dict())
    return write_reports(cfg.out_dir, cfg, machine_info(cfg.n_threads), units,
                         current_cells(cfg, units, load_data(cfg, units)))


def current_cells(cfg: BenchConfig, units: Sequence[Unit], data) -> list[dict]:
    """The planned units' cell files whose key still holds (stale or missing cells left out), each
    dataset cell scored again from its predictions by today's `score_cell`, so a metric added
    later (recall per label, ECE) reaches cells run before it."""
    out = []
    for u in units:
        for c in u.cells:
            cell = read_cell(c.path, c.key)
            if cell is None:
                continue
            if not c.robustness:
                by_index = {it.index: it for it in _items(data, cfg, c)[1]}
                cell["metrics"] = score_cell(c.spec, [by_index[p["index"]] for p in cell["predictions"]],
                                             cell["predictions"])
            out.append(cell)
    return out


def _run_locked(cfg: BenchConfig, units: list[Unit], data, progress: bool) -> dict:
    from tqdm import tqdm

    from .report import write_reports

    write_json(cfg.out_dir / "config.json", cfg.to_dict())
    machine = machine_info(cfg.n_threads)
    pending = [(u, u.pending) for u in units]
    total = sum(len(_items(data, cfg, c)[1]) for _, cells in pending for c in cells)
    log.info("%d cells to run (%d items)", sum(len(c) for _, c in pending), total)
    bar = tqdm(total=total, unit="ex", disable=not progress, dynamic_ncols=True, leave=True)
    start = time.perf_counter()
    try:
        for unit, cells in pending:
            if cells:
                _run_unit(unit, cells, cfg, data, machine, bar)
    finally:
        bar.close()
    return write_reports(cfg.out_dir, cfg, machine, units, current_cells(cfg, units, data),
                         wall_s=time.perf_counter() - start)


def _run_unit(unit: Unit, cells: list[Cell], cfg: BenchConfig, data, machine: dict, bar) -> None:
    sess = None
    if unit.kind == "model":
        sess = _open_model(unit.spec, cfg)
    else:
        peak_rss_reset()
        info = {"name": unit.spec, "path": None, "adapter": None, "quant": "", "params": "", "load_s": 0.0,
                "n_threads": cfg.n_threads or 1, "n_ctx": None}
    fitted: dict[str, bl.Fitted] = {}

    def baseline(spec: DatasetSpec) -> bl.Fitted:
        if spec.name not in fitted:
            fitted[spec.name] = bl.fit(unit.spec, spec, data[spec.name][0], cfg.n_threads or 1)
        return fitted[spec.name]

    try:
        for cell in cells:
            bar.set_description(f"{unit.id} {cell.spec.name}" + (" robustness" if cell.robustness else ""))
            body = (_robustness_cell(unit, cell, cfg, data, sess, baseline, bar) if cell.robustness
                    else _dataset_cell(unit, cell, cfg, data, sess, baseline, bar))
            if sess is not None:  # after the cell: a task may open its own engine
                cell_info = engine_info(sess.engine_for(cell.spec), cfg.protocol)
            else:
                cell_info = dict(info, size_bytes=body["cost"].get("size_bytes"))
            write_json(cell.path, {"model": unit.spec, "model_id": unit.id, "kind": unit.kind,
                                   "protocol": cfg.protocol if unit.kind == "model" else None,
                                   "dataset": ROBUSTNESS if cell.robustness else cell.spec.name,
                                   "category": cell.spec.category, "seed": cell.seed, "settings": cell.key,
                                   "model_info": cell_info, "machine": machine,
                                   "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **body})
            _drop_partial(cfg.out_dir, cell.path)
    finally:
        if sess is not None:
            sess.close()


def _dataset_cell(unit: Unit, cell: Cell, cfg: BenchConfig, data, sess, baseline, bar) -> dict:
    spec = cell.spec
    train, test = _items(data, cfg, cell)
    if sess is not None:
        preds, extra, cost = _model_predictions(cell, cfg, sess, train, test, bar)
    else:
        f = baseline(spec)  # fitting is its own column, not prediction time
        timer = Timer(bar.update)
        preds = [{"index": it.index, "pred": p} for it, p in zip(test, f.predict(test))]
        timer.done(len(test))
        extra, cost = {}, timer.cost()
        for p, ms in zip(preds, timer.ms):
            p["ms"] = round(ms, 3)
        cost.update(prompt_tokens=0, generated_tokens=0, truncated=0, fit_s=f.fit_s, size_bytes=f.size_bytes)
    cost["peak_rss_mb"] = peak_rss_mb()
    return {"n": len(test), "metrics": score_cell(spec, test, preds), "demos": extra.pop("demos", []),
            "cost": cost, **extra, "predictions": preds}


_STATS = ("prompt_tokens", "generated_tokens", "truncated")


def _model_predictions(cell: Cell, cfg: BenchConfig, sess, train, test: list[Item], bar) -> tuple[list[dict], dict, dict]:
    """A model's predictions for one cell, `CHUNK` items at a time. Each finished chunk (predictions,
    extras, time, token counts) is appended to the partial file, whose first line holds the cell's
    key and chunk size; chunks already there under the same header are reused, a file of another is
    dropped."""
    path = partial_path(cfg.out_dir, cell.path)
    header = {"start": -1, "settings": cell.key, "chunk": CHUNK}
    log_ = JsonlAppender(path, id_key="start")
    if log_.records[:1] != [header]:
        log_.close()
        path.unlink()
        log_ = JsonlAppender(path, id_key="start")
        log_.append(header)
    chunks = {r["start"]: r for r in log_.records if r["start"] >= 0}
    run = sess.tuples if cell.spec.generative else sess.classify
    with log_:
        for start in range(0, len(test), CHUNK):
            part = test[start:start + CHUNK]
            if start in chunks:
                bar.update(len(part))
                continue
            timer = Timer(bar.update)
            stats = sess.engine_for(cell.spec).stats
            before = [getattr(stats, s) for s in _STATS]
            preds, extra = run(cell.spec, train, part, cell.seed, timer)
            for p, ms in zip(preds, timer.ms):
                p["ms"] = round(ms, 3)
            counts = {s: getattr(stats, s) - b for s, b in zip(_STATS, before)}
            chunks[start] = {"start": start, "preds": preds, "extra": extra, "eval_s": timer.cost()["eval_s"], **counts}
            log_.append(chunks[start])
    ordered = [chunks[s] for s in sorted(chunks)]
    preds = [p for c in ordered for p in c["preds"]]
    eval_s = sum(c["eval_s"] for c in ordered)
    ms = [p["ms"] for p in preds]
    cost = {"eval_s": eval_s, "examples_per_s": len(preds) / eval_s if eval_s > 0 else None,
            "ms_per_example_median": statistics.median(ms) if ms else None,
            **{s: sum(c[s] for c in ordered) for s in _STATS}, "fit_s": None, "size_bytes": None}
    per_item_demos = sess.protocol == "paper" and cfg.demos == "per-example"
    return preds, _merge_extras([c["extra"] for c in ordered], per_item_demos), cost


def _merge_extras(extras: list[dict], per_item_demos: bool) -> dict:
    """One cell's extras from its chunks': targets united in order, per-example demos joined,
    the rest (label order, a fixed demonstration draw) as the first chunk has them."""
    out: dict = {}
    for extra in extras:
        for k, v in extra.items():
            if k == "targets":
                out.setdefault(k, [])
                out[k] += [t for t in v if t not in out[k]]
            elif k == "demos" and per_item_demos:
                out.setdefault(k, []).extend(v)
            else:
                out.setdefault(k, v)
    return out


def _drop_partial(out_dir: Path, cell: Path) -> None:
    """Remove a finished cell's partial file and the folders it leaves empty."""
    path = partial_path(out_dir, cell)
    path.unlink(missing_ok=True)
    top = Path(out_dir) / "partial"
    for d in path.parents:
        if d == top.parent or not d.is_dir() or any(d.iterdir()):
            break
        d.rmdir()


def _robustness_cell(unit: Unit, cell: Cell, cfg: BenchConfig, data, sess, baseline, bar) -> dict:
    train, test = _items(data, cfg, cell)
    if sess is None:
        f = baseline(cell.spec)

        def label(texts: list[str]) -> list[str]:
            return f.predict([Item(i, t, None) for i, t in enumerate(texts)])
    else:
        label = sess.labeler(cell.spec, train, cell.seed)
    t0 = time.perf_counter()
    result = robustness(label, [it.text for it in test])
    bar.update(len(test))
    return {"n": len(test), "robustness": result,
            "cost": {"eval_s": time.perf_counter() - t0, "peak_rss_mb": peak_rss_mb()}}
