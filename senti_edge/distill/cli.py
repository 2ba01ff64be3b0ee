"""`senti-edge distill`: run | generate | train | report. Parses, calls pipeline, prints.

torch and transformers are imported only inside the library calls, so loading this module
(which `senti-edge --help` does) costs nothing.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import click

SET_HELP = "Override a config value, e.g. --set train.lr=1e-4 (repeatable)."
STAGE = click.Choice(["knowdist", "icldist"])


def friendly(fn):
    """The root CLI's error handling (SentiEdgeError -> one `Error: ...` line, exit 1; Ctrl-C -> 130),
    looked up at call time because `senti_edge.cli` imports this module."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from ..clitools import friendly_errors

        return friendly_errors(fn)(*args, **kwargs)

    return wrapper


def _config(path, overrides):
    from .config import load_config

    return load_config(path, overrides)


@click.group("distill")
def distill() -> None:
    """Distil a teacher LLM's sentiment knowledge into a small student with LoRA.

    \b
    Stages (each resumable; files in the config's out_dir):
      knowdist-generate  teacher analyses texts from several sentiment perspectives
      knowdist-train     LoRA on the student, learning those analyses
      icldist-generate   teacher answers diversified few-shot task prompts
      icldist-train      LoRA on the stage-1 student, learning answers and label distributions
    """


@distill.command("run")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("overrides", "--set", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@friendly
def run_cmd(config, overrides) -> None:
    """Run every enabled stage of CONFIG in order, skipping those already done.

    \b
    Examples:
      senti-edge distill run configs/distill-smollm2.toml
      senti-edge distill run configs/distill-smollm2.toml --set train.max_steps=20
    """
    from .pipeline import run

    for stage, status in run(_config(config, overrides)):
        if os.environ.get("RANK", "0") == "0":
            click.echo(f"{stage}: {status}")


@distill.command("generate")
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("stage", type=STAGE)
@click.option("--max-items", type=click.IntRange(min=0), default=0, help="Stop after this many new records (0: all).")
@click.option("overrides", "--set", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@friendly
def generate_cmd(config, stage, max_items, overrides) -> None:
    """Ask the teacher for STAGE's records (appends; a rerun resumes).

    \b
    Examples:
      senti-edge distill generate configs/distill-smollm2.toml knowdist --max-items 20
      senti-edge distill generate cfg.toml icldist --set teacher.backend=openai --set teacher.url=http://gpu:8000/v1
    """
    from .pipeline import generate

    m = generate(_config(config, overrides), stage, max_items=max_items)
    r = m["last_run"]
    if not r["new_records"] and not r["errors"]:
        click.echo(f"{stage}: {m['done']}/{m['jobs']} records, nothing new to generate")
        return
    click.echo(f"{stage}: {m['done']}/{m['jobs']} records ({r['new_records']} new, {r['errors']} errors, "
               f"{r['items_per_s']} items/s, {r['completion_tokens_per_s']} generated tok/s)")


@distill.command("train")
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("stage", type=click.Choice(["knowdist", "icldist", "consistency"]))
@click.option("--stop-after", type=click.IntRange(min=0), default=0, help="Checkpoint and stop at this global step (0: run to the end).")
@click.option("overrides", "--set", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@friendly
def train_cmd(config, stage, stop_after, overrides) -> None:
    """Train the student's LoRA on STAGE's teacher records (resumes from the last checkpoint).

    `consistency` (stage 3) needs no teacher: it builds the runtime's zero-shot prompts, with and
    without distractors, from the ICLDist records and the train labels.

    Under `accelerate launch` (or `torchrun`) each of N processes takes a share of every batch
    of train.batch_size sequences; the run equals the single-process one.

    \b
    Examples:
      senti-edge distill train configs/distill-smollm2.toml knowdist
      senti-edge distill train configs/distill-smollm2.toml icldist --set train.batch_size=4
      senti-edge distill train configs/distill-smollm2.toml consistency
      accelerate launch --multi_gpu --num_processes 2 -m senti_edge distill train cfg.toml knowdist
    """
    from .pipeline import train_stage

    state = train_stage(_config(config, overrides), stage, stop_after=stop_after)
    if os.environ.get("RANK", "0") == "0":  # under `accelerate launch`: the main process's copy only
        click.echo(json.dumps(state, indent=2))


@distill.command("pack")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("stages", "--stage", type=STAGE, multiple=True, help="Stage to pack (repeatable; default: both that have records).")
@click.option("--to", "dest", type=click.Path(file_okay=False), help="Destination folder (default: the config's teacher_records).")
@click.option("overrides", "--set", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@friendly
def pack_cmd(config, stages, dest, overrides) -> None:
    """Gzip CONFIG's teacher records into a folder you can commit.

    Records refer to corpus texts by dataset and index, so a pack holds no SentiBench text. A
    config whose teacher_records names the folder starts generation from it, and trains with
    no teacher at all once the pack is complete.

    \b
    Examples:
      senti-edge distill pack configs/distill-smollm2.toml
      senti-edge distill pack cfg.toml --stage icldist --to teacher-outputs/my-run
    """
    from ..errors import SentiEdgeError
    from .pipeline import pack_stage

    cfg = _config(config, overrides)
    stages = stages or tuple(s for s in ("knowdist", "icldist") if (Path(cfg.out_dir) / f"{s}.jsonl").exists())
    if not stages:
        raise SentiEdgeError(f"no teacher records in {cfg.out_dir}; run `senti-edge distill generate` first")
    for stage in stages:
        click.echo(f"{stage}: {pack_stage(cfg, stage, dest)}")


@distill.command("report")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--markdown", is_flag=True, help="Print the model card's data and cost section instead.")
@click.option("overrides", "--set", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@friendly
def report_cmd(config, markdown, overrides) -> None:
    """Print the quality-control and agreement reports and the manifests of CONFIG's run.

    \b
    Examples:
      senti-edge distill report configs/distill-smollm2.toml
      senti-edge distill report configs/distill-smollm2.toml --markdown >> card.md
    """
    cfg = _config(config, overrides)
    if markdown:
        from .card import render

        click.echo(render(cfg), nl=False)
        return
    out = Path(cfg.out_dir)
    for name in ("knowdist.qc.json", "knowdist.manifest.json", "icldist.report.json", "icldist.manifest.json",
                 "knowdist/state.json", "icldist/state.json"):
        if (out / name).exists():
            click.echo(f"== {name}")
            click.echo((out / name).read_text().rstrip())


COMMANDS = [distill]
