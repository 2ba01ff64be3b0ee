import numpy as np
import pytest

from senti_edge.runtime import scoring


def test_softmax_rows_sum_to_one_and_keep_order():
    p = scoring.softmax(np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]]))
    assert np.allclose(p.sum(axis=1), 1)
    assert p[0].argmax() == 2 and p[1].argmax() == 0


def test_predict_without_calibration_is_argmax_of_logits():
    idx, probs = scoring.predict(np.array([[0.1, 2.0], [3.0, -1.0]]))
    assert idx.tolist() == [1, 0]
    assert probs[0, 1] == pytest.approx(1 / (1 + np.exp(-1.9)))


def test_contextual_calibration_removes_a_constant_bias():
    rng = np.random.default_rng(0)
    clean = rng.normal(size=(200, 3))
    bias = np.array([4.0, 0.0, -2.0])  # the model prefers label 0 whatever the text
    cal = scoring.Calibration.from_content_free(np.tile(bias, (3, 1)))
    idx, _ = scoring.predict(clean + bias, cal)
    assert (idx == clean.argmax(axis=1)).all()
    raw_idx, _ = scoring.predict(clean + bias)
    assert (raw_idx == 0).mean() > 0.8


def test_identity_calibration_changes_nothing():
    logits = np.array([[1.0, 0.5, -0.2]])
    a = scoring.predict(logits)[1]
    b = scoring.predict(logits, scoring.Calibration.identity(3))[1]
    assert np.allclose(a, b)


def test_pool_chunks_averages_log_probabilities():
    chunks = np.array([[5.0, 0.0], [0.0, 1.0]])
    pooled = scoring.pool_chunks(chunks)
    assert pooled.argmax() == 0
    assert np.allclose(pooled, scoring.log_softmax(chunks).mean(axis=0))


def test_a_fitted_calibration_scales_then_subtracts_its_bias_in_the_callers_label_order():
    from senti_edge.runtime.scoring import Calibration

    cal = Calibration.fitted({"labels": ["negative", "neutral", "positive"], "scale": 2.0, "bias": [0.0, -1.0, 0.5]},
                             ("positive", "negative", "neutral"))
    np.testing.assert_allclose(cal.apply(np.array([[1.0, 2.0, 3.0]])), [[2.0 - 0.5, 4.0, 6.0 + 1.0]])


def test_a_head_is_linear_in_its_features_with_rows_in_the_callers_label_order():
    entry = {"labels": ["non-irony", "irony"], "tokens": [9, 4, 7], "bias": [0.5, -0.5],
             "weight": [[1.0, 0.0, 0.0], [0.0, 2.0, -1.0]]}
    head = scoring.Head.fitted(entry, ("irony", "non-irony"))
    assert head.tokens.tolist() == [9, 4, 7]  # the engine reads these columns, in this order
    np.testing.assert_allclose(head.apply(np.array([[1.0, 2.0, 3.0]])), [[4.0 - 3.0 - 0.5, 1.0 + 0.5]])


def test_a_heads_chunks_pool_as_a_plain_mean():
    chunks = np.array([[5.0, 0.0, 1.0], [1.0, 2.0, 3.0]])
    np.testing.assert_allclose(scoring.pool_chunks(chunks, head=True), [3.0, 1.0, 2.0])


def test_metadata_keeps_the_chosen_methods_parameters_but_not_the_measurements():
    import json

    head = {"tokens": [1], "weight": [[1.0], [2.0]], "bias": [0.5, -0.5], "c": 0.01}
    cal = {"tasks": {"irony": {"method": "head", "labels": ["a", "b"], "scale": 1.2, "bias": [0, 3.0], "head": head,
                               "val": {}},
                     "binary": {"method": "fitted", "labels": ["a", "b"], "scale": 1.2, "bias": [0, 3.0], "head": head}}}
    stored = json.loads(scoring.metadata_value(cal))["tasks"]
    assert stored["irony"] == {"method": "head", "labels": ["a", "b"], "scale": None, "bias": [0.5, -0.5],
                               "tokens": [1], "weight": [[1.0], [2.0]]}
    assert stored["binary"] == {"method": "fitted", "labels": ["a", "b"], "scale": 1.2, "bias": [0, 3.0]}
