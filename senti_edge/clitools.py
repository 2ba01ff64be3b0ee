"""The one error wrapper every command uses, so no sub-CLI imports the root `cli.py`.

Library errors (`SentiEdgeError`) and expected OS errors become one `Error: ...` line and exit
code 1; Ctrl-C exits 130, a closed pipe 141; usage errors stay click's (exit 2).
"""

from __future__ import annotations

import contextlib
import functools
import sys
from typing import Callable, Iterator

import click

from .errors import SentiEdgeError
from .jsonl import DISK_FULL

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
