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


CHAT_LP = {"choices": [{"message": {"content": "positive"}, "logprobs": {"content": [
    {"token": "positive", "logprob": -0.2, "top_logprobs": [{"token": "positive", "logprob": -0.2},
                                                            {"token": "negative", "logprob": -1.9}]}]}}]}
NO_LP = {"choices": [{"text": " positive", "message": {"content": "positive"}, "logprobs": None}]}


def test_label_logprobs_fall_back_to_chat_when_completions_refuse_them(stub, caplog):
    s = stub([(400, "logprobs not supported"), (200, CHAT_LP)])
    t, sleeps = teacher(s.url)
    labels = ["positive", "negative"]
    assert t.label_logits([Segment("Label:", True)], labels) == [-0.2, -1.9]
    assert t.label_logits([Segment("Label:", True)], labels) == [-0.2, -1.9]  # straight to chat now
    assert [p for p, _, _ in s.requests] == ["/v1/completions", "/v1/chat/completions", "/v1/chat/completions"]
    assert s.requests[1][1]["logprobs"] is True and s.requests[1][1]["top_logprobs"] == 20
    assert t.settings["label_logprobs"] == "chat" and sleeps == []
    assert sum("refused logprobs (HTTP 400)" in r.message for r in caplog.records) == 1


def test_no_logprobs_anywhere_gives_none_once_then_asks_no_more(stub, caplog):
    s = stub([(200, NO_LP)])
    t, _ = teacher(s.url)
    assert t.label_logits([Segment("Label:", True)], ["positive"]) is None
    assert t.label_logits([Segment("Label:", True)], ["positive"]) is None
    assert [p for p, _, _ in s.requests] == ["/v1/completions", "/v1/chat/completions"]
    assert t.settings["label_logprobs"] is None
    assert [r.message.split("; ", 1)[1] for r in caplog.records if r.levelname == "WARNING"] == [
        "asking /chat/completions with top_logprobs instead",
        "ICLDist reads each label from a short greedy answer, and those records have no KL target"]


def test_a_bad_key_is_an_error_not_a_missing_feature(stub):
    t, _ = teacher(stub([(401, "no key")]).url)
    with pytest.raises(TeacherHTTPError, match="HTTP 401") as exc:
        t.label_logits([Segment("Label:", True)], ["positive"])
    assert exc.value.status == 401 and t.settings["label_logprobs"] == "completions"


def test_plain_prompts_go_to_chat_on_a_server_without_completions(stub):
    s = stub([(404, "not found"), (200, CHAT_OK)])
    t, _ = teacher(s.url)
    for _ in range(2):
        assert t.generate([Segment("Label:", True)], chat=False, max_tokens=4).text.endswith("positive")
    assert [p for p, _, _ in s.requests] == ["/v1/completions", "/v1/chat/completions", "/v1/chat/completions"]
