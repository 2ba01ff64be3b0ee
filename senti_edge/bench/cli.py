"""`senti-edge bench`: parse options, build a BenchConfig, call `runner.run_bench`, print where results went;
`senti-edge compare`: the model card's summary of a bench run (`compare.py`)."""

from __future__ import annotations

import os
from pathlib import Path

import click


def _seeds(ctx, param, value: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in value.split(",") if s.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r}: give comma-separated integers, e.g. 42,52,62") from None
    if not seeds:
        raise click.BadParameter("give at least one seed")
    return seeds


@click.command("bench")
@click.option("models", "-m", "--model", multiple=True,
              help="Model to measure: registry name, .gguf path or BASE+ADAPTER.gguf (repeatable).")
@click.option("baselines", "-b", "--baseline", multiple=True, type=click.Choice(["majority", "vader", "tfidf", "minilm"]),
              help="Baseline without an LLM (repeatable): majority, vader (polarity sets only), or a classifier "
                   "trained on each train split: tfidf (TF-IDF + logistic regression), minilm (all-MiniLM-L6-v2 "
                   "embeddings + logistic regression; pip install 'senti-edge[bench-encoder]').")
@click.option("--protocol", type=click.Choice(["shipped", "paper"]), default="shipped", show_default=True,
              help="shipped: exactly what `senti-edge analyze` does by default (zero-shot, calibrated); "
                   "paper: --shots demonstrations, raw arg-max, no calibration.")
@click.option("datasets", "-d", "--datasets", default="all", show_default=True,
              help="Comma list of dataset names and categories (basic, multifaceted, fine-grained).")
@click.option("--data-dir", envvar="SENTIBENCH_DIR", required=True, type=click.Path(file_okay=False),
              help="SentiBench root holding <category>/<dataset>/<split>.json (env SENTIBENCH_DIR).")
@click.option("--split", default="val", show_default=True, help="Split to evaluate (file name without .json).")
@click.option("--out", "out_dir", default="bench-results", show_default=True, type=click.Path(file_okay=False),
              help="Results directory; rerunning with the same settings skips finished cells. "
                   "Locked while a bench writes it: a second bench on it stops at once with an error.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Evaluate the first N items per dataset.")
@click.option("--shots", type=click.IntRange(min=0), default=4, show_default=True,
              help="paper: demonstrations per prompt.")
@click.option("--seeds", default="42", show_default=True, callback=_seeds,
              help="paper: comma-separated demonstration seeds; scores are averaged with their spread.")
@click.option("--demos", type=click.Choice(["fixed", "per-example"]), default="fixed", show_default=True,
              help="paper: fixed: one draw per dataset and seed, cached prefix (fast); per-example: the paper's.")
@click.option("--grammar/--no-grammar", default=False, show_default=True,
              help="paper: constrain fine-grained generation with a GBNF grammar (no format errors).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=150, show_default=True,
              help="paper: new tokens per fine-grained answer.")
@click.option("--demo-chars", type=click.IntRange(min=1), default=2000, show_default=True,
              help="paper: cut each demonstration text to this many characters (keeps long reviews in context).")
@click.option("--robust-n", type=click.IntRange(min=0), default=50, show_default=True,
              help="Robustness columns: perturb the first N val sentences of --robust-dataset (0: skip).")
@click.option("--robust-dataset", default="sst2", show_default=True,
              help="Polarity set whose val sentences the robustness columns perturb.")
@click.option("--threads", "n_threads", type=click.IntRange(min=1), default=None,
              help="llama.cpp threads [default: free cores].")
@click.option("--ctx", "n_ctx", type=click.IntRange(min=256), default=4096, show_default=True,
              help="Context size in tokens.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@click.option("--report-only", is_flag=True,
              help="Run nothing: rewrite results.json, results.md and the plots from the cells in --out.")
def bench(no_progress: bool, report_only: bool, datasets: str, **opts) -> None:
    """Measure models on SentiBench: quality against latency, size and memory.

    Writes one JSON per cell with every prediction, a merged results.json, results.md (scores
    with 95% bootstrap intervals, category averages, cost and robustness columns) and two PNG
    plots (quality against ms/example and against file size, Pareto front marked). A cell is
    reused only while the model, adapter and data files (by sha256), the protocol and n_ctx
    are unchanged.

    \b
    Examples:
        senti-edge bench -m senti-smollm2-135m -b tfidf -b vader --data-dir ../shared/sentibench --limit 50
        senti-edge bench -m smollm2-135m --protocol paper -d basic,pstance --seeds 42,52,62
        senti-edge bench -m ./student-Q4_0.gguf -d fine-grained --protocol paper --grammar --split test
        senti-edge bench -m senti-smollm2-135m -b tfidf --out runs/val --report-only
    """
    from ..clitools import friendly_errors

    friendly_errors(_run)(datasets, not no_progress, report_only, opts)


def _run(datasets: str, progress: bool, report_only: bool, opts: dict) -> None:
    from .datasets import select_datasets
    from .runner import BenchConfig, report_only as rewrite, run_bench

    cfg = BenchConfig(datasets=tuple(d.name for d in select_datasets(datasets)), **opts)
    results = rewrite(cfg) if report_only else run_bench(cfg, progress=progress)
    click.echo((cfg.out_dir / "results.md").read_text(encoding="utf-8"))
    click.echo(f"Results in {cfg.out_dir}{os.sep}: results.json, results.md, {', '.join(results['plots'])}", err=True)


def _bases(ctx, param, values: tuple[str, ...]) -> dict[str, str]:
    bases = {}
    for item in values:
        student, sep, base = item.partition("=")
        if not sep or not student or not base:
            raise click.BadParameter(f"takes STUDENT=BASE, got {item!r}")
        bases[student] = base
    return bases


# A command of its own, not `bench compare`: `bench` is one command whose options (a required
# --data-dir among them) would have to come before a subcommand if it were a group.
@click.command("compare")
@click.argument("results_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--teacher", help="Model id of the teacher in that run.")
@click.option("bases", "--base", multiple=True, metavar="STUDENT=BASE", callback=_bases,
              help="Model id of a student and of its base model (repeatable).")
@click.option("json_out", "--json", type=click.Path(dir_okay=False, path_type=Path), help="Also write the rows as JSON.")
def compare(results_dir: Path, teacher: str | None, bases: dict[str, str], json_out: Path | None) -> None:
    """Students against their teacher and base models, from one `senti-edge bench` run.

    Prints the model card's summary from RESULTS_DIR (a bench --out directory): mean macro-F1 on
    the classification sets with its spread and 95% interval, the gain over the base, the share of
    the teacher's score, the polarity sets, fine-grained micro-F1 and format errors, size and
    speed against the teacher, and the robustness columns. Every figure comes from the cells.

    \b
    Examples:
        senti-edge compare results/run --teacher qwen2.5-coder-1.5b --base senti-smollm2-135m=smollm2-135m
        senti-edge compare results/run --teacher qwen2.5-coder-1.5b --json rows.json
    """
    from ..clitools import friendly_errors

    friendly_errors(_compare)(results_dir, teacher, bases, json_out)


def _compare(results_dir: Path, teacher: str | None, bases: dict[str, str], json_out: Path | None) -> None:
    from ..jsonl import write_json
    from .compare import markdown, read_results, relative_rows

    rows = relative_rows(read_results(results_dir), teacher, bases)
    click.echo(markdown(rows))
    if json_out:
        write_json(json_out, rows)


COMMANDS = [bench, compare]
