"""Run the stages of one config in order, skipping what is already done.

Files in `out_dir` (each stage reads only files written before it):

    config.json                 the effective config
    knowdist.jsonl (+ .manifest.json, knowdist.qc.json)     stage 1 teacher records
    student/                    the student as safetensors (a GGUF student, dequantized)
    knowdist/                   stage 1 training run: checkpoints/, log.csv, adapter/, state.json
    icldist.jsonl (+ .manifest.json, icldist.report.json)   stage 2 teacher records
    knowdist-merged/            stage 1 merged into the student (train.stage2_init = "merge")
    icldist/                    stage 2 training run; `icldist/adapter` on `state.json`'s base_model
    consistency/                stage 3 training run (built from icldist.jsonl and the corpus, no teacher)
"""

from __future__ import annotations

import json
import logging
import os
import random
from pathlib import Path

from ..errors import SentiEdgeError
from ..jsonl import write_json
from . import consistency, icldist, knowdist
from .config import PROVENANCE, DistillConfig
from .corpus import load_corpus
from .records import finish_from_records, generate_records, is_complete, load_records, pack, unpack

log = logging.getLogger(__name__)

STAGES = ("knowdist-generate", "knowdist-train", "icldist-generate", "icldist-train", "consistency-train")


def _save_config(cfg: DistillConfig, out: Path) -> None:
    path = out / "config.json"
    new = cfg.to_dict()
    if path.exists():
        old = json.loads(path.read_text())

        def sources(c: dict | None) -> tuple:  # what refs point into; max_texts only picks a prefix of one order
            c = c or {}
            return c.get("sentibench_dir"), c.get("datasets"), c.get("files"), c.get("text_field", "text")

        if sources(old.get("corpus")) != sources(new["corpus"]) or old.get("seed") != new["seed"]:
            raise SentiEdgeError(
                f"{path} was written with another corpus or seed; records refer to texts by index, "
                "so use a new out_dir (or delete the old one) for a changed corpus")
    write_json(path, new)


def _teacher(cfg: DistillConfig, cache: dict):
    if "teacher" not in cache:
        from .teachers import make_teacher

        cache["teacher"] = make_teacher(cfg.teacher)
    return cache["teacher"]


def processes() -> int:
    """How many processes `accelerate launch` started for this command (1 without it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def generate(cfg: DistillConfig, stage: str, *, max_items: int = 0, teacher=None, cache: dict | None = None) -> dict:
    """Stage `knowdist` or `icldist` generation; resumes an interrupted run.

    With `teacher_records` set, the packed records there are taken first; the teacher is loaded
    only when jobs remain, so a complete pack retrains without it. One process appends the
    records (a server teacher's concurrency is `teacher.concurrency`), so under `accelerate
    launch` it refuses rather than have several processes append to one file."""
    if processes() > 1:
        raise SentiEdgeError(f"{stage} generation runs in one process: run `senti-edge distill generate` without "
                             "`accelerate launch`, then launch the training")
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _save_config(cfg, out)
    corpus = load_corpus(cfg.corpus, cfg.seed)
    mod = knowdist if stage == "knowdist" else icldist
    scfg = cfg.knowdist if stage == "knowdist" else cfg.icldist
    jobs = mod.jobs(corpus, scfg, cfg.seed)
    path = out / f"{stage}.jsonl"
    settings = {**scfg.__dict__, "seed": cfg.seed, "max_errors": cfg.teacher.max_errors}
    if cfg.teacher_records:
        packed = Path(cfg.teacher_records) / f"{stage}.jsonl.gz"
        if packed.is_file():
            n = unpack(packed, path, {j.id for j in jobs})
            log.info("%s: %d records taken from %s", stage, n, packed)
    records = load_records(path) if path.exists() else []
    done = {r.get("id") for r in records}
    if jobs and all(j.id in done for j in jobs):
        manifest = finish_from_records(path, jobs, settings, records)
    else:
        own = teacher is None and cache is None  # a caller's cache keeps its teacher for later stages
        cache = {} if cache is None else cache
        teacher = teacher or _teacher(cfg, cache)
        try:
            manifest = generate_records(path, jobs, mod.make_work(teacher, corpus, scfg),
                                        teacher=teacher, settings=settings, max_items=max_items, desc=stage)
        finally:
            if own:
                teacher.close()
        records = load_records(path)
    if stage == "knowdist":
        write_json(out / "knowdist.qc.json", knowdist.qc_report(records, cfg.knowdist))
    else:
        write_json(out / "icldist.report.json", icldist.report(records, cfg.icldist))
    return manifest


def pack_stage(cfg: DistillConfig, stage: str, dest: str | Path | None = None) -> Path:
    """Gzip a stage's records into `dest` (default: the config's `teacher_records`)."""
    dest = Path(dest or cfg.teacher_records or "")
    if not str(dest) or str(dest) == ".":
        raise SentiEdgeError("give a destination folder (--to DIR) or set teacher_records in the config")
    n = pack(Path(cfg.out_dir) / f"{stage}.jsonl", dest)
    write_json(dest / "config.json", cfg.to_dict())
    log.info("%s: %d records packed into %s", stage, n, dest)
    return dest / f"{stage}.jsonl.gz"


def train_stage(cfg: DistillConfig, stage: str, *, stop_after: int = 0) -> dict:
    from .train import merge_adapter, prepare_student, process_state, train

    out = Path(cfg.out_dir)
    records_path = out / f"{'icldist' if stage == 'consistency' else stage}.jsonl"
    if not is_complete(records_path):
        raise SentiEdgeError(f"{records_path} is not complete; run `senti-edge distill generate {records_path.stem}` first")
    corpus = load_corpus(cfg.corpus, cfg.seed)
    records = load_records(records_path)
    if stage == "consistency":
        old = icldist.examples(records, corpus, cfg) + replay(cfg, corpus)
        examples = consistency.examples(records, corpus, cfg, old)
    else:
        examples = (knowdist if stage == "knowdist" else icldist).examples(records, corpus, cfg)
    # under `accelerate launch`, the main process builds the shared model files, then the others find them
    first = process_state().main_process_first
    with first():
        base = prepare_student(cfg.student, out / "student")
    init_adapter, kl = None, 0.0
    if stage == "consistency":
        kl = cfg.icldist.kl_weight
        if cfg.consistency.init == "icldist":
            init_adapter = out / "icldist" / "adapter"
            if not (init_adapter / "adapter_config.json").is_file():
                raise SentiEdgeError(f"{init_adapter} not found; train stage 2 first or set consistency.init = \"fresh\"")
            # stage 2's adapter belongs to the base it was trained on (stage 1 merged in, with stage2_init = "merge")
            base = Path(json.loads((out / "icldist" / "state.json").read_text("utf-8"))["base_model"])
    if stage == "icldist":
        kl = cfg.icldist.kl_weight
        examples += replay(cfg, corpus)
        kd_adapter = out / "knowdist" / "adapter"
        if cfg.knowdist.enabled and cfg.train.stage2_init != "fresh":
            if not (kd_adapter / "adapter_config.json").is_file():
                raise SentiEdgeError(f"{kd_adapter} not found; train stage 1 first or set train.stage2_init = \"fresh\"")
            if cfg.train.stage2_init == "merge":
                with first():
                    base = merge_adapter(base, kd_adapter, out / "knowdist-merged")
            else:
                init_adapter = kd_adapter
    state = train(examples, base_dir=base, run_dir=out / stage, cfg=cfg.train, seed=cfg.seed,
                  kl_weight=kl, init_adapter=init_adapter, stop_after=stop_after)
    if state.get("complete") and process_state().is_main_process:
        write_provenance(out / stage / "adapter", cfg, stage)
    return state


def write_provenance(adapter: Path, cfg: DistillConfig, stage: str) -> Path:
    """The recipe and the teacher data behind an adapter, written into its directory (as peft keeps
    adapter_config.json beside the weights), so the adapter carries them to `quantize`'s model card.
    Stage 2 also learnt from stage 1 (its start, its replayed examples), so both manifests go in;
    stage 3 is built from stage 2's records."""
    stages = {"knowdist": ("knowdist",), "icldist": ("knowdist", "icldist"), "consistency": ("knowdist", "icldist")}[stage]
    stages = tuple(s for s in stages if s == stage or getattr(cfg, s).enabled)
    data = {}
    for s in stages:
        path = Path(cfg.out_dir) / f"{s}.manifest.json"
        if path.is_file():
            data[s] = json.loads(path.read_text("utf-8"))
    write_json(adapter / PROVENANCE, {"stage": stage, "data": data, "distill_config": cfg.to_dict()})
    return adapter / PROVENANCE


def replay(cfg: DistillConfig, corpus) -> list[dict]:
    """A seeded share of the stage-1 examples for stage 2. Without them, 200 steps of one-word
    label answers taught the SmolLM2 student to answer an analysis request with one word."""
    share = cfg.train.stage2_replay
    path = Path(cfg.out_dir) / "knowdist.jsonl"
    if share <= 0 or not cfg.knowdist.enabled or not path.exists():
        return []
    kd = knowdist.examples(load_records(path), corpus, cfg)
    return random.Random(f"{cfg.seed}:replay").sample(kd, round(share * len(kd)))


def stage_done(cfg: DistillConfig, stage: str) -> bool:
    out = Path(cfg.out_dir)
    name, kind = stage.split("-")
    if kind == "generate":
        return is_complete(out / f"{name}.jsonl")
    state = out / name / "state.json"
    return state.exists() and json.loads(state.read_text()).get("complete", False)


def run(cfg: DistillConfig, *, only: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Every enabled stage in order; returns (stage, "done" | "skipped" | "disabled")."""
    cache: dict = {}
    result = []
    try:
        for stage in STAGES:
            name, kind = stage.split("-")
            if not getattr(cfg, name).enabled or (only and stage not in only):
                result.append((stage, "disabled"))
                continue
            if stage_done(cfg, stage):
                log.info("%s: already done, skipped", stage)
                result.append((stage, "skipped"))
                continue
            if kind == "generate":
                generate(cfg, name, cache=cache)
            else:
                if "teacher" in cache:  # free the teacher's memory before training
                    cache.pop("teacher").close()
                train_stage(cfg, name)
            result.append((stage, "done"))
    finally:
        if "teacher" in cache:
            cache["teacher"].close()
    return result
