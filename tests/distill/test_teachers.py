"""senti_edge/distill/teachers.py: the OpenAI-compatible backend against a local stub server."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from senti_edge.distill.config import TeacherConfig
from senti_edge.distill.teachers import OpenAITeacher, TeacherHTTPError, _RateLimiter, label_logprobs_from_top
from senti_edge.runtime.prompts import Segment


class Stub:
    """Answers with the queued (status, body) pairs, then the last one forever."""

    def __init__(self, answers):
        self.answers, self.requests = list(answers), []
        stub = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append((self.path, body, self.headers.get("Authorization")))
                status, out = stub.answers.pop(0) if len(stub.answers) > 1 else stub.answers[0]
                data = out.encode() if isinstance(out, str) else json.dumps(out).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    made = []

    def make(answers):
        s = Stub(answers)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def teacher(url, **kw):
    sleeps = []
    t = OpenAITeacher(TeacherConfig(backend="openai", model="m", url=url, max_retries=kw.pop("max_retries", 3),
                                    api_key_env="SENTI_TEST_KEY", **kw), sleep=sleeps.append)
    return t, sleeps


CHAT_OK = {"choices": [{"message": {"content": "Fine.\nOverall sentiment: positive"}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 10, "completion_tokens": 5}}


def test_chat_retries_with_backoff_then_succeeds(stub, monkeypatch):
    monkeypatch.setenv("SENTI_TEST_KEY", "sk-test")
    s = stub([(500, "boom"), (429, "slow down"), (200, "not json"), (200, CHAT_OK)])
    t, sleeps = teacher(s.url)
    reply = t.generate([Segment("Analyse:", True), Segment(" good", False)], chat=True, max_tokens=20)
    assert reply.text.endswith("positive") and reply.finished
    assert sleeps == [1.0, 2.0, 4.0]
    path, body, auth = s.requests[-1]
    assert path == "/v1/chat/completions" and body["messages"][0]["content"] == "Analyse: good" and auth == "Bearer sk-test"
    assert t.stats.completion_tokens == 5


def test_client_error_fails_fast_and_server_error_gives_up(stub):
    t, sleeps = teacher(stub([(401, "no key")]).url)
    with pytest.raises(TeacherHTTPError, match="HTTP 401"):
        t.generate([Segment("x", True)], chat=True, max_tokens=5)
    assert sleeps == []
    t, sleeps = teacher(stub([(503, "down")]).url, max_retries=2)
    with pytest.raises(TeacherHTTPError, match="failed 3 times: HTTP 503"):
        t.generate([Segment("x", True)], chat=True, max_tokens=5)
    t, _ = teacher(stub([(200, {"choices": []})]).url, max_retries=1)
    with pytest.raises(TeacherHTTPError, match="no choices"):
        t.generate([Segment("x", True)], chat=True, max_tokens=5)
    t, _ = teacher("http://127.0.0.1:9/v1", max_retries=1, timeout=2)
    with pytest.raises(TeacherHTTPError, match="failed 2 times"):
        t.generate([Segment("x", True)], chat=True, max_tokens=5)


def test_label_logprobs_from_completions(stub):
    top = {"choices": [{"text": " pos", "logprobs": {"top_logprobs": [{" pos": -0.1, " positive": -0.2, " neg": -2.5, "x": -3}]}}]}
    s = stub([(200, top)])
    t, _ = teacher(s.url)
    assert t.label_logits([Segment("Label:", True)], ["positive", "negative", "neutral"]) == [-0.2, -2.5, -30.0]
    assert s.requests[0][0] == "/v1/completions" and s.requests[0][1]["max_tokens"] == 1
    assert label_logprobs_from_top({"foo": -1.0}, ["positive"]) is None
    chat_shape = {"content": [{"top_logprobs": [{"token": " joy", "logprob": -0.5}]}]}
    from senti_edge.distill.teachers import _top_logprobs

    assert _top_logprobs({"logprobs": chat_shape}) == {" joy": -0.5}


def test_rate_limiter_spaces_requests():
    import time

    lim = _RateLimiter(50.0)
    t0 = time.monotonic()
    for _ in range(5):
        lim.wait()
    assert time.monotonic() - t0 >= 4 / 50 - 0.01
