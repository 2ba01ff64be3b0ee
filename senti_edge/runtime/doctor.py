"""`senti-edge doctor`: everything about this machine that decides how senti-edge runs.

It is what a user pastes into a bug report: versions, llama.cpp's own system line, the CPU and
the features llama.cpp's fast paths depend on, the extra-buffer decision for each present model
and why, the cache directory, the models present with their hashes, and the threads chosen.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import sys

import click

from .cpu import FEATURES


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def report(probe: bool = True) -> dict:
    """The report as plain data; `probe=False` shows only decisions already made."""
    from .cpu import ENV, cpu, decide, known_decision, llama_system_info
    from .engine import free_cores
    from ..files import cache_home
    from .fetch import is_present, materialise, shipped_adapter, task_adapter
    from .registry import load_registry

    c = cpu()
    models, decisions = [], {}
    for name, entry in load_registry().items():
        if not is_present(entry):
            continue
        path = materialise(entry)
        stamp = path.with_name(path.name + ".verified")
        sha = json.loads(stamp.read_text())["sha256"] if stamp.is_file() else None
        # the model as loaded for most tasks, then once per task adapter (each is its own CPU decision)
        loads = [(name, shipped_adapter(entry) if entry.base and not entry.build else None)]
        loads += [(f"{name} -t {task}", task_adapter(entry, task)) for task, _, _ in entry.task_adapters]
        for label, adapter in loads:
            models.append({"name": label, "path": str(path), "sha256": sha, "adapter": str(adapter) if adapter else None})
            try:
                d = decide(path, adapter) if probe else known_decision(path, adapter)
                decisions[label] = {"extra_bufts": d.extra_bufts, "reason": d.reason} if d else "not probed yet"
            except Exception as exc:  # a report must never fail half-way
                decisions[label] = f"error: {exc}"
    return {
        "senti-edge": _version("senti-edge"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {p: _version(p) for p in ("llama-cpp-python", "gguf", "numpy", "click", "torch")},
        "llama.cpp system info": llama_system_info(),
        "cpu": {"model": c.model, "arch": c.arch, "cores": c.cores, "features": c.has(*FEATURES)},
        "threads (free cores now)": free_cores(),
        "extra buffer types override": f"{ENV}={os.environ[ENV]}" if os.environ.get(ENV) else "none",
        "cache": str(cache_home()),
        "models present": models,
        "extra buffer decision": decisions,
    }


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@click.option("--no-probe", is_flag=True, help="Show only buffer decisions already made (no probe child).")
def doctor(as_json: bool, no_probe: bool) -> None:
    """Print versions, CPU features, llama.cpp's build and the choices made for this machine.

    Paste its output into a bug report. The first run on a machine probes each present model in
    a child process (about a second each) to decide whether llama.cpp's repacked buffers are safe.
    """
    from ..clitools import friendly_errors

    data = friendly_errors(report)(probe=not no_probe)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        if isinstance(value, dict) and key != "cpu":
            click.echo(f"{key}:")
            for k, v in value.items():
                click.echo(f"  {k}: {v if not isinstance(v, dict) else json.dumps(v)}")
        elif isinstance(value, list):
            click.echo(f"{key}:")
            for m in value or ["none (run `senti-edge models pull`)"]:
                click.echo(f"  {m if isinstance(m, str) else json.dumps(m)}")
        else:
            click.echo(f"{key}: {json.dumps(value) if isinstance(value, dict) else value}")
