"""Shared fixtures: an isolated cache for every test, the real SmolLM2 GGUF (skips if absent),
SentiBench (skips if absent), a disk to fill."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SENTIBENCH = Path(os.environ.get("SENTIBENCH_DIR", SHARED / "sentibench"))


@pytest.fixture(scope="session")
def real_home() -> Path:
    """The user's cache as the session found it (SENTI_EDGE_HOME, else ~/.cache/senti-edge):
    where `models pull` put the real models. Resolved before any test changes the environment."""
    from senti_edge.files import cache_home

    return cache_home()


@pytest.fixture(autouse=True)
def isolated_home(real_home, tmp_path_factory, monkeypatch) -> Path:
    """Every test runs with its own SENTI_EDGE_HOME (as `llm`'s conftest does with LLM_USER_PATH),
    so none reads or writes the user's own registry entries or CPU decisions. The real cache's
    folders (models, wheels, converter) are linked in, so model tests still find what `models pull`
    made without downloading, and cpu.json is copied, so a CPU already probed is not probed again."""
    home = tmp_path_factory.mktemp("home")
    if real_home.is_dir():
        for part in real_home.iterdir():
            if part.is_dir():
                (home / part.name).symlink_to(part, target_is_directory=True)
        if (real_home / "cpu.json").is_file():
            shutil.copyfile(real_home / "cpu.json", home / "cpu.json")
    monkeypatch.setenv("SENTI_EDGE_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def smollm2_path(real_home) -> Path:
    """The materialised default model; run `senti-edge models pull smollm2-135m` to get it."""
    from senti_edge.errors import SentiEdgeError
    from senti_edge.runtime.fetch import materialise
    from senti_edge.runtime.registry import get_entry

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SENTI_EDGE_HOME", str(real_home))
        try:
            return materialise(get_entry("smollm2-135m"))
        except SentiEdgeError as exc:
            pytest.skip(f"SmolLM2 not available: {exc}")


# Tests send SIGINT to child processes. A shell that starts pytest in the background leaves SIGINT
# ignored, and children inherit "ignored"; with a handler here, they start with the default again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(params=[signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def interrupt(request):
    """stop(proc): send SIGTERM (then, in a second run, SIGINT) to a running senti-edge process and
    check it stopped cleanly: exit 143 or 130, no traceback, "complete outputs were kept"."""
    code, said = {signal.SIGTERM: (143, "Terminated"), signal.SIGINT: (130, "Interrupted")}[request.param]

    def stop(proc, timeout: float = 120) -> None:
        proc.send_signal(request.param)
        _, err = proc.communicate(timeout=timeout)
        assert proc.returncode == code, err
        assert "Traceback" not in err and f"{said}; complete outputs were kept" in err

    return stop


@pytest.fixture(scope="session")
def engine(smollm2_path):
    """One loaded SmolLM2 engine for the session (loading costs ~0.1 s, but keeps RSS flat)."""
    from senti_edge.runtime.engine import Engine

    eng = Engine(str(smollm2_path), n_threads=2, n_ctx=2048)
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def sentibench_dir() -> Path:
    if not (SENTIBENCH / "sc" / "sst2" / "train.json").exists():
        pytest.skip(f"SentiBench not found at {SENTIBENCH} (set SENTIBENCH_DIR); CI has it beside the repo")
    return SENTIBENCH


@pytest.fixture
def tmp_home(tmp_path, monkeypatch) -> Path:
    """An empty SENTI_EDGE_HOME, for tests of the model cache itself."""
    home = tmp_path / "home"
    monkeypatch.setenv("SENTI_EDGE_HOME", str(home))
    return home


class SmallDisk:
    """A directory whose disk `fill()` makes full and `free()` frees again.

    It is a 1 MB tmpfs when mounting works (root with CAP_SYS_ADMIN), so writes really fail
    part-way with ENOSPC. Elsewhere (or with SENTI_EDGE_TEST_NO_TMPFS=1) it is a plain directory
    and `fill()` makes every fsync raise ENOSPC, as a disk that filled up since the last write would.
    """

    def __init__(self, path: Path, monkeypatch, tmpfs: bool):
        self.path, self.monkeypatch, self.tmpfs = path, monkeypatch, tmpfs
        self._fsync = os.fsync

    def fill(self) -> None:
        if self.tmpfs:
            with open(self.path / "filler", "ab", buffering=0) as fh:
                try:
                    while fh.write(b"\0" * 4096):
                        pass
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
        else:
            def full(fd):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            self.monkeypatch.setattr(os, "fsync", full)

    def free(self) -> None:
        if self.tmpfs:
            (self.path / "filler").unlink()
        else:
            self.monkeypatch.setattr(os, "fsync", self._fsync)


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    path = tmp_path / "disk"
    path.mkdir()
    tmpfs = not os.environ.get("SENTI_EDGE_TEST_NO_TMPFS") and shutil.which("mount") and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)], capture_output=True).returncode == 0
    yield SmallDisk(path, monkeypatch, tmpfs)
    if tmpfs:
        subprocess.run(["umount", str(path)], check=True)


@pytest.fixture
def tiny_gguf():
    """tiny_gguf(path, **strings): a small valid GGUF (one tensor, `strings` as string keys)."""
    def make(path: Path, **strings) -> Path:
        import gguf
        import numpy as np

        w = gguf.GGUFWriter(path, "llama")
        w.add_uint32("llama.block_count", 2)
        for k, v in strings.items():
            w.add_string(k, v)
        w.add_tensor("blk.0.attn_q.weight", np.arange(12, dtype=np.float32).reshape(3, 4))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return path
    return make
