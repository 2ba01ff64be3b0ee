"""The Python API: context manager, use after close, argument shapes, and answers that do not
depend on which texts share a batch."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

from senti_edge.errors import SentiEdgeError
from senti_edge.runtime.analyzer import Analyzer

pytestmark = pytest.mark.model

# fixed-seed review-like texts, the ones the speed benchmark measures with
make_texts = runpy.run_path(str(Path(__file__).resolve().parents[2] / "benchmarks" / "runtime_speed.py"))["make_texts"]

PROBE = "The library closes at 8 pm on weekdays."


@pytest.fixture(scope="module")
def az(smollm2_path):
    with Analyzer(model=str(smollm2_path), n_threads=1, n_ctx=2048) as a:
        yield a


def test_context_manager_closes_and_use_after_close_is_an_error(smollm2_path):
    with Analyzer(model=str(smollm2_path), n_threads=1, n_ctx=512) as a:
        assert a.classify(["Great phone."])[0]["label"] in a.task.labels
    with pytest.raises(SentiEdgeError, match="closed"):
        a.classify(["Great phone."])
    with pytest.raises(SentiEdgeError, match="closed"):
        a.extract(["Great phone."])


def test_a_bare_string_is_refused(az):
    with pytest.raises(TypeError, match=r"classify\(\[text\]\)"):
        az.classify("one string")


@pytest.mark.parametrize("labels", ["urgent, routine ,spam", ["urgent", "routine", "spam"], ("urgent", "routine", "spam")])
def test_labels_as_a_list_or_a_comma_separated_string(smollm2_path, labels):
    with Analyzer(model=str(smollm2_path), labels=labels, n_threads=1, n_ctx=512) as a:
        assert set(a.task.labels) == {"urgent", "routine", "spam"}


def test_classify_returns_one_dict_per_text_with_label_confidence_and_probs(az):
    rows = az.classify(["I love it.", "I hate it."])
    assert len(rows) == 2
    for row in rows:
        assert row["label"] in az.task.labels
        assert set(row["probs"]) == set(az.task.labels)
        assert abs(sum(row["probs"].values()) - 1) < 1e-6 and row["confidence"] == max(row["probs"].values())


def _probs(rows, i):
    return np.array([rows[i]["probs"][lab] for lab in sorted(rows[i]["probs"])])


@pytest.mark.slow
def test_a_texts_answer_does_not_depend_on_its_neighbours(az):
    """Alone, at 5 positions of a 40-text list, and in calls of 1 and 16 texts: the same
    probabilities within 1e-5 (the engine's single-sequence decode makes them bit-identical)."""
    others = make_texts(39, 1, seed=7)
    results = [_probs(az.classify([PROBE]), 0)]
    for pos in (0, 9, 20, 31, 39):
        texts = others[:pos] + [PROBE] + others[pos:]
        results.append(_probs(az.classify(texts), pos))
        for size in (1, 16):
            start = pos // size * size
            results.append(_probs(az.classify(texts[start:start + size]), pos - start))
    spread = np.max(results, axis=0) - np.min(results, axis=0)
    assert spread.max() < 1e-5, spread


def test_engine_scores_equal_the_whole_prompt_from_an_empty_cache(az):
    """The cached-prefix path and the reference path give the same label logits."""
    from senti_edge.runtime import prompts

    eng = az.engine
    queries = [prompts.build_query(az.task, t, None) for t in [PROBE, *make_texts(5, 2, seed=3)]]
    got = eng.score(az.prefix, queries, az.label_ids)
    for row, q in zip(got, queries):
        np.testing.assert_array_equal(row, eng.score_whole(az.prefix, q, az.label_ids))


def _streamed(output: str, budget: int):
    """A stand-in for Engine.generate that writes `output` one character at a time."""
    def generate(prompt, *, max_tokens, grammar=None, stop=(), stop_if=None):
        for i in range(1, min(len(output), budget) + 1):
            if stop_if and stop_if(output[:i]):
                return output[:i], True
        return output[:budget], budget >= len(output)
    return generate


LOOP = '{"aspect": "waiter", "category": "service general", "opinion": "rude", "polarity": "negative"}'
PASTA = '{"aspect": "pasta", "category": "food quality", "opinion": "great", "polarity": "positive"}'


def test_extract_stops_a_looping_list_at_the_first_copy_and_keeps_what_a_cut_left(az, monkeypatch):
    looping = " [" + ", ".join([PASTA] + [LOOP] * 7) + "]"
    monkeypatch.setattr(az.engine, "generate", _streamed(looping, 10_000))
    (row,) = az.extract(["The pasta was great, the waiter rude."])
    assert row["complete"] and [t["aspect"] for t in row["aspects"]] == ["pasta", "waiter"]
    cut = f" [{PASTA}, {LOOP.replace('waiter', 'wine')}, {LOOP}]"
    monkeypatch.setattr(az.engine, "generate", _streamed(cut, len(cut) - len(LOOP) + 10))
    (row,) = az.extract(["The pasta was great, the wine rude."])
    assert not row["complete"] and [t["aspect"] for t in row["aspects"]] == ["pasta", "wine"]
