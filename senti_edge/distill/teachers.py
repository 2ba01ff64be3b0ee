"""Teachers behind one small interface: `generate` a reply, and `label_logits` for label words.

Three backends, registered by name in `BACKENDS`:

- `gguf`: a local GGUF through our llama.cpp `Engine` (default: Qwen2.5-Coder-1.5B-Instruct);
- `openai`: any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, a hosted API), with
  requests in flight (`concurrency`), retries with exponential backoff and a rate limit; stdlib
  `urllib` only;
- `hf`: a Hugging Face model through transformers (imported only when used).

A prompt is a list of `Segment`s plus whether it is a chat turn; each backend renders it its own
way (ChatML for chat GGUFs, `messages` for servers, the tokenizer's template for HF).
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ..errors import SentiEdgeError
from ..runtime.chat import Segment, detect_template, wrap_chat
from .config import TeacherConfig

log = logging.getLogger(__name__)


@dataclass
class Reply:
    text: str
    finished: bool  # False: cut off by max_tokens


@dataclass
class TeacherStats:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


def plain(segments: Sequence[Segment]) -> str:
    return "".join(s.text for s in segments)


@dataclass
class Teacher:
    """The interface: subclasses implement `_generate` and `_label_logits`."""

    name: str
    settings: dict = field(default_factory=dict)
    concurrency: int = 1
    template: str | None = None
    stats: TeacherStats = field(default_factory=TeacherStats)

    def generate(self, prompt: Sequence[Segment], *, chat: bool, max_tokens: int, stop: Sequence[str] = ()) -> Reply:
        t = time.perf_counter()
        reply = self._generate(list(prompt), chat, max_tokens, list(stop))
        self.stats.calls += 1
        self.stats.seconds += time.perf_counter() - t
        return reply

    def label_logits(self, prompt: Sequence[Segment], labels: Sequence[str]) -> list[float] | None:
        """Next-token logits (or log-probabilities) of each label word's first token after a
        plain-completion prompt ending in `Label:`; None when the backend cannot give them."""
        t = time.perf_counter()
        out = self._label_logits(list(prompt), list(labels))
        self.stats.calls += 1
        self.stats.seconds += time.perf_counter() - t
        return out

    def _generate(self, prompt, chat, max_tokens, stop) -> Reply:
        raise NotImplementedError

    def _label_logits(self, prompt, labels):
        return None

    def close(self) -> None:
        pass


class GGUFTeacher(Teacher):
    def __init__(self, cfg: TeacherConfig):
        from ..runtime.engine import Engine

        self.engine = Engine(cfg.model, n_threads=cfg.n_threads or None, n_ctx=cfg.n_ctx, n_seq=1)
        super().__init__(name=self.engine.ref.name, settings={"backend": "gguf", "decoding": "greedy", "n_ctx": self.engine.n_ctx},
                         template=self.engine.template)

    def _generate(self, prompt, chat, max_tokens, stop):
        segs = wrap_chat(prompt, self.template) if chat else prompt
        before = self.engine.stats.prompt_tokens
        text, finished = self.engine.generate(segs, max_tokens=max_tokens, stop=stop)
        n_out = len(self.engine.tokenize(text)) if text else 0
        self.stats.completion_tokens += n_out
        self.stats.prompt_tokens += max(0, self.engine.stats.prompt_tokens - before - n_out)
        return Reply(text, finished)

    def _label_logits(self, prompt, labels):
        try:
            ids = self.engine.label_token_ids(labels)
        except SentiEdgeError:
            return None
        before = self.engine.stats.prompt_tokens
        logits = self.engine.score(prompt[:-1], [prompt[-1:]], ids)[0]
        self.stats.prompt_tokens += self.engine.stats.prompt_tokens - before
        return [float(x) for x in logits]

    def close(self):
        self.engine.close()


class _RateLimiter:
    def __init__(self, per_second: float):
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.lock = threading.Lock()
        self.next = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            at = max(now, self.next)
            self.next = at + self.interval
        time.sleep(max(0.0, at - now))


class TeacherHTTPError(SentiEdgeError):
    """The server failed or answered nonsense after all retries; `status` is set when the server
    refused the request (an HTTP 4xx that retrying cannot fix)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


# Where label log-probabilities are asked for, best first; a server that refuses one (or answers
# without logprobs) moves the teacher to the next for the rest of the run; None: nowhere.
LOGPROB_ROUTES = ("completions", "chat", None)
NOT_THERE = (404, 405, 501)  # an endpoint the server does not have
LOGPROBS_REFUSED = (400, 422, *NOT_THERE)  # a request the server cannot serve as asked


class OpenAITeacher(Teacher):
    """Chat prompts go to `/chat/completions`, plain prompts to `/completions`.

    Label log-probabilities (ICLDist's KL target) come from `/completions` with `logprobs: 20`
    and `max_tokens: 1` after the plain prompt ending in `Label:`: vLLM, llama.cpp's
    `llama-server` and llama-cpp-python's `llama_cpp.server` offer them there. A server that
    refuses that request or answers without logprobs is asked once through `/chat/completions`
    with `logprobs: true, top_logprobs: 20` (the same prompt as a user turn, so the first answer
    token is the label; OpenAI's chat models offer this); where neither gives them, `label_logits`
    returns None from then on without asking, and ICLDist reads the label from a short greedy
    answer, keeping the record without a KL target. Each switch is logged once, and
    `settings["label_logprobs"]` (copied into every record) says which route the record used.
    A server without `/completions` at all (chat-only APIs) gets plain prompts as a user turn.
    """

    def __init__(self, cfg: TeacherConfig, sleep: Callable[[float], None] = time.sleep):
        super().__init__(name=f"openai:{cfg.model}", concurrency=cfg.concurrency, template=None,
                         settings={"backend": "openai", "url": cfg.url, "temperature": 0, "label_logprobs": "completions"})
        self.cfg = cfg
        self.key = os.environ.get(cfg.api_key_env, "")
        self.limiter = _RateLimiter(cfg.rate_limit)
        self.sleep = sleep
        self.lock = threading.Lock()
        self.completions = True  # False once the server said it has no /completions
        self.route = LOGPROB_ROUTES[0]  # where label log-probabilities are asked for

    def _switch(self, attr: str, old, new, message: str) -> None:
        """Set `attr` from `old` to `new` and log why, once (concurrent requests may race here)."""
        with self.lock:
            if getattr(self, attr) != old:
                return
            setattr(self, attr, new)
            self.settings = {**self.settings, "label_logprobs": self.route}
        log.warning("teacher server %s: %s", self.cfg.url, message)

    def _post(self, path: str, body: dict) -> dict:
        url = self.cfg.url.rstrip("/") + path
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        last = ""
        for attempt in range(self.cfg.max_retries + 1):
            if attempt:
                self.sleep(self.cfg.backoff * 2 ** (attempt - 1))
            self.limiter.wait()
            try:
                req = urllib.request.Request(url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.cfg.timeout) as resp:
                    out = json.loads(resp.read().decode("utf-8"))
                if not isinstance(out, dict) or not out.get("choices"):
                    last = f"no choices in the answer: {str(out)[:120]}"
                    continue
                return out
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code} {exc.reason}"
                if exc.code not in (408, 409, 429) and exc.code < 500 or exc.code in NOT_THERE:
                    raise TeacherHTTPError(f"teacher server {url} refused the request: {last}; check teacher.url, "
                                           "teacher.model and the API key", status=exc.code) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = f"{getattr(exc, 'reason', exc)}"
            except (json.JSONDecodeError, UnicodeDecodeError):
                last = "the answer was not JSON"
            log.info("teacher request failed (%s), attempt %d", last, attempt + 1)
        raise TeacherHTTPError(f"teacher server {url} failed {self.cfg.max_retries + 1} times: {last}")

    def _count(self, out: dict) -> None:
        usage = out.get("usage") or {}
        with self.lock:
            self.stats.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.stats.completion_tokens += int(usage.get("completion_tokens") or 0)

    def _generate(self, prompt, chat, max_tokens, stop):
        body = {"model": self.cfg.model, "max_tokens": max_tokens, "temperature": 0}
        if stop:
            body["stop"] = stop[:4]
        if not chat and self.completions:
            try:
                out = self._post("/completions", {**body, "prompt": plain(prompt)})
            except TeacherHTTPError as exc:
                if exc.status not in NOT_THERE:
                    raise
                self._switch("completions", True, False, f"no /completions (HTTP {exc.status}); "
                             "plain prompts go to /chat/completions as a user turn")
            else:
                return self._reply(out, out["choices"][0].get("text"))
        out = self._post("/chat/completions", {**body, "messages": [{"role": "user", "content": plain(prompt)}]})
        return self._reply(out, (out["choices"][0].get("message") or {}).get("content"))

    def _reply(self, out: dict, text) -> Reply:
        choice = out["choices"][0]
        if not isinstance(text, str):
            raise TeacherHTTPError(f"teacher server answered without text: {str(choice)[:120]}")
        self._count(out)
        return Reply(text, choice.get("finish_reason") != "length")

    def _label_logits(self, prompt, labels):
        while (route := self.route) is not None:
            body = {"model": self.cfg.model, "max_tokens": 1, "temperature": 0}
            if route == "completions":
                path, body = "/completions", {**body, "prompt": plain(prompt), "logprobs": 20}
            else:
                path = "/chat/completions"
                body = {**body, "messages": [{"role": "user", "content": plain(prompt)}], "logprobs": True, "top_logprobs": 20}
            try:
                out = self._post(path, body)
            except TeacherHTTPError as exc:
                if exc.status not in LOGPROBS_REFUSED:  # a failing server or a bad key: not a missing feature
                    raise
                why = f"{path} refused logprobs (HTTP {exc.status})"
            else:
                self._count(out)
                if out["choices"][0].get("logprobs"):
                    return label_logprobs_from_top(_top_logprobs(out["choices"][0]), labels)
                why = f"{path} answered without logprobs"
            nxt = LOGPROB_ROUTES[LOGPROB_ROUTES.index(route) + 1]
            self._switch("route", route, nxt, why + ("; asking /chat/completions with top_logprobs instead" if nxt else
                         "; ICLDist reads each label from a short greedy answer, and those records have no KL target"))
        return None


def _top_logprobs(choice: dict) -> dict[str, float]:
    """The first position's top tokens, from the completions or the chat logprobs shape."""
    lp = choice.get("logprobs") or {}
    if isinstance(lp.get("top_logprobs"), list) and lp["top_logprobs"]:
        first = lp["top_logprobs"][0]
        return {str(k): float(v) for k, v in first.items()} if isinstance(first, dict) else {}
    content = lp.get("content")
    if isinstance(content, list) and content:
        return {str(t["token"]): float(t["logprob"]) for t in content[0].get("top_logprobs", []) if "token" in t}
    return {}


def label_logprobs_from_top(top: dict[str, float], labels: Sequence[str], floor: float = -30.0) -> list[float] | None:
    """Each label's log-probability: the longest listed token that starts " label"; None if none is listed."""
    out, found = [], False
    for label in labels:
        best = None
        for tok, lp in top.items():
            if tok.strip() and (" " + label).startswith(tok) or (tok.strip() and label.startswith(tok)):
                if best is None or len(tok) > len(best[0]):
                    best = (tok, lp)
        if best is not None:
            found = True
        out.append(best[1] if best is not None and math.isfinite(best[1]) else floor)
    return out if found else None


class HFTeacher(Teacher):
    def __init__(self, cfg: TeacherConfig):
        from ..hfstack import load_stack

        torch, transformers, _ = load_stack()
        if cfg.n_threads:
            torch.set_num_threads(cfg.n_threads)
        self.torch = torch
        try:
            self.tok = transformers.AutoTokenizer.from_pretrained(cfg.model)
            self.model = transformers.AutoModelForCausalLM.from_pretrained(cfg.model).eval()
        except (OSError, ValueError) as exc:
            raise SentiEdgeError(f"could not load the teacher {cfg.model!r} with transformers: {exc}") from None
        template = detect_template(self.tok.chat_template)
        super().__init__(name=f"hf:{cfg.model}", settings={"backend": "hf", "decoding": "greedy"}, template=template)

    def _encode(self, prompt, chat):
        text = plain(prompt)
        if chat and self.tok.chat_template:
            text = self.tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
        return self.tok(text, return_tensors="pt", add_special_tokens=not chat)

    def _generate(self, prompt, chat, max_tokens, stop):
        enc = self._encode(prompt, chat)
        with self.torch.no_grad():
            out = self.model.generate(**enc, max_new_tokens=max_tokens, do_sample=False, pad_token_id=self.tok.eos_token_id)
        new = out[0, enc["input_ids"].shape[1]:]
        text = self.tok.decode(new, skip_special_tokens=True)
        finished = len(new) < max_tokens or int(new[-1]) == self.tok.eos_token_id
        for s in stop:
            if s in text:
                text, finished = text[: text.find(s)], True
        self.stats.prompt_tokens += enc["input_ids"].shape[1]
        self.stats.completion_tokens += len(new)
        return Reply(text, finished)

    def _label_logits(self, prompt, labels):
        ids = [self.tok.encode(" " + lab, add_special_tokens=False)[0] for lab in labels]
        if len(set(ids)) != len(ids):
            return None
        enc = self._encode(prompt, False)
        with self.torch.no_grad():
            logits = self.model(**enc).logits[0, -1]
        self.stats.prompt_tokens += enc["input_ids"].shape[1]
        return [float(logits[i]) for i in ids]


BACKENDS: dict[str, Callable[[TeacherConfig], Teacher]] = {
    "gguf": GGUFTeacher,
    "openai": OpenAITeacher,
    "hf": HFTeacher,
}


def make_teacher(cfg: TeacherConfig) -> Teacher:
    return BACKENDS[cfg.backend](cfg)
