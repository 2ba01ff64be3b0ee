"""The OpenAI-compatible teacher against a real server: llama-cpp-python's own `llama_cpp.server`
with the SmolLM2 GGUF on 127.0.0.1, started and stopped by a fixture (one thread)."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from click.testing import CliRunner

from senti_edge.cli import cli
from senti_edge.distill.config import load_config
from senti_edge.distill.corpus import load_corpus
from senti_edge.distill.icldist import jobs as icl_jobs

from .conftest import free_port

pytestmark = [pytest.mark.slow, pytest.mark.model]

SERVER_EXTRA = "llama-cpp-python's server extra is not installed: pip install 'senti-edge[server]'"


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def server(smollm2_path, tmp_path_factory):
    """The base URL of a running `python -m llama_cpp.server`; the process is stopped on teardown."""
    for mod in ("uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings"):
        pytest.importorskip(mod, reason=SERVER_EXTRA)
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path), "--model_alias", "smollm2",
           "--host", "127.0.0.1", "--port", str(port), "--n_threads", "1", "--n_threads_batch", "1",
           "--n_ctx", "2048", "--verbose", "false"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, f"llama_cpp.server exited with {proc.returncode}:\n{log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"llama_cpp.server not ready after 90 s:\n{log.read_text()[-2000:]}"
            try:
                with urllib.request.urlopen(url + "/models", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _toml(path, out_dir, bench, url, concurrency: int) -> str:
    path.write_text(f"""
out_dir = "{out_dir}"
seed = 5
[teacher]
backend = "openai"
model = "smollm2"
url = "{url}"
concurrency = {concurrency}
max_retries = 1
timeout = 60
[corpus]
sentibench_dir = "{bench}"
datasets = ["sc/sst2", "multifaced/pstance"]
max_texts = 3
[knowdist]
max_tokens = 24
drop = []
[icldist]
n_items = 6
max_shots = 1
general_fraction = 0.2
aspects_fraction = 0.0
max_tokens = 12
""")
    return str(path)


def _records(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_what_the_server_offers_for_label_logprobs(server):
    """/completions gives top-N log-probabilities; so does /chat/completions (logprobs, top_logprobs)."""
    prompt = "Sentence: I loved it.\nLabel:"
    comp = _post(server + "/completions", {"model": "smollm2", "prompt": prompt, "max_tokens": 1, "logprobs": 20})
    top = comp["choices"][0]["logprobs"]["top_logprobs"][0]
    assert len(top) >= 10 and all(isinstance(v, float) for v in top.values())
    chat = _post(server + "/chat/completions", {"model": "smollm2", "max_tokens": 1, "logprobs": True, "top_logprobs": 20,
                                                "messages": [{"role": "user", "content": prompt}]})
    content = chat["choices"][0]["logprobs"]["content"]
    assert content and len(content[0]["top_logprobs"]) >= 10


def test_generate_knowdist_and_icldist_against_the_server(server, fake_bench, tmp_path):
    config = _toml(tmp_path / "c.toml", tmp_path / "run", fake_bench, server, concurrency=2)
    runner = CliRunner()
    for stage, n in (("knowdist", 3), ("icldist", 6)):
        res = runner.invoke(cli, ["distill", "generate", config, stage])
        assert res.exit_code == 0 and f"{n}/{n} records ({n} new, 0 errors" in res.output, res.output
    kd = _records(tmp_path / "run" / "knowdist.jsonl")
    assert all(r["teacher"] == "openai:smollm2" and r["response"].strip() for r in kd)
    assert all(r["label_logits"] and len(r["label_logits"]) == 3 for r in kd)  # from /completions logprobs
    icl = _records(tmp_path / "run" / "icldist.jsonl")
    labels = [r for r in icl if r["kind"] == "label"]
    assert labels and all(r["settings"]["label_logprobs"] == "completions" for r in labels)
    assert sum(r["label_logits"] is not None for r in labels) >= len(labels) // 2
    assert all(r["response"].strip() for r in icl)
    manifest = json.loads((tmp_path / "run" / "icldist.manifest.json").read_text())
    assert manifest["complete"] and manifest["last_run"]["completion_tokens"] > 0


def test_concurrent_generation_is_ordered_and_resumable(server, fake_bench, tmp_path):
    """Four requests in flight: records are appended in job order, and a stopped run resumes."""
    config = _toml(tmp_path / "c.toml", tmp_path / "run", fake_bench, server, concurrency=4)
    runner = CliRunner()
    res = runner.invoke(cli, ["distill", "generate", config, "icldist", "--max-items", "4"])
    assert res.exit_code == 0 and "4/6 records (4 new" in res.output, res.output
    first = (tmp_path / "run" / "icldist.jsonl").read_text().splitlines()
    res = runner.invoke(cli, ["distill", "generate", config, "icldist"])
    assert res.exit_code == 0 and "6/6 records (2 new" in res.output, res.output
    lines = (tmp_path / "run" / "icldist.jsonl").read_text().splitlines()
    assert lines[:4] == first
    cfg = load_config(config)
    expected = [j.id for j in icl_jobs(load_corpus(cfg.corpus, cfg.seed), cfg.icldist, cfg.seed)]
    assert [json.loads(x)["id"] for x in lines] == expected
