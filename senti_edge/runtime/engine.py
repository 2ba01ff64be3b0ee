"""The llama.cpp engine: the one place that drives llama.cpp's decode loop.

Other modules import `llama_cpp` too, but only for its version and build line (`cpu.py`,
`bench/cells.py`) or for `llama_model_quantize` (`build.py`, `quantize/quantize.py`); none decodes.

`Engine` loads one GGUF model (optionally with a GGUF LoRA adapter) and offers three things:
`tokenize`, `score` (label-word logits for many texts under one shared prompt prefix) and
`generate` (greedy, optionally grammar-constrained); `eval_prompt` times a bare prompt for the
speed benchmark.

Why not `llama_cpp.Llama`: scoring many short texts is dominated by the shared prefix
(instruction + demonstrations). `score` evaluates that prefix once into sequence 0 and keeps it;
each text is then decoded after it, and only its label-word logits are read. `Llama` would also
keep an `n_batch x n_vocab` float array we do not need (100 MB for a 49k vocab). We use the
bindings and the small owner classes of `llama_cpp._internals` (pinned version) instead.

One text at a time, by default (`n_seq=1`): a text's answer must not depend on its neighbours.
Several texts can share one `llama_decode` as sequences of a unified KV cache, but then a text's
KV cells sit after its neighbours' instead of right after the prefix, and llama.cpp's attention
over that other cell layout rounds differently: on SmolLM2-135M the same text's label logits
moved by up to 0.1 (and a label flipped) with the cell offset alone, in separate decodes too.
With one sequence, every text occupies the same cells as when scored alone, and the scores are
bit-identical to evaluating prefix + text from an empty cache (`score_whole`). `n_seq > 1` stays
available for throughput experiments (the speed benchmark compares both).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

import llama_cpp
from llama_cpp import _internals
from llama_cpp._logger import set_verbose
from llama_cpp._utils import suppress_stdout_stderr

from ..errors import SentiEdgeError
from .chat import Segment, detect_template
from .fetch import ModelRef, resolve

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"


def free_cores() -> int:
    """Cores not busy with other work: the usable CPUs less the 1-minute load, at least 1."""
    from .cpu import usable_cores

    n = usable_cores()
    try:
        busy = int(round(os.getloadavg()[0]))
    except (OSError, AttributeError):  # no load average (Windows)
        busy = 0
    return max(1, min(n, n - busy))


def check_gguf(path: Path) -> None:
    """Reject a file that is not a plausible GGUF before llama.cpp sees it."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(24)
    except OSError as exc:
        raise SentiEdgeError(f"cannot read model file {path}: {exc.strerror}") from None
    if len(head) < 24 or head[:4] != GGUF_MAGIC:
        raise SentiEdgeError(f"{path} is not a GGUF file (bad magic); give a .gguf model file")
    version, n_tensors, n_kv = struct.unpack("<IQQ", head[4:24])
    if version not in (2, 3) or n_tensors > 100_000 or n_kv > 100_000:
        raise SentiEdgeError(
            f"{path}: implausible GGUF header (version {version}, {n_tensors} tensors, {n_kv} keys); "
            "the file is corrupted or not a model"
        )


@dataclass
class EngineStats:
    """Counters a benchmark reads: tokens evaluated and texts truncated."""

    prompt_tokens: int = 0  # evaluated from prompts (prefixes and queries)
    generated_tokens: int = 0  # sampled by generate() and fed back
    decode_calls: int = 0
    truncated: int = 0


class Engine:
    """A loaded GGUF model with prefix-cached, multi-sequence label scoring.

    >>> eng = Engine("smollm2-135m")
    >>> logits = eng.score(prefix_segments, [query_segments, ...], label_token_ids)
    """

    def __init__(
        self,
        model: ModelRef | str | None = None,
        *,
        adapter: str | None = None,
        # Context params
        n_ctx: int = 4096,
        n_batch: int = 512,
        n_seq: int = 1,
        n_threads: int | None = None,
        # Misc
        extra_bufts: bool | None = None,
        verbose: bool = False,
    ):
        """`extra_bufts`: llama.cpp's repacked weight buffers; None asks `cpu.decide`, which
        probes this CPU in a child process once (they crash some AMX machines)."""
        t0 = time.perf_counter()
        self.ref = model if isinstance(model, ModelRef) else resolve(model, adapter)
        check_gguf(self.ref.path)
        if self.ref.adapter is not None:
            check_gguf(self.ref.adapter)
        self.n_threads = n_threads or free_cores()
        self.n_seq = max(1, n_seq)
        self.verbose = verbose
        self.stats = EngineStats()
        set_verbose(verbose)
        self._stack = contextlib.ExitStack()
        self.closed = False

        if extra_bufts is None:
            from .cpu import decide

            extra_bufts = decide(self.ref.path, self.ref.adapter).extra_bufts
        self.extra_bufts = extra_bufts
        mparams = llama_cpp.llama_model_default_params()
        mparams.use_extra_bufts = extra_bufts
        try:
            self._model = self._stack.enter_context(contextlib.closing(
                _internals.LlamaModel(path_model=str(self.ref.path), params=mparams, verbose=verbose)))
        except (ValueError, OSError) as exc:
            raise SentiEdgeError(f"llama.cpp could not load {self.ref.path}: {exc}; the file may be corrupted") from None
        n_ctx = min(n_ctx, self._model.n_ctx_train()) if self._model.n_ctx_train() > 0 else n_ctx
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_batch
        cparams.n_seq_max = self.n_seq + 1  # sequence 0 holds the prefix
        cparams.kv_unified = True  # sequences share one KV buffer, so copying the prefix is free
        cparams.n_threads = self.n_threads
        cparams.n_threads_batch = self.n_threads
        cparams.no_perf = True
        # Flash attention on CPU changes logits with the batch shape (up to ~0.2 here); without it
        # a prefix evaluated once gives exactly the scores of the whole prompt evaluated at once.
        cparams.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        with suppress_stdout_stderr(disable=verbose):
            try:
                self._ctx = self._stack.enter_context(contextlib.closing(
                    _internals.LlamaContext(model=self._model, params=cparams, verbose=verbose)))
            except ValueError as exc:
                raise SentiEdgeError(f"could not create a context of {n_ctx} tokens for {self.ref.path}: {exc}") from None
        if self.ref.adapter is not None:
            self._apply_adapter(self.ref.adapter)
        self.n_ctx = self._ctx.n_ctx()
        self.n_batch = n_batch
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self._model.vocab)
        self.add_bos = bool(self._model.add_bos_token())
        self.bos = self._model.token_bos()
        self.eos_tokens = {t for t in (self._model.token_eos(), self._model.token_eot()) if t >= 0}
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, self.n_seq + 1)
        self._stack.callback(llama_cpp.llama_batch_free, self._batch)
        self._prefix: list[int] = []  # tokens held by sequence 0
        self.template = self.ref.entry.template or self._detect_template()
        self.load_s = time.perf_counter() - t0  # the bench's load column

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self._stack.close()
        self.closed = True

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _apply_adapter(self, path: Path) -> None:
        with suppress_stdout_stderr(disable=self.verbose):
            adapter = llama_cpp.llama_adapter_lora_init(self._model.model, str(path).encode())
        if not adapter:
            raise SentiEdgeError(f"llama.cpp could not load the LoRA adapter {path}; is it a GGUF LoRA for this base model?")
        self._stack.callback(llama_cpp.llama_adapter_lora_free, adapter)
        adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
        scales = (ctypes.c_float * 1)(1.0)
        if llama_cpp.llama_set_adapters_lora(self._ctx.ctx, adapters, 1, scales) != 0:
            raise SentiEdgeError(f"could not apply the LoRA adapter {path} to {self.ref.path}")

    def _detect_template(self) -> str | None:
        return detect_template(self.metadata().get("tokenizer.chat_template"))

    def metadata(self) -> dict[str, str]:
        """The model file's metadata, with the adapter's `senti_edge.*` keys over it: a distilled
        model applied at load time carries its calibration in its adapter, as its merged build
        carries the same keys in its own file."""
        meta = dict(self._model.metadata())
        if self.ref.adapter is not None:
            from .build import senti_metadata

            meta.update(senti_metadata(self.ref.adapter))
        return meta

    # -- tokens ------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:  # llama.cpp's freed model would be a segmentation fault, not an error
            raise SentiEdgeError("this model was closed; create a new Analyzer or Engine")

    def tokenize(self, text: str, *, special: bool = False, add_bos: bool = False) -> list[int]:
        self._check_open()
        data = text.encode("utf-8", "replace")
        cap = len(data) + 8
        buf = (llama_cpp.llama_token * cap)()
        n = llama_cpp.llama_tokenize(self._model.vocab, data, len(data), buf, cap, add_bos, special)
        if n < 0:  # cannot happen with cap > bytes, but keep llama.cpp's contract
            cap = -n
            buf = (llama_cpp.llama_token * cap)()
            n = llama_cpp.llama_tokenize(self._model.vocab, data, len(data), buf, cap, add_bos, special)
        return list(buf[:n])

    def tokenize_segments(self, segments: Sequence[Segment], *, bos: bool = False) -> list[int]:
        """Tokenize each segment alone; user text never has its special tokens parsed."""
        tokens = [self.bos] if bos and self.add_bos and self.bos >= 0 else []
        for seg in segments:
            if seg.text:
                tokens += self.tokenize(seg.text, special=seg.trusted)
        return tokens

    def detokenize(self, tokens: Sequence[int]) -> str:
        self._check_open()
        return self._model.detokenize(list(tokens), special=False).decode("utf-8", "replace")

    def label_token_ids(self, labels: Sequence[str]) -> list[int]:
        """The first token of " label" for each label; they must differ to be scored."""
        ids = [self.tokenize(" " + label)[0] for label in labels]
        if len(set(ids)) != len(ids):
            clash = [lab for lab, i in zip(labels, ids) if ids.count(i) > 1]
            raise SentiEdgeError(
                f"labels {', '.join(clash)} start with the same token for this model; "
                "choose label words that begin differently"
            )
        return ids

    # -- low-level decode ----------------------------------------------------------------------

    def _mem(self):
        return llama_cpp.llama_get_memory(self._ctx.ctx)

    def _decode(self, entries: list[tuple[int, int, int, bool]], generated: bool = False) -> None:
        """Decode (token, pos, seq_id, want_logits) entries as one batch."""
        self._check_open()
        b = self._batch
        for i, (tok, pos, seq, out) in enumerate(entries):
            b.token[i] = tok
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq
            b.logits[i] = out
        b.n_tokens = len(entries)
        rc = llama_cpp.llama_decode(self._ctx.ctx, b)
        self.stats.decode_calls += 1
        if generated:
            self.stats.generated_tokens += len(entries)
        else:
            self.stats.prompt_tokens += len(entries)
        if rc != 0:
            raise SentiEdgeError(f"llama_decode returned {rc} (context of {self.n_ctx} tokens full?); try a larger --ctx")

    def _logits(self, batch_index: int) -> np.ndarray:
        ptr = llama_cpp.llama_get_logits_ith(self._ctx.ctx, batch_index)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def _set_prefix(self, tokens: list[int]) -> None:
        """Make sequence 0 hold exactly `tokens`, reusing the longest common prefix already there."""
        mem = self._mem()
        keep = 0
        for a, b in zip(self._prefix, tokens):
            if a != b:
                break
            keep += 1
        if keep == len(tokens) and keep == len(self._prefix):
            return
        llama_cpp.llama_memory_clear(mem, True) if keep == 0 else llama_cpp.llama_memory_seq_rm(mem, -1, keep, -1)
        for start in range(keep, len(tokens), self.n_batch):
            chunk = tokens[start:start + self.n_batch]
            self._decode([(t, start + j, 0, False) for j, t in enumerate(chunk)])
        self._prefix = list(tokens)

    # -- scoring -------------------------------------------------------------------------------

    def max_query_tokens(self, prefix_len: int) -> int:
        return self.n_ctx - prefix_len - 1

    def score(
        self,
        prefix: Sequence[Segment],
        queries: Sequence[Sequence[Segment]],
        label_ids: Sequence[int],
        *,
        on_done: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Next-token logits of `label_ids` after prefix + each query: an array (n_queries, n_labels).

        The prefix is evaluated once (and kept across calls while it is unchanged). Queries too
        long for the context keep their head and their last segment (`Label:`), and are counted
        in `stats.truncated`.
        """
        prefix_tokens = self.tokenize_segments(prefix, bos=True)
        if len(prefix_tokens) >= self.n_ctx - 8:
            raise SentiEdgeError(
                f"the instruction and demonstrations take {len(prefix_tokens)} tokens, more than the "
                f"context of {self.n_ctx}; use fewer or shorter --shots or a larger --ctx"
            )
        self._set_prefix(prefix_tokens)
        P = len(prefix_tokens)
        budget = self.max_query_tokens(P)
        encoded = [self._query_tokens(q, budget) for q in queries]
        out = np.empty((len(queries), len(label_ids)), dtype=np.float32)
        ids = np.asarray(label_ids)
        i = 0
        while i < len(encoded):
            group = self._next_group(encoded, i, P)
            self._score_group(encoded, i, group, P, ids, out)
            i += group
            if on_done:
                on_done(group)
        return out

    def _query_tokens(self, query: Sequence[Segment], budget: int) -> list[int]:
        tokens = self.tokenize_segments(query)
        if len(tokens) <= budget:
            return tokens
        self.stats.truncated += 1
        tail = self.tokenize_segments(query[-1:])
        return tokens[: budget - len(tail)] + tail

    def _next_group(self, encoded: list[list[int]], start: int, P: int) -> int:
        """How many queries from `start` share one pass: at most n_seq of them, within one
        n_batch-token decode (or a single longer query). Every token attends over all cells in
        the unified cache, so packing more long queries together costs more than it saves."""
        n, tokens = 0, 0
        for toks in encoded[start:start + self.n_seq]:
            if n and (tokens + len(toks) > self.n_batch or P + tokens + len(toks) > self.n_ctx):
                break
            tokens += len(toks)
            n += 1
        return n

    def _score_group(self, encoded, start, n, P, ids, out) -> None:
        mem = self._mem()
        seqs = range(1, n + 1)
        for s in seqs:
            llama_cpp.llama_memory_seq_rm(mem, s, -1, -1)
            llama_cpp.llama_memory_seq_cp(mem, 0, s, 0, P)
        # Interleave the queries' tokens into batches of at most n_batch; a query's last token asks for logits.
        pending = [(t, P + j, s, j == len(encoded[start + s - 1]) - 1)
                   for s in seqs for j, t in enumerate(encoded[start + s - 1])]
        for b0 in range(0, len(pending), self.n_batch):
            chunk = pending[b0:b0 + self.n_batch]
            self._decode(chunk)
            for bi, (_, _, s, last) in enumerate(chunk):
                if last:
                    out[start + s - 1] = self._logits(bi)[ids]
        for s in seqs:
            llama_cpp.llama_memory_seq_rm(mem, s, -1, -1)

    def _eval_from_empty(self, tokens: list[int]) -> None:
        """Evaluate `tokens` in sequence 0 from an empty cache, with logits for the last one only."""
        llama_cpp.llama_memory_clear(self._mem(), True)
        self._prefix = []
        for start in range(0, len(tokens), self.n_batch):
            chunk = tokens[start:start + self.n_batch]
            last = start + len(chunk) == len(tokens)
            self._decode([(t, start + j, 0, last and j == len(chunk) - 1) for j, t in enumerate(chunk)])

    def score_whole(self, prefix: Sequence[Segment], query: Sequence[Segment], label_ids: Sequence[int]) -> np.ndarray:
        """Reference path: evaluate prefix + query from an empty cache in one sequence, no reuse."""
        tokens = self.tokenize_segments(prefix, bos=True) + self.tokenize_segments(query)
        self._eval_from_empty(tokens)
        logits = self._logits((len(tokens) - 1) % self.n_batch)[np.asarray(label_ids)]
        llama_cpp.llama_memory_clear(self._mem(), True)
        return logits.copy()

    def eval_prompt(self, text: str) -> int:
        """Evaluate `text` (user text, cut to one batch of `n_batch` tokens, BOS included) as a whole
        prompt from an empty cache, then clear the cache; returns the tokens evaluated. This is
        what llama.cpp's prompt-processing rate measures: `benchmarks/runtime_speed.py` times it
        as the ceiling `analyze` is compared with. The cached prefix is dropped, as by `score_whole`."""
        tokens = self.tokenize_segments([Segment(text, False)], bos=True)[: self.n_batch]
        self._eval_from_empty(tokens)
        llama_cpp.llama_memory_clear(self._mem(), True)
        return len(tokens)

    # -- generation ----------------------------------------------------------------------------

    def generate(self, prompt: Sequence[Segment], *, max_tokens: int = 150, grammar: str | None = None,
                 stop: Sequence[str] = (), stop_if: Callable[[str], bool] | None = None) -> tuple[str, bool]:
        """Greedy generation on sequence 0; returns (text, finished) where finished is False
        when max_tokens cut it off. With `grammar` (GBNF) every output parses. Generation also
        ends (finished) at a `stop` string, which is cut off, or once `stop_if(text so far)` holds."""
        tokens = self.tokenize_segments(prompt, bos=True)
        if len(tokens) + max_tokens > self.n_ctx:
            self.stats.truncated += 1
            tokens = tokens[: self.n_ctx - max_tokens]
        self._set_prefix(tokens[:-1])  # reuse a shared prompt head across calls
        sampler = _internals.LlamaSampler()
        try:
            if grammar:
                sampler.add_grammar(self._model, llama_cpp.LlamaGrammar.from_string(grammar, verbose=False))
            sampler.add_greedy()
            pos = len(tokens) - 1
            self._decode([(tokens[-1], pos, 0, True)])
            out: list[int] = []
            finished = False
            for _ in range(max_tokens):
                tok = sampler.sample(self._ctx, -1)
                if tok in self.eos_tokens or llama_cpp.llama_vocab_is_eog(self._model.vocab, tok):
                    finished = True
                    break
                out.append(tok)
                if stop or stop_if:  # only these need the text at every step
                    so_far = self.detokenize(out)
                    if any(s in so_far for s in stop) or (stop_if and stop_if(so_far)):
                        finished = True
                        break
                pos += 1
                self._decode([(tok, pos, 0, True)], generated=True)
            text = self.detokenize(out)
            if stop and any(s in text for s in stop):
                text = text[: min(text.find(s) for s in stop if s in text)]
        finally:
            sampler.close()
            llama_cpp.llama_memory_seq_rm(self._mem(), 0, len(tokens) - 1, -1)
        return text, finished
