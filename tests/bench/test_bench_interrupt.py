"""Two benches on one results directory, and SIGINT/SIGTERM in the middle of a bench (real processes)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from senti_edge.bench.runner import LOCK_NAME
from senti_edge.files import locked


def bench_cmd(data, out, *args):
    return [sys.executable, "-m", "senti_edge", "bench", "--data-dir", str(data), "--out", str(out), "--no-progress", *args]


def busy_message(out):
    return f"Error: another senti-edge bench is writing {out}; wait for it to finish, or give another --out\n"


def test_second_bench_on_a_locked_results_dir_fails_at_once(tiny_bench, tmp_path):
    out = tmp_path / "out"
    cmd = bench_cmd(tiny_bench, out, "-b", "majority", "-d", "sst2")
    with locked(out / LOCK_NAME):  # this process holds the lock, as a running bench would
        t0 = time.monotonic()
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert res.returncode == 1 and res.stderr == busy_message(out)
        assert time.monotonic() - t0 < 60  # failed, did not wait for the holder
        assert not (out / "cells").exists() and not (out / "config.json").exists()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert (out / "cells" / "baseline-majority" / "sst2.json").exists()
    assert not (out / LOCK_NAME).exists()


def complete_cells(out) -> dict:
    """Every cell file parses and holds all its predictions; returns {path: mtime_ns}."""
    cells = {}
    for p in (out / "cells").rglob("*"):
        assert not p.name.startswith("."), f"temporary file left behind: {p}"
        if p.is_file():
            cell = json.loads(p.read_text())
            assert cell["n"] == len(cell["predictions"]) > 0
            cells[p] = p.stat().st_mtime_ns
    return cells


@pytest.mark.model
@pytest.mark.slow
def test_interrupted_bench_keeps_complete_cells_and_resumes(tiny_bench, tmp_path, smollm2_path, interrupt):
    out = tmp_path / "out"
    cmd = bench_cmd(tiny_bench, out, "-m", str(smollm2_path), "-d", "sst2,pstance", "--seeds", "1,2,3,4",
                    "--protocol", "paper", "--shots", "2", "--threads", "1", "--robust-n", "0")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list((out / "cells").rglob("*.json")):  # wait for the first finished cell
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.1)
    # a second bench on the same directory meanwhile: refused with the lock message
    other = subprocess.run(bench_cmd(tiny_bench, out, "-b", "majority", "-d", "sst2"), capture_output=True, text=True,
                           timeout=120)
    assert other.returncode == 1 and other.stderr == busy_message(out)
    assert proc.poll() is None, "the bench ended before it could be interrupted"
    interrupt(proc)
    kept = complete_cells(out)
    assert 1 <= len(kept) < 8
    assert not (out / "results.json").exists()  # the reports are written only after the last cell

    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    after = complete_cells(out)
    assert len(after) == 8
    assert {p: after[p] for p in kept} == kept  # finished cells were skipped, not redone
    assert json.loads((out / "results.json").read_text())["models"][0]["cost"]["examples"] == 4 * (12 + 10)
