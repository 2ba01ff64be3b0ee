"""A full disk gives a one-line error and keeps what was already written (see `small_disk`)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from senti_edge.cli import cli
from senti_edge.errors import SentiEdgeError
from senti_edge.jsonl import write_json


def hidden(path: Path) -> list[str]:
    return [p.name for p in path.iterdir() if p.name.startswith(".")]


def test_atomic_write_on_a_full_disk_keeps_the_old_file(small_disk):
    target = small_disk.path / "results.json"
    write_json(target, {"old": True})
    small_disk.fill()
    with pytest.raises(SentiEdgeError, match=rf"^no space left on the disk of {small_disk.path} while writing "
                                             r"results.json; the file was not replaced and no partial file is left"):
        write_json(target, {"rows": ["x" * 1000] * 100})
    assert json.loads(target.read_text()) == {"old": True}
    assert hidden(small_disk.path) == []
    small_disk.free()
    write_json(target, {"new": True})
    assert json.loads(target.read_text()) == {"new": True}


@pytest.mark.model
def test_analyze_on_a_full_disk_is_one_line_and_keeps_the_old_output(small_disk, smollm2_path, tmp_path):
    texts = tmp_path / "in.txt"
    texts.write_text("great phone\nawful battery\n")
    out = small_disk.path / "labels.jsonl"
    out.write_text("old labels\n")
    small_disk.fill()
    res = CliRunner().invoke(cli, ["analyze", str(texts), "-m", str(smollm2_path), "--threads", "1", "-q",
                                   "--output", str(out)])
    assert res.exit_code == 1
    assert res.output == (f"Error: no space left on the disk of {small_disk.path} while writing labels.jsonl; "
                          "the file was not replaced and no partial file is left; free some space and rerun\n")
    assert out.read_text() == "old labels\n" and hidden(small_disk.path) == []
    # stdout on a full device (/dev/full always answers ENOSPC): the generic one-line error
    with open("/dev/full", "w") as full:
        res = subprocess.run([sys.executable, "-m", "senti_edge", "analyze", str(texts), "-m", str(smollm2_path),
                              "--threads", "1", "-q", "-o", "jsonl"], stdout=full, stderr=subprocess.PIPE, text=True)
    assert res.returncode == 1
    assert res.stderr == "Error: No space left on device; complete outputs were kept, free some space and rerun\n"
