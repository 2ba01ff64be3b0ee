"""`senti-edge bench`: parse options, build a BenchConfig, call `runner.run_bench`, print where results went."""

from __future__ import annotations

import os

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
@click.option("baselines", "-b", "--baseline", multiple=True, type=click.Choice(["majority", "vader"]),
              help="Baseline without an LLM (repeatable); vader runs on the polarity sets only.")
@click.option("datasets", "-d", "--datasets", default="all", show_default=True,
              help="Comma list of dataset names and categories (basic, multifaceted, fine-grained).")
@click.option("--data-dir", envvar="SENTIBENCH_DIR", required=True, type=click.Path(file_okay=False),
              help="SentiBench root holding <category>/<dataset>/<split>.json (env SENTIBENCH_DIR).")
@click.option("--split", default="val", show_default=True, help="Split to evaluate (file name without .json).")
@click.option("--out", "out_dir", default="bench-results", show_default=True, type=click.Path(file_okay=False),
              help="Results directory; rerunning with the same settings skips finished cells. "
                   "Locked while a bench writes it: a second bench on it stops at once with an error.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Evaluate the first N items per dataset.")
@click.option("--shots", type=click.IntRange(min=0), default=4, show_default=True, help="Demonstrations per prompt.")
@click.option("--seeds", default="42", show_default=True, callback=_seeds,
              help="Comma-separated demonstration seeds; scores are averaged with their spread.")
@click.option("--demos", type=click.Choice(["fixed", "per-example"]), default="fixed", show_default=True,
              help="fixed: one draw per dataset and seed, cached prefix (fast); per-example: the paper's.")
@click.option("--grammar/--no-grammar", default=False, show_default=True,
              help="Constrain fine-grained generation with a GBNF grammar (no format errors).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=150, show_default=True,
              help="New tokens per fine-grained answer.")
@click.option("--demo-chars", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Cut each demonstration text to this many characters (keeps long reviews in context).")
@click.option("--threads", "n_threads", type=click.IntRange(min=1), default=None,
              help="llama.cpp threads [default: free cores].")
@click.option("--ctx", "n_ctx", type=click.IntRange(min=256), default=4096, show_default=True,
              help="Context size in tokens.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def bench(no_progress: bool, datasets: str, **opts) -> None:
    """Measure models on SentiBench: quality against latency, size and memory.

    Writes one JSON per (model, dataset, seed) with every prediction, a merged results.json,
    results.md (rows models, columns datasets, category averages, cost) and two PNG plots
    (quality against ms/example and against file size, Pareto front marked).

    \b
    Examples:
        senti-edge bench -m smollm2-135m -b majority -b vader --data-dir ../shared/sentibench --limit 20
        senti-edge bench -m smollm2-135m -m gemma3-270m -d basic,pstance --seeds 42,52,62
        senti-edge bench -m ./student-Q4_0.gguf -d fine-grained --grammar --split test --out runs/test
    """
    from ..cli import friendly_errors  # imported here: senti_edge.cli imports this module

    friendly_errors(_run)(datasets, not no_progress, opts)


def _run(datasets: str, progress: bool, opts: dict) -> None:
    from .datasets import select_datasets
    from .runner import BenchConfig, run_bench

    cfg = BenchConfig(datasets=tuple(d.name for d in select_datasets(datasets)), **opts)
    results = run_bench(cfg, progress=progress)
    click.echo((cfg.out_dir / "results.md").read_text(encoding="utf-8"))
    click.echo(f"Results in {cfg.out_dir}{os.sep}: results.json, results.md, {', '.join(results['plots'])}", err=True)


COMMANDS = [bench]
