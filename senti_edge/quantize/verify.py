"""Check a GGUF file against a reference on a fixed probe set, through our own runtime.

Every file is loaded with `senti_edge.runtime.engine.Engine` and scored exactly as `analyze`
scores texts (zero-shot prompt of the task, label-word logits). Against the reference logits we
report the argmax-label agreement rate and the mean KL divergence KL(ref || file) of the softmax
over the labels; for the F16 file the reference is the merged model run in torch on the very
same token ids, and we report the largest label-logit difference as well.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import SentiEdgeError

log = logging.getLogger(__name__)

# Fixed, hand-written probe texts: mixed polarity, length, negation, sarcasm and plain facts, so
# that a model with any label bias still has close calls that quantization noise can flip.
PROBES: tuple[str, ...] = (
    "I absolutely love this phone, the battery lasts for days.",
    "Terrible customer service. I will never order from them again.",
    "The package arrived on Tuesday.",
    "Not bad at all, better than I expected.",
    "Worst movie I have seen this year.",
    "The hotel room was clean but the staff were rude.",
    "Great, another Monday. Just what I needed.",
    "The meeting has been moved to 3 pm.",
    "This app keeps crashing every time I open it.",
    "What a beautiful day for a walk in the park!",
    "The food was okay, nothing special.",
    "I can't believe how good this pizza is.",
    "My flight was delayed by five hours and nobody told us why.",
    "The report contains twelve pages and three tables.",
    "Honestly the sequel is even better than the original.",
    "The screen cracked after one week. Very disappointed.",
    "It does what it says, no more, no less.",
    "Thank you so much for your help, you saved my day!",
    "The price went up again this month.",
    "Fantastic performance by the whole cast.",
    "I waited forty minutes for a cold coffee.",
    "The new update changed the color of the icons.",
    "Such a waste of money.",
    "The kids had a wonderful time at the museum.",
    "Shipping was fast but the box was damaged.",
    "I'm not sure how I feel about the ending.",
    "Absolutely brilliant, five stars.",
    "The battery died in the middle of the call, again.",
    "The store opens at nine on weekdays.",
    "Loved the atmosphere, hated the music.",
    "Best purchase I have made in years.",
    "The instructions were confusing and incomplete.",
    "He said he would call back tomorrow.",
    "Oh sure, because waiting on hold for an hour is fun.",
    "The soup was too salty and the bread was stale.",
    "Our team finally won the championship!",
    "The train leaves from platform four.",
    "I regret buying this laptop.",
    "Pretty decent for the price.",
    "The service was slow, but the food made up for it.",
    "This is the most comfortable chair I have ever owned.",
    "The sequel felt rushed and the jokes fell flat.",
    "The library will be closed for renovation.",
    "Amazing sound quality and the headphones feel premium.",
    "I don't hate it, but I wouldn't buy it again.",
    "Customer support fixed my problem within minutes.",
    "The weather forecast says rain on Sunday.",
    "Completely useless, it broke on the first day.",
    "The movie was long, but every minute was worth it.",
    "They forgot half of my order.",
    "The conference has about two hundred attendees.",
    "I'm thrilled with how the garden turned out.",
    "The plot made no sense and the acting was wooden.",
    "It's fine, I guess.",
    "The staff went above and beyond to help us.",
    "The road to the village is being repaired.",
    "Disgusting. There was a hair in my salad.",
    "My new running shoes are light and comfortable.",
    "The email was sent to all employees.",
    "I expected more from such an expensive restaurant.",
    "What a pleasant surprise, the concert was superb.",
    "The printer jams every third page.",
    "The bus was on time this morning.",
    "Nothing works and nobody answers the phone.",
)


def load_probes(path: str | None, limit: int) -> list[str]:
    """Probe texts from a .txt (one per line) or .jsonl (`text` field), or the built-in set."""
    if path is None:
        return list(PROBES[:limit])
    p = Path(path)
    try:
        raw = p.read_text("utf-8")
    except OSError as exc:
        raise SentiEdgeError(f"cannot read probe file {path}: {exc.strerror}") from None
    if p.suffix == ".jsonl":
        texts = []
        for i, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                texts.append(str(json.loads(line)["text"]))
            except (json.JSONDecodeError, KeyError, TypeError):
                raise SentiEdgeError(f"{path}:{i}: expected a JSON object with a \"text\" field") from None
    else:
        texts = [ln.strip() for ln in raw.splitlines() if ln.strip()]
    if len(texts) < 4:
        raise SentiEdgeError(f"probe file {path} has {len(texts)} texts; give at least 4")
    return texts[:limit]


@dataclass
class Scores:
    """Label logits of one file on the probe set, the token ids used, and the speed."""

    logits: np.ndarray  # (n_probes, n_labels)
    seconds: float
    token_ids: list[list[int]]  # full prompt token ids per probe (prefix + query)
    label_ids: list[int]

    @property
    def per_second(self) -> float:
        return len(self.logits) / self.seconds if self.seconds > 0 else float("inf")


def score_gguf(path: Path, texts: Sequence[str], task_name: str = "polarity", *, adapter: Path | None = None,
               n_threads: int = 1, repeats: int = 2, verbose: bool = False) -> Scores:
    """Score `texts` with our runtime. Speed is the best of `repeats` passes (the shared prefix is
    evaluated in the first only, as in steady use), so a busy machine disturbs it less."""
    from ..runtime.engine import Engine
    from ..runtime.prompts import build_prefix, build_query
    from ..runtime.tasks import get_task

    task = get_task(task_name)
    prefix = build_prefix(task)
    queries = [build_query(task, t) for t in texts]
    with Engine(str(path), adapter=str(adapter) if adapter else None, n_threads=n_threads, n_ctx=1024,
                verbose=verbose) as eng:
        label_ids = eng.label_token_ids(task.labels)
        seconds, logits = float("inf"), None
        for _ in range(max(1, repeats)):  # identical scores each time; only the fastest time is kept
            t0 = time.perf_counter()
            out = eng.score(prefix, queries, label_ids)
            seconds = min(seconds, time.perf_counter() - t0)
            logits = out if logits is None else logits
        head = eng.tokenize_segments(prefix, bos=True)
        token_ids = [head + eng.tokenize_segments(q) for q in queries]
    return Scores(np.asarray(logits, dtype=np.float64), seconds, token_ids, list(label_ids))


def score_torch(model_dir: Path, token_ids: Sequence[Sequence[int]], label_ids: Sequence[int],
                n_threads: int = 1) -> np.ndarray:
    """Label logits of the merged Hugging Face model on the same token ids (float32, CPU)."""
    from ..hfstack import load_stack

    torch = load_stack()[0]
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(max(1, n_threads))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    model.eval()
    out = np.empty((len(token_ids), len(label_ids)))
    with torch.inference_mode():
        for i, ids in enumerate(token_ids):
            logits = model(torch.tensor([list(ids)])).logits[0, -1]
            out[i] = logits[list(label_ids)].double().numpy()
    return out


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


@dataclass
class Comparison:
    """How a file's label scores compare with the reference's on the probe set."""

    agreement: float  # share of probes with the same argmax label
    mean_kl: float  # mean KL(ref || file) over probes, nats
    max_logit_diff: float  # largest |ref - file| over probes and labels
    n: int

    def to_dict(self) -> dict:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}


def compare(ref: np.ndarray, other: np.ndarray) -> Comparison:
    if ref.shape != other.shape:
        raise ValueError(f"shape mismatch {ref.shape} vs {other.shape}")
    lp, lq = _log_softmax(ref), _log_softmax(other)
    kl = (np.exp(lp) * (lp - lq)).sum(axis=-1)
    return Comparison(
        agreement=float((ref.argmax(-1) == other.argmax(-1)).mean()),
        mean_kl=float(max(kl.mean(), 0.0)),
        max_logit_diff=float(np.abs(ref - other).max()),
        n=len(ref),
    )


def label_counts(logits: np.ndarray, labels: Sequence[str]) -> dict[str, int]:
    """How often each label is the argmax: shows a model that predicts one label for everything."""
    picks = logits.argmax(-1)
    return {lab: int((picks == i).sum()) for i, lab in enumerate(labels)}
