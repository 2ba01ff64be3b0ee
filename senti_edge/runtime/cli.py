"""`senti-edge analyze` and `senti-edge models`: thin commands over the runtime."""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import sys
import time
from pathlib import Path

import click

from ..inputs import MAX_FILE_BYTES, MAX_TEXT_CHARS
from ..output import FORMATS
from .tasks import TASKS

TASK_NAMES = sorted(TASKS)
FIRST_BATCH = 8  # texts in the first batch, so the first rows are out within about a second


def _friendly(fn):
    from ..clitools import friendly_errors

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


EXIT_CODES = """\b
Exit codes: 0 done; 1 bad input or another error (one `Error: ...` line); 2 wrong usage;
130 interrupted (Ctrl-C); 143 terminated (SIGTERM); 141 the output pipe closed early."""


@click.command(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES)
@click.argument("files", nargs=-1, metavar="[FILE]...")
@click.option("model", "-m", "--model", envvar="SENTI_EDGE_MODEL", help="Registry name or .gguf path (BASE+ADAPTER.gguf also works). Default: senti-smollm2-135m, the distilled SmolLM2; smollm2-135m is its base.")
@click.option("--adapter", type=click.Path(dir_okay=False), help="A GGUF LoRA adapter applied to the model at load time.")
@click.option("-t", "--task", type=click.Choice(TASK_NAMES), default="polarity", show_default=True, help="What to label (`senti-edge tasks` lists them).")
@click.option("--labels", help="Comma-separated custom label set; with a neutral instruction unless --instruction or a task's own labels (in any order).")
@click.option("--instruction", help="Your own instruction for the model; {labels} is replaced by the label list (appended if absent), {target} by --target.")
@click.option("--target", help="Stance target, for --task stance (the default for records without --target-field).")
@click.option("--target-field", help="Per-record stance target field in .jsonl/.json/.csv input.")
@click.option("--shots", type=click.Path(dir_okay=False), help="Few-shot demonstrations: .jsonl/.json with text,label or a TSV of label<TAB>text.")
@click.option("--calibrate/--no-calibrate", default=True, show_default=True, help="Use the calibration the model carries for the task (a label bias, or a head over its vocabulary logits, fitted on labelled data), else divide out its label prior measured on content-free inputs; --no-calibrate: the raw label-word arg-max.")
@click.option("--document", is_flag=True, help="Treat each file as one text instead of one text per line (for .jsonl/.json/.csv: the --field texts joined); read whole.")
@click.option("--field", help="Text field of .jsonl/.json/.csv input.  [default: text]")
@click.option("--strict", is_flag=True, help="Stop with an error at the first record that would be skipped (no text) or converted (a number, a list, a text cut) instead of counting it.")
@click.option("--errors", type=click.Choice(["strict", "replace"]), default="strict", show_default=True, help="On invalid UTF-8/16/32: stop with the line number, or replace bad bytes and go on.")
@click.option("--max-file-mb", type=click.IntRange(min=0), default=MAX_FILE_BYTES // 1_000_000, show_default=True, help=f"Refuse an input file larger than this many MB (10^6 bytes) before the model loads (stdin: stop once past it); 0: no limit. Line-per-text texts are cut at {MAX_TEXT_CHARS:,} characters.")
@click.option("--chunk", is_flag=True, help="Split texts longer than the context and pool their scores (default: truncate with a warning).")
@click.option("--chunk-labels", is_flag=True, help="With --chunk: also report each chunk's label and confidence (`chunks`).")
@click.option("--threads", type=click.IntRange(1, 256), help="CPU threads.  [default: free cores]")
@click.option("--ctx", "n_ctx", type=click.IntRange(256, 131072), default=4096, show_default=True, help="Context window in tokens.")
@click.option("-o", "--format", "fmt", type=click.Choice(FORMATS), help="Output format. CSV cells starting with = + - @ (or tab, CR) get a leading ' so spreadsheets do not run them as formulas; the table shows control characters as \\x.. escapes.  [default: from the --output extension (.csv .json .jsonl .txt), else table on a terminal, jsonl otherwise]")
@click.option("--output", type=click.Path(dir_okay=False, writable=True), help="Write to FILE (atomically, when the run completes) instead of stdout; its directory must exist and it must not be an input.")
@click.option("--probs", is_flag=True, help="Include the full label distribution.")
@click.option("--text/--no-text", "with_text", default=None, help="Repeat each text in the output.  [default: yes, but no for --document]")
@click.option("--keep-fields", default="all", show_default=True, help="Input fields of .jsonl/.json/.csv records to copy into each row: all, none, or a comma list (a name taken by a result column becomes input_<name>).")
@click.option("--explain", is_flag=True, help="Also write the model's short analysis of each text (generated, about 0.6 s a text on one thread; best with the distilled default model). For polarity, binary, emotion, irony and stance.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line.")
@_friendly
def analyze(files, model, adapter, task, labels, instruction, target, target_field, shots, calibrate, document, field,
            strict, errors, max_file_mb, chunk, chunk_labels, threads, n_ctx, fmt, output, probs, with_text,
            keep_fields, explain, quiet):
    """Label texts with sentiment, offline, with a calibrated confidence.

    Reads FILE(s), one text per line (blank lines skipped, line numbers kept), .jsonl/.json/.csv
    records (their --field), or stdin when FILE is - or input is piped.

    \b
    Output columns: id (source:line), source, line, text, label, confidence,
    probs (--probs; p_<label> in CSV), explanation (--explain), chunks (--chunk-labels);
    aspects and complete for -t aspects; then the input record's own fields.

    \b
    Examples:
        senti-edge analyze reviews.txt
        cat tweets.txt | senti-edge analyze -t emotion -o jsonl
        senti-edge analyze posts.csv --field body --probs --output labels.csv
        senti-edge analyze speech.txt --document --chunk --chunk-labels
        senti-edge analyze tweets.txt -t stance --target "climate action"
        senti-edge analyze notes.txt --labels urgent,routine,spam
        senti-edge analyze reviews.txt -t aspects -o json
        senti-edge analyze reviews.txt --explain
    """
    from ..inputs import Tally, read_texts
    from ..output import format_for

    if not files:
        if sys.stdin.isatty():
            raise click.UsageError("give one or more files, or pipe text in (FILE - reads stdin)")
        files = ("-",)
    if chunk_labels and (not chunk or task == "aspects"):
        raise click.UsageError("--chunk-labels needs --chunk and a label task (not -t aspects)")
    the_task = _check_task(task, labels, instruction, target, target_field, explain)
    _check_output(output, files)
    tally = Tally(strict)
    records = read_texts(files, document=document, field=field, target_field=target_field, target=target,
                         errors=errors, max_file_bytes=max_file_mb * 1_000_000, tally=tally)
    if the_task.needs_target and not target:
        records = _with_targets(records, tally)
    first = next(records, None)  # fail on bad input before loading the model
    if first is None:
        raise click.ClickException(f"no texts in {', '.join(files)} (input is empty or blank"
                                   + (f"; {tally.summary()})" if tally.summary() else ")"))
    keep = None if keep_fields == "all" else () if keep_fields == "none" else tuple(
        k.strip() for k in keep_fields.split(",") if k.strip())
    fmt = format_for(output, fmt, sys.stdout.isatty())
    _run(itertools.chain([first], records), files, tally, the_task, fmt, output, quiet, document, chunk_labels,
         row_options={"text": (not document) if with_text is None else with_text, "keep": keep,
                      "labels": the_task.labels},
         analyzer_options={"model": model, "adapter": adapter, "task": task, "labels": the_task.labels if labels else None,
                           "instruction": instruction, "target": target, "shots": shots, "calibrate": calibrate,
                           "chunk": chunk, "n_threads": threads, "n_ctx": n_ctx, "explain": explain,
                           "verbose": bool(click.get_current_context().find_root().params.get("verbose"))},
         probs=probs)


def _check_task(task, labels, instruction, target, target_field, explain):
    """The task as the Analyzer will build it, checked before the model loads."""
    from ..errors import SentiEdgeError
    from .prompts import explain_focus
    from .tasks import get_task

    the_task = get_task(task, labels.split(",") if labels else None, instruction)
    if the_task.needs_target and not (target or target_field):
        raise SentiEdgeError(f"task {the_task.name!r} needs --target or --target-field (what the stance is towards)")
    if (target or target_field) and not the_task.needs_target and "{target}" not in (instruction or ""):
        raise click.UsageError("--target and --target-field apply to -t stance (or an --instruction with {target})")
    if explain:
        explain_focus(the_task)
    return the_task


def _check_output(output, files) -> None:
    """--output must go to an existing directory and must not replace an input file."""
    from ..errors import SentiEdgeError

    if not output:
        return
    out = Path(output)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise SentiEdgeError(f"--output {output}: directory {parent} does not exist; create it first")
    for f in files:
        if f != "-" and out.exists() and Path(f).exists() and os.path.samefile(f, out):
            raise SentiEdgeError(f"--output {output} is the input file {f}; write the results to another file")


def _with_targets(records, tally):
    """Stance records without a --target-field value (and no --target to fall back on) are skipped and counted."""
    for rec in records:
        if rec.target:
            yield rec
        else:
            tally.skip(rec.id, "no stance target")


def _batches(records, first: int = FIRST_BATCH, size: int = 64):
    """Records in lists: a small first one, so the first rows arrive within a second, then `size`."""
    batch: list = []
    limit = first
    for rec in records:
        batch.append(rec)
        if len(batch) >= limit:
            yield batch
            batch, limit = [], size
    if batch:
        yield batch


def _run(records, files, tally, the_task, fmt, output, quiet, document, chunk_labels, *, row_options,
         analyzer_options, probs) -> None:
    """Load the model, label the records batch by batch, write and flush each batch, then summarise."""
    from tqdm import tqdm

    from ..clitools import interrupt_note
    from ..jsonl import atomic_open
    from ..output import RowWriter, make_row
    from .analyzer import BATCH, Analyzer

    show_bar = not quiet and sys.stderr.isatty()
    total = _count_lines(files) if show_bar and not document else None
    counts: collections.Counter = collections.Counter()
    t0 = time.perf_counter()
    bar = tqdm(total=total, unit="text", disable=not show_bar, leave=False, file=sys.stderr, mininterval=0.5, delay=1.0)
    to_tty = fmt == "table" and output is None and show_bar
    writer = None
    fields_seen: set = set()

    def kept() -> str:
        if output:
            return f"nothing was written ({output} {'is unchanged' if Path(output).exists() else 'was not created'})"
        n = writer.n if writer else 0
        return "no rows were written" if not n else f"{n} complete row{'s' * (n != 1)} were written" + (
            " (the JSON array is not closed)" if fmt == "json" else "")

    with interrupt_note(kept), contextlib.closing(Analyzer(**analyzer_options)) as az, \
            (atomic_open(output) if output else contextlib.nullcontext(sys.stdout)) as fh:
        writer = RowWriter(fh, fmt, probs=probs, labels=the_task.labels if not the_task.generative else ())
        for batch in _batches(records, size=BATCH):
            if chunk_labels:
                results = [az.classify_chunks(rec.text, rec.target) for rec in batch]
                bar.update(len(batch))
            else:
                results = [res for _, res in az.stream(batch, on_done=bar.update)]
            rows = [make_row(rec, res, **row_options) for rec, res in zip(batch, results)]
            fields_seen.update(name for rec in batch for name in (rec.fields or ()))
            counts.update(r["label"] if "label" in r else _tuples(len(r["aspects"])) for r in rows)
            with tqdm.external_write_mode(file=sys.stdout) if to_tty else contextlib.nullcontext():
                writer.write_batch(rows)
        writer.close()
        truncated = az.engine.stats.truncated
    bar.close()
    if quiet:
        return
    if truncated:
        click.echo(f"warning: {truncated} text(s) were longer than the {analyzer_options['n_ctx']}-token context and "
                   "were truncated (use --chunk to split and pool them)", err=True)
    missing = [k for k in row_options["keep"] or () if k not in fields_seen]
    if missing:
        click.echo(f"warning: --keep-fields {', '.join(missing)}: no input record has such a field", err=True)
    if writer.unknown:
        click.echo(f"warning: fields {', '.join(sorted(writer.unknown))} first appear after the CSV header was "
                   "written and are not in the CSV; use -o jsonl, or --keep-fields", err=True)
    n, dt = sum(counts.values()), time.perf_counter() - t0
    # "positive 7, negative 5"; for opinion lists "2 with 1 tuple, 1 with 0 tuples"
    dist = ", ".join(f"{v} with {k}" if the_task.generative else f"{k} {v}" for k, v in counts.most_common())
    more = f"; {tally.summary()}" if tally.summary() else ""
    click.echo(f"{n} text{'s' * (n != 1)} in {dt:.1f} s ({n / dt:.3g} texts/s): {dist}{more}", err=True)


def _tuples(n: int) -> str:
    return f"{n} tuple{'s' * (n != 1)}"


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
    from .fetch import is_present
    from .registry import load_registry, model_path

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
    from .fetch import pull
    from .registry import DEFAULT_MODEL, get_entry, load_registry

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
    from .fetch import resolve

    click.echo(str(resolve(name).path))


from .doctor import doctor  # noqa: E402  (its heavy imports are inside)

COMMANDS = [analyze, models, doctor]
