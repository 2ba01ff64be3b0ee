"""`senti-edge analyze` and `senti-edge models`: thin commands over the runtime."""

from __future__ import annotations

import collections
import contextlib
import sys
import time
from pathlib import Path

import click

from ..inputs import MAX_FILE_BYTES, MAX_TEXT_CHARS
from .prompts import TASKS

TASK_NAMES = sorted(TASKS)


def _friendly(fn):
    from ..cli import friendly_errors  # late: senti_edge.cli imports this module

    return friendly_errors(fn)


def _count_lines(paths: tuple[str, ...]) -> int | None:
    """A cheap total for the progress bar (newlines in regular files); None for stdin."""
    total = 0
    for p in paths:
        if p == "-" or not Path(p).is_file():
            return None
        with open(p, "rb") as fh:
            total += sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    return total


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("files", nargs=-1, metavar="[FILE]...")
@click.option("model", "-m", "--model", envvar="SENTI_EDGE_MODEL", help="Registry name or .gguf path (BASE+ADAPTER.gguf also works). Default: senti-smollm2-135m, the distilled SmolLM2; smollm2-135m is its base.")
@click.option("--adapter", type=click.Path(dir_okay=False), help="A GGUF LoRA adapter applied to the model at load time.")
@click.option("-t", "--task", type=click.Choice(TASK_NAMES), default="polarity", show_default=True, help="What to label.")
@click.option("--labels", help="Comma-separated custom label set (overrides the task's labels).")
@click.option("--target", help="Stance target, for --task stance.")
@click.option("--target-field", help="Per-record stance target field in .jsonl/.csv input.")
@click.option("--shots", type=click.Path(dir_okay=False), help="Few-shot demonstrations: .jsonl with text,label or a TSV of label<TAB>text.")
@click.option("--calibrate/--no-calibrate", default=True, show_default=True, help="Divide out the model's label prior, measured on content-free inputs (three extra texts per run).")
@click.option("--document", is_flag=True, help="Treat each file as one text instead of one text per line.")
@click.option("--field", help="Text field of .jsonl/.csv input.  [default: text]")
@click.option("--errors", type=click.Choice(["strict", "replace"]), default="strict", show_default=True, help="On invalid UTF-8: stop with the line number, or replace bad bytes and go on.")
@click.option("--max-file-mb", type=click.IntRange(min=0), default=MAX_FILE_BYTES // 1_000_000, show_default=True, help=f"Refuse an input file larger than this many MB (10^6 bytes) before the model loads (stdin: stop once past it); 0: no limit. Texts are cut at {MAX_TEXT_CHARS:,} characters.")
@click.option("--chunk", is_flag=True, help="Split texts longer than the context and pool their scores (default: truncate with a warning).")
@click.option("--threads", type=click.IntRange(1, 256), help="CPU threads.  [default: free cores]")
@click.option("--ctx", "n_ctx", type=click.IntRange(256, 131072), default=4096, show_default=True, help="Context window in tokens.")
@click.option("-o", "--format", "fmt", type=click.Choice(["table", "json", "jsonl", "csv"]), help="Output format.  [default: table on a terminal, jsonl otherwise]")
@click.option("--output", type=click.Path(dir_okay=False, writable=True), help="Write to FILE (atomically) instead of stdout.")
@click.option("--probs", is_flag=True, help="Include the full label distribution.")
@click.option("--explain", is_flag=True, help="Also write the model's short analysis of each text (generated, about 0.6 s a text on one thread; best with the distilled default model).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line.")
@_friendly
def analyze(files, model, adapter, task, labels, target, target_field, shots, calibrate, document, field,
            errors, max_file_mb, chunk, threads, n_ctx, fmt, output, probs, explain, quiet):
    """Label texts with sentiment, offline, with a calibrated confidence.

    Reads FILE(s), one text per line (blank lines skipped, line numbers kept), or stdin
    when FILE is - or input is piped.

    \b
    Examples:
        senti-edge analyze reviews.txt
        cat tweets.txt | senti-edge analyze -t emotion -o jsonl
        senti-edge analyze posts.csv --field body --probs -o csv --output labels.csv
        senti-edge analyze speech.txt --document --chunk
        senti-edge analyze tweets.txt -t stance --target "climate action"
        senti-edge analyze notes.txt --labels urgent,routine,spam
        senti-edge analyze reviews.txt -t aspects -o json
        senti-edge analyze reviews.txt --explain
    """
    from ..errors import SentiEdgeError
    from ..inputs import read_texts
    from ..jsonl import atomic_open
    from ..output import RowWriter
    from .analyzer import Analyzer

    if not files:
        if sys.stdin.isatty():
            raise click.UsageError("give one or more files, or pipe text in (FILE - reads stdin)")
        files = ("-",)
    label_list = tuple(x for x in labels.split(",")) if labels else None
    records = read_texts(files, document=document, field=field, target_field=target_field, errors=errors,
                         max_file_bytes=max_file_mb * 1_000_000)
    first = next(records, None)  # fail on bad input before loading the model
    if first is None:
        raise SentiEdgeError(f"no texts in {', '.join(files)} (input is empty or blank)")

    az = Analyzer(model=model, adapter=adapter, task=task, labels=label_list, target=target, shots=shots,
                  calibrate=calibrate, chunk=chunk, n_threads=threads, n_ctx=n_ctx, explain=explain)
    fmt = fmt or ("table" if (output is None and sys.stdout.isatty()) else "jsonl")
    show_bar = not quiet and sys.stderr.isatty()
    total = _count_lines(files) if show_bar and not document else None
    counts: collections.Counter = collections.Counter()
    clipped = 0
    t0 = time.perf_counter()
    from tqdm import tqdm

    bar = tqdm(total=total, unit="text", disable=not show_bar, leave=False, file=sys.stderr,
               mininterval=0.5, delay=1.0)

    def records_all():
        yield first
        yield from records

    with (atomic_open(output) if output else contextlib.nullcontext(sys.stdout)) as fh:
        writer = RowWriter(fh, fmt, probs=probs)
        for rec, res in az.stream(records_all(), on_done=bar.update):
            clipped += rec.clipped
            row = {"id": rec.id, "source": rec.source, "line": rec.line, "text": rec.text, **res}
            counts.update([res["label"]] if "label" in res else [f"{len(res['aspects'])} tuples"])
            writer.write(row)
        writer.close()
    bar.close()
    az.close()
    n = sum(counts.values())
    dt = time.perf_counter() - t0
    truncated = az.engine.stats.truncated
    if truncated and not quiet:
        click.echo(f"warning: {truncated} text(s) were longer than the {n_ctx}-token context and were truncated "
                   "(use --chunk to split and pool them)", err=True)
    if not quiet:
        dist = ", ".join(f"{k} {v}" for k, v in counts.most_common())
        more = f"; {clipped} cut at {MAX_TEXT_CHARS:,} characters" if clipped else ""
        click.echo(f"{n} texts in {dt:.1f} s ({n / dt:.1f} texts/s): {dist}{more}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def models():
    """List, fetch and check the known models.

    \b
    Examples:
        senti-edge models list
        senti-edge models pull smollm2-135m
        senti-edge models path qwen2.5-coder-1.5b
    """


@models.command("list")
@_friendly
def models_list():
    """Known models, their size and licence, and whether they are present."""
    from .registry import is_present, load_registry, model_path

    rows = []
    for name, e in load_registry().items():
        present = "yes" if is_present(e) else "no"
        size = f"{e.size / 1e6:,.0f} MB" if e.size else (f"{model_path(e).stat().st_size / 1e6:,.0f} MB" if model_path(e).exists() else "?")
        rows.append((name, e.params or "-", e.quant or "-", size, present, e.role or "local", e.licence or "-"))
    head = ("name", "params", "quant", "size", "present", "role", "licence")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        click.echo("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())


@models.command("pull")
@click.argument("names", nargs=-1)
@click.option("--all", "pull_all", is_flag=True, help="Every model in the registry.")
@click.option("--force", is_flag=True, help="Download and join again even if present.")
@_friendly
def models_pull(names, pull_all, force):
    """Fetch model packages from PyPI (without their dependencies), join and verify them.

    Models whose packages are already installed are joined from site-packages with no network.
    """
    from .registry import DEFAULT_MODEL, get_entry, load_registry, pull

    names = list(load_registry()) if pull_all else (names or (DEFAULT_MODEL,))
    for name in names:
        entry = get_entry(name)
        t0 = time.perf_counter()
        path = pull(entry, force=force)
        click.echo(f"{name}: {path} ({path.stat().st_size / 1e6:,.0f} MB, sha256 ok, {time.perf_counter() - t0:.1f} s)")


@models.command("path")
@click.argument("name")
@_friendly
def models_path(name):
    """Print the GGUF path of a model (materialising it from installed packages if needed)."""
    from .registry import resolve

    click.echo(str(resolve(name).path))


COMMANDS = [analyze, models]
