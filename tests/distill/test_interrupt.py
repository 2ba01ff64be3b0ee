"""Teacher generation stopped by a signal or a full disk keeps complete records and resumes.

The signal test runs the real `senti-edge distill generate` in a subprocess against a made-up
OpenAI-compatible teacher server in this process (no model needed).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from senti_edge.distill.pipeline import generate
from senti_edge.errors import SentiEdgeError

from .conftest import ScriptedTeacher, make_config


class FakeTeacher(BaseHTTPRequestHandler):
    """Answers /chat/completions with an analysis and /completions with label log-probabilities, slowly."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(0.1)
        if "messages" in body:
            pol = "negative" if "awful" in body["messages"][0]["content"] else "positive"
            choice = {"message": {"content": f"The writer sounds {pol} about it overall.\nOverall sentiment: {pol}"},
                      "finish_reason": "stop"}
        else:
            choice = {"text": " positive", "finish_reason": "length",
                      "logprobs": {"top_logprobs": [{" positive": -0.2, " negative": -2.0, " neutral": -3.0}]}}
        data = json.dumps({"choices": [choice], "usage": {"prompt_tokens": 30, "completion_tokens": 12}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def teacher_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeTeacher)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def complete_records(path) -> list[dict]:
    """The file ends on a newline and every line is a whole JSON record; ids are unique."""
    data = path.read_bytes()
    assert data.endswith(b"\n")
    rows = [json.loads(line) for line in data.splitlines()]
    assert len({r["id"] for r in rows}) == len(rows)
    return rows


def test_interrupted_generate_keeps_complete_records_and_resumes(tmp_path, teacher_url, interrupt):
    texts = tmp_path / "texts.txt"
    texts.write_text("".join(f"review {i}: the pasta was {'awful' if i % 3 else 'great'}.\n" for i in range(40)))
    config = tmp_path / "distill.toml"
    config.write_text(f'out_dir = "{tmp_path / "run"}"\nseed = 7\n\n'
                      f'[teacher]\nbackend = "openai"\nmodel = "fake"\nurl = "{teacher_url}"\nconcurrency = 2\n'
                      f'max_retries = 0\ntimeout = 30\n\n[corpus]\nfiles = ["{texts}"]\n\n[knowdist]\nmax_tokens = 24\n')
    records = tmp_path / "run" / "knowdist.jsonl"
    cmd = [sys.executable, "-m", "senti_edge", "distill", "generate", str(config), "knowdist"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not records.exists() or records.read_bytes().count(b"\n") < 5:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    interrupt(proc)
    before = complete_records(records)
    assert 5 <= len(before) < 40
    manifest = tmp_path / "run" / "knowdist.manifest.json"
    assert not manifest.exists() or not json.loads(manifest.read_text())["complete"]

    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    after = complete_records(records)
    assert after[: len(before)] == before and len(after) == 40  # resumed: the first records untouched, none twice
    m = json.loads(manifest.read_text())
    assert m["complete"] and m["last_run"]["new_records"] == 40 - len(before)


class DiskFillingTeacher(ScriptedTeacher):
    """A scripted teacher that fills the disk while it works on its `after`+1-th item."""

    def __init__(self, disk, after: int):
        super().__init__()
        self.disk, self.after = disk, after

    def _generate(self, prompt, chat, max_tokens, stop):
        if len(self.seen) == self.after:
            self.disk.fill()
        return super()._generate(prompt, chat, max_tokens, stop)


def test_generate_on_a_full_disk_keeps_the_records_and_resumes(small_disk, tmp_path, fake_bench):
    cfg = make_config(tmp_path, fake_bench, out_dir=str(small_disk.path), corpus={"max_texts": 0})
    records = small_disk.path / "knowdist.jsonl"
    with pytest.raises(SentiEdgeError, match=rf"^no space left on the disk of {records}: the (\d+) complete records "
                                             "written so far are kept; free some space and rerun to resume$") as exc:
        generate(cfg, "knowdist", teacher=DiskFillingTeacher(small_disk, after=3))
    kept = complete_records(records)  # the part of the record in flight that fitted was cut off
    assert len(kept) == int(re.search(r"the (\d+) complete", str(exc.value))[1]) >= 3
    small_disk.free()
    manifest = generate(cfg, "knowdist", teacher=ScriptedTeacher())
    after = complete_records(records)
    assert manifest["complete"] and len(after) == manifest["jobs"] > 3
    assert after[:3] == kept[:3]


@pytest.mark.slow
@pytest.mark.model
def test_interrupted_training_keeps_whole_checkpoints_and_resumes(tmp_path, fake_bench, student_dir):
    """SIGTERM during `senti-edge distill train`: no adapter, only whole checkpoints, and a rerun finishes."""
    config = tmp_path / "distill.toml"
    config.write_text(f'out_dir = "{tmp_path / "run"}"\nseed = 7\nstudent = "{student_dir}"\n\n'
                      f'[corpus]\nsentibench_dir = "{fake_bench}"\ndatasets = ["sc/sst2"]\n\n[knowdist]\ndrop = []\n\n'
                      '[train]\nbatch_size = 2\nmax_length = 64\nmax_steps = 12\ncheckpoint_every = 2\nn_threads = 1\n'
                      'lora_r = 4\nwarmup_steps = 1\n')
    from senti_edge.distill.config import load_config

    generate(load_config(config, []), "knowdist", teacher=ScriptedTeacher())
    run = tmp_path / "run" / "knowdist"
    cmd = [sys.executable, "-m", "senti_edge", "distill", "train", str(config), "knowdist"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (run / "checkpoints" / "latest.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(15)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "Traceback" not in err, err
    assert not (run / "adapter").exists() and not (run / "state.json").exists()
    assert not list((run / "checkpoints").glob(".*.tmp"))
    kept = json.loads((run / "checkpoints" / "latest.json").read_text())["step"]
    assert kept < 12 and (run / "checkpoints" / f"step-{kept:07d}" / "trainer.pt").is_file()

    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    state = json.loads((run / "state.json").read_text())
    assert state["complete"] and state["step"] == 12
    steps = [line.split(",")[0] for line in (run / "log.csv").read_text().splitlines()[1:]]
    assert steps == [str(i) for i in range(1, 13)]  # the log was cut back to the checkpoint, no step twice
