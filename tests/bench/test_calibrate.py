"""The offline calibration fit: it recovers a known temperature and bias, and its measurements
(macro-F1, per-label recall, ECE) are the textbook ones."""

from __future__ import annotations

import json

import numpy as np
import pytest

from senti_edge.bench import calibrate
from senti_edge.runtime import scoring


def test_the_fit_recovers_a_known_scale_and_bias():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, size=(6000, 3))
    true_scale, true_bias = 0.5, np.array([0.0, 1.5, -1.0])
    p = scoring.softmax(true_scale * logits - true_bias)
    gold = np.array([rng.choice(3, p=row) for row in p])
    # Balanced weights undo the label frequencies the bias creates, so compare decisions on
    # balanced data: draw the same number of each label.
    per = np.bincount(gold).min()
    keep = np.concatenate([np.flatnonzero(gold == k)[:per] for k in range(3)])
    scale, bias = calibrate.fit(logits[keep], gold[keep])
    assert scale == pytest.approx(true_scale, rel=0.15)
    assert bias[0] == 0.0 and len(bias) == 3


def test_a_fit_undoes_a_label_prior_and_raises_macro_f1():
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 3, size=900)
    logits = np.eye(3)[gold] * 1.0 + rng.normal(0, 0.8, size=(900, 3))
    logits[:, 1] -= 2.0  # the model hardly ever says label 1 ("neutral")
    before = calibrate.measure(logits, gold, ("negative", "neutral", "positive"), None)
    scale, bias = calibrate.fit(logits, gold)
    after = calibrate.measure(logits, gold, ("negative", "neutral", "positive"), scoring.Calibration(bias, scale))
    assert before["recall"]["neutral"] < 0.2 and after["recall"]["neutral"] > 0.5
    assert after["macro_f1"] > before["macro_f1"] + 0.15


def test_a_head_reads_the_informative_vocabulary_columns_and_beats_the_label_logits():
    """Labels decided by two non-label columns the label words' logits do not see: the head picks
    the varying columns, keeps the label words, and its stored form (standardisation folded in)
    classifies raw logits as the fitted pipeline does."""
    rng = np.random.default_rng(0)
    n, vocab, label_ids = 600, 50, [3, 7, 11]
    x = rng.normal(0, 0.01, size=(n, vocab))
    gold = rng.integers(0, 3, size=n)
    x[:, 20] = 5 * (gold == 1) + rng.normal(0, 1, n)
    x[:, 30] = 5 * (gold == 2) + rng.normal(0, 1, n)
    x[:, label_ids] += rng.normal(0, 1, size=(n, 3))  # label logits: noise only
    tokens, weight, bias, c = calibrate.fit_head(x[:400], gold[:400], label_ids, n_tokens=6)
    assert set(label_ids) <= set(tokens) and {20, 30} <= set(tokens) and c in calibrate.HEAD_C
    head = scoring.Head(tokens, weight, bias)
    labels = ("a", "b", "c")
    test = x[400:]
    by_head = calibrate.measure(test[:, tokens], gold[400:], labels, head)
    by_labels = calibrate.measure(test[:, label_ids], gold[400:], labels, None)
    assert by_head["macro_f1"] > 0.9 and by_labels["macro_f1"] < 0.5


def test_a_binary_head_has_one_row_per_label():
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 2, size=300)
    x = rng.normal(size=(300, 10))
    x[:, 4] += 4 * gold
    tokens, weight, bias, _ = calibrate.fit_head(x, gold, [0, 1], n_tokens=4)
    assert weight.shape == (2, 4) and bias.shape == (2,)
    idx, _ = scoring.predict(x[:, tokens], scoring.Head(tokens, weight, bias))
    assert (idx == gold).mean() > 0.9


def test_a_head_must_win_by_the_margin_and_ties_go_to_the_fit():
    f1 = {"none": 0.892, "content-free": 0.888, "fitted": 0.893, "head": 0.898}  # binary's measurements
    assert calibrate.choose(f1) == "fitted"
    assert calibrate.choose({**f1, "head": 0.904}) == "head"
    assert calibrate.choose({"none": 0.5, "content-free": 0.5, "fitted": 0.5}) == "fitted"
    assert calibrate.choose({"none": 0.593, "content-free": 0.601}) == "content-free"


@pytest.mark.model
def test_the_analyzer_uses_a_models_stored_calibration_only_for_the_prompt_it_was_fitted_on(smollm2_path, monkeypatch):
    from senti_edge.runtime.analyzer import Analyzer
    from senti_edge.runtime.engine import Engine

    stored = {"tasks": {"polarity": {"method": "fitted", "labels": ["negative", "neutral", "positive"],
                                     "scale": 0.7, "bias": [0.0, -2.0, 0.3]},
                        "irony": {"method": "none", "labels": ["non-irony", "irony"], "scale": 1.0, "bias": [0, 0]}}}
    real = Engine.metadata
    monkeypatch.setattr(Engine, "metadata", lambda self: {**real(self), scoring.METADATA_KEY: json.dumps(stored)})
    with Analyzer(model=str(smollm2_path), n_threads=1, n_ctx=512) as az:
        assert az.calibration_method == "fitted" and az.calibration.scale == 0.7
        np.testing.assert_allclose(az.calibration.log_prior, [0.0, -2.0, 0.3])
    with Analyzer(model=str(smollm2_path), task="irony", n_threads=1, n_ctx=512) as az:
        assert az.calibration_method == "none" and az.calibration is None
    with Analyzer(model=str(smollm2_path), labels="negative,positive,neutral,mixed", n_threads=1, n_ctx=512) as az:
        assert az.calibration_method == "content-free"  # another label set: the fit does not apply
    with Analyzer(model=str(smollm2_path), task="emotion", n_threads=1, n_ctx=512) as az:
        assert az.calibration_method == "content-free"  # no fit stored for this task


@pytest.mark.model
def test_a_stored_head_is_read_through_its_own_vocabulary_columns(smollm2_path, monkeypatch):
    """classify with a head scores exactly head.apply(the logits of its tokens); a head whose token
    ids lie outside this model's vocabulary is not used."""
    from senti_edge.runtime.analyzer import Analyzer
    from senti_edge.runtime.engine import Engine

    rng = np.random.default_rng(0)
    tokens = [5, 17, 400, 1000]
    head = {"method": "head", "labels": ["non-irony", "irony"], "scale": None, "bias": [0.1, -0.1],
            "tokens": tokens, "weight": rng.normal(size=(2, 4)).tolist()}
    real = Engine.metadata
    stored = {"tasks": {"irony": head}}
    monkeypatch.setattr(Engine, "metadata", lambda self: {**real(self), scoring.METADATA_KEY: json.dumps(stored)})
    texts = ["Oh great, another Monday.", "The train was on time."]
    with Analyzer(model=str(smollm2_path), task="irony", n_threads=1, n_ctx=512) as az:
        assert az.calibration_method == "head" and az.score_ids == tokens
        rows = az.classify(texts)
        feats = az.scores(texts, ids=tokens)
        want = scoring.softmax(feats.astype(np.float64) @ np.array(head["weight"]).T + np.array(head["bias"]))
        np.testing.assert_allclose([[r["probs"]["non-irony"], r["probs"]["irony"]] for r in rows], want, rtol=1e-6)
    stored["tasks"]["irony"] = {**head, "tokens": [5, 17, 400, 10 ** 7]}
    with Analyzer(model=str(smollm2_path), task="irony", n_threads=1, n_ctx=512) as az:
        assert az.calibration_method == "content-free"


def test_a_rerun_keeps_finished_tasks_and_only_runs_the_rest(tmp_path, monkeypatch):
    calls = []

    def fake(model, task, data_dir, n_train, n_val, threads, seed, head_tokens, head_margin, augment):
        calls.append(task)
        return {"method": "none", "labels": ["a", "b"], "scale": 1.0, "bias": [0.0, 0.0],
                "val_mean_macro_f1": {m: 0.5 for m in calibrate.METHODS}}

    monkeypatch.setattr(calibrate, "calibrate_task", fake)
    out = tmp_path / "cal.json"
    args = ["-m", "x", "--data-dir", str(tmp_path), "--out", str(out)]
    calibrate.main([*args, "--tasks", "polarity"])
    calibrate.main([*args, "--tasks", "polarity,irony"])
    assert calls == ["polarity", "irony"]
    assert set(json.loads(out.read_text())["tasks"]) == {"polarity", "irony"}
    calibrate.main([*args, "--tasks", "irony", "--train", "50"])  # other settings: start afresh
    assert calls == ["polarity", "irony", "irony"] and set(json.loads(out.read_text())["tasks"]) == {"irony"}


def test_measure_scores_only_the_sets_labels_and_counts_a_missing_label_as_wrong():
    labels = ("against", "favor", "none")
    gold = np.array([0, 0, 1, 1])
    logits = np.array([[2.0, 0, 0], [0, 0, 2.0], [0, 2.0, 0], [0, 2.0, 0]])  # the second text: "none"
    m = calibrate.measure(logits, gold, labels, None, scored=("against", "favor"))
    assert set(m["recall"]) == {"against", "favor"} and m["recall"]["against"] == 0.5
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1.0) / 2)  # against: P 1, R 0.5; favor: P 1, R 1; not none's 0


class _Item:
    def __init__(self, target):
        self.target = target


def test_content_free_is_measured_under_each_items_own_target():
    class StandIn:
        def _content_free(self, target):
            prior = {"A": [0.0, 3.0], "B": [3.0, 0.0]}[target]
            return scoring.Calibration(np.array(prior))

    logits = np.array([[1.0, 1.0], [1.0, 1.0]])
    out = calibrate.content_free_logits(StandIn(), logits, [_Item("A"), _Item("B")])
    assert out[0].argmax() == 0 and out[1].argmax() == 1  # each row had its own target's prior removed


def test_stances_missing_none_is_filled_from_tweets_that_name_no_target(tiny_bench, write_records):
    tweets = [{"sentence": t, "label": "neutral"} for t in
              ("Trump rally tonight", "The bus leaves at nine", "I had pasta", "Sanders spoke", "Rain again")]
    write_records(tiny_bench / "sc/twitter/train.json", tweets)
    train = calibrate.train_sample("stance", ("against", "favor", "none"), tiny_bench, n_train=4, seed=0)
    filled = [it for it in train if it.gold == "none"]
    targets = {it.target for it in train if it.gold != "none"}
    assert filled and len(filled) <= len(train) - len(filled)
    assert all(it.target in targets for it in filled)
    names = {w.lower() for t in targets for w in t.split()}
    assert not any(names & set(it.text.lower().split()) for it in filled)


def test_augmented_copies_keep_the_clean_label_and_add_a_training_distractor(tiny_bench, write_records):
    from senti_edge.bench.injection import DISTRACTORS

    write_records(tiny_bench / "sc/twitter/train.json", [{"sentence": f"Rain again {i}", "label": "neutral"} for i in range(6)])
    labels = ("against", "favor", "none")
    clean = calibrate.train_sample("stance", labels, tiny_bench, n_train=6, seed=0)
    train = calibrate.train_sample("stance", labels, tiny_bench, n_train=6, seed=0, augment=0.5)
    assert train[:len(clean)] == clean and len(train) == len(clean) + round(0.5 * len(clean))
    by_index = {it.index: it for it in clean}
    for it in train[len(clean):]:
        orig = by_index[it.index]
        assert it.gold == orig.gold and orig.text in it.text and len(it.text) > len(orig.text)
    assert not any(d.strip() in it.text for d in DISTRACTORS.values() for it in train)  # held back stays held back


@pytest.mark.model
def test_stance_gets_a_fit_once_none_is_filled(smollm2_path, tiny_bench, write_records):
    write_records(tiny_bench / "sc/twitter/train.json", [{"sentence": f"The bus leaves at {i}.", "label": "neutral"} for i in range(6)])
    r = calibrate.calibrate_task(str(smollm2_path), "stance", tiny_bench, n_train=4, n_val=4, threads=1, seed=0)
    assert set(r["val_mean_macro_f1"]) == {"none", "content-free", "fitted"} and len(r["bias"]) == 3
    assert set(r["val"]["none"]["pstance"]["recall"]) == {"against", "favor"} and r["val"]["none"]["pstance"]["n"] == 4


@pytest.mark.model
def test_a_head_measured_by_calibrate_is_what_the_analyzer_then_does(smollm2_path, tmp_path, write_records, monkeypatch,
                                                                     capsys):
    """The head's val macro-F1 in the calibration file is the macro-F1 `analyze` gets once the
    choice is stored in the model: same columns, same weights, same prompt. The task's progress
    counts every train and val text it scored."""
    from sklearn.metrics import f1_score

    from senti_edge.runtime.analyzer import Analyzer
    from senti_edge.runtime.engine import Engine

    ironic = ["Oh great, another Monday {}.", "I just love waiting in line for {} hours.", "Wonderful, the bus is late {} times."]
    plain = ["The meeting starts at {} pm.", "We planted {} trees in the park.", "The shop opens at {} today."]
    rows = [{"sentence": t.format(i), "label": lab} for i in range(5)
            for lab, group in (("irony", ironic), ("non-irony", plain)) for t in group]
    for split in ("train", "val"):
        write_records(tmp_path / "multifaced/irony18" / f"{split}.json", rows)
    r = calibrate.calibrate_task(str(smollm2_path), "irony", tmp_path, n_train=30, n_val=8, threads=1, seed=0,
                                 head_tokens=16)
    err = capsys.readouterr().err
    assert "irony: 100%" in err and "38/38" in err  # 30 train texts + 8 val
    assert set(r["val_mean_macro_f1"]) == set(calibrate.METHODS) and r["train_items"] == 30
    assert len(r["head"]["tokens"]) == 16 and np.shape(r["head"]["weight"]) == (2, 16)
    real = Engine.metadata
    value = scoring.metadata_value({"tasks": {"irony": {**r, "method": "head"}}})  # stored whether or not it won
    monkeypatch.setattr(Engine, "metadata", lambda self: {**real(self), scoring.METADATA_KEY: value})
    val = rows[:8]
    with Analyzer(model=str(smollm2_path), task="irony", n_threads=1, n_ctx=512) as az:
        assert az.calibration_method == "head" and len(az.score_ids) == 16
        pred = [row["label"] for row in az.classify([x["sentence"] for x in val])]
    f1 = f1_score([x["label"] for x in val], pred, labels=["non-irony", "irony"], average="macro", zero_division=0)
    assert f1 == pytest.approx(r["val"]["head"]["irony18"]["macro_f1"], abs=1e-9)


def test_stamp_writes_the_choice_into_the_adapter(tmp_path, tiny_gguf):
    from senti_edge.runtime.build import senti_metadata

    adapter = tiny_gguf(tmp_path / "lora.gguf")
    cal = {"tasks": {"irony": {"method": "none", "labels": ["non-irony", "irony"], "scale": None, "bias": None,
                               "val": {"not": "kept"}}}}
    calibrate.stamp(adapter, cal)
    stored = json.loads(senti_metadata(adapter)[scoring.METADATA_KEY])
    assert stored == {"tasks": {"irony": {"method": "none", "labels": ["non-irony", "irony"], "scale": None, "bias": None}}}
    assert [p.name for p in tmp_path.iterdir()] == ["lora.gguf"]  # no temporary file left


def test_a_stamp_target_that_is_not_gguf_fails_before_any_scoring(tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setattr(calibrate, "calibrate_task", lambda *a: pytest.fail("scored before checking --stamp"))
    bad = tmp_path / "lora.gguf"
    bad.write_text("not a model")
    from senti_edge.errors import SentiEdgeError

    with pytest.raises(SentiEdgeError, match="not a GGUF file"):
        calibrate.main(["-m", "x", "--data-dir", str(tmp_path), "--out", str(tmp_path / "c.json"), "--stamp", str(bad)])
    res = subprocess.run([sys.executable, "-m", "senti_edge.bench.calibrate", "-m", "x", "--data-dir", str(tmp_path),
                          "--out", str(tmp_path / "c.json"), "--stamp", str(bad)], capture_output=True, text=True)
    assert res.returncode == 1 and res.stderr.startswith("Error: ") and "Traceback" not in res.stderr
    assert not (tmp_path / "c.json").exists()


def test_the_report_is_one_row_per_val_set_with_recall_and_ece_before_and_after(tmp_path, capsys):
    def m(f1, rec, e):
        return {"macro_f1": f1, "recall": {"a": rec, "b": 1 - rec}, "ece": e, "n": 10}

    cal = {"tasks": {"binary": {"method": "head", "val": {
        "none": {"s1": m(0.5, 0.2, 0.1), "s2": m(0.6, 0.3, 0.1)}, "content-free": {"s1": m(0.4, 0.1, 0.2), "s2": m(0.4, 0.1, 0.2)},
        "fitted": {"s1": m(0.7, 0.6, 0.05), "s2": m(0.7, 0.6, 0.05)}, "head": {"s1": m(0.9, 0.8, 0.04), "s2": m(0.8, 0.7, 0.03)}}}}}
    out = tmp_path / "cal.json"
    out.write_text(json.dumps(cal))
    calibrate.main(["--out", str(out), "--report"])
    rows = capsys.readouterr().out.strip().splitlines()
    assert len(rows) == 4
    assert rows[2] == "| binary (s1) | 50.0 | 40.0 | 70.0 | 90.0 | head | a 0.60 -> 0.80, b 0.40 -> 0.20 | 0.050 -> 0.040 |"


def test_a_temperature_fit_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    scores = rng.normal(0, 3, size=(4000, 3))
    gold = np.array([rng.choice(3, p=p) for p in scoring.softmax(scores / 2.0)])  # labels drawn at T = 2
    assert calibrate.fit_temperature(scores, gold) == pytest.approx(2.0, rel=0.1)


def test_the_stored_entry_folds_the_temperature_into_the_weights_and_leaves_the_labels():
    head = {"tokens": [5, 9], "weight": [[1.0, -2.0], [0.5, 3.0]], "bias": [0.2, -0.2]}
    entry = {"method": "head", "labels": ["a", "b"], "scale": None, "bias": None, "head": head}
    x = np.array([[0.3, 1.2], [2.0, -1.0]])
    raw = scoring.Head.fitted(scoring.stored_entry(entry), ["a", "b"])
    hot = scoring.Head.fitted(scoring.stored_entry({**entry, "temperature": {"t": 2.5}}), ["a", "b"])
    assert np.allclose(hot.apply(x), raw.apply(x) / 2.5)
    assert (scoring.predict(x, hot)[0] == scoring.predict(x, raw)[0]).all()
    fit = {"method": "fitted", "labels": ["a", "b"], "scale": 1.5, "bias": [0.0, 0.8]}
    assert scoring.stored_entry(fit) == fit  # no temperature: stored exactly as before
    cal = scoring.Calibration.fitted(scoring.stored_entry({**fit, "temperature": {"t": 2.0}}), ["a", "b"])
    assert np.allclose(cal.apply(x), scoring.Calibration.fitted(fit, ["a", "b"]).apply(x) / 2.0)


def test_the_temperature_is_fitted_on_train_items_the_fit_never_saw(tmp_path, write_records):
    rows = [{"sentence": f"text number {i}", "label": "irony" if i % 2 else "non-irony"} for i in range(40)]
    write_records(tmp_path / "multifaced/irony18/train.json", rows)
    labels = ("non-irony", "irony")
    settings = {"train": "20", "seed": "0", "augment": "0.5"}
    seen = {it.text for it in calibrate.train_sample("irony", labels, tmp_path, 20, 0)}
    held = calibrate.held_out("irony", labels, tmp_path, 20, settings)
    assert len(held) == 20 and not seen & {it.text for it in held}  # all 20 the fit left


def test_temperatures_go_to_fits_and_heads_once(tmp_path, monkeypatch, capsys):
    calls = []

    def fake(model, task, data_dir, n_train, n_val, threads, seed, head_tokens, head_margin, augment):
        m = {"polarity": "head", "irony": "fitted", "stance": "content-free"}[task]
        f1 = {"macro_f1": 0.5, "recall": {"a": 0.5, "b": 0.5}, "ece": 0.1, "n": 2}
        return {"method": m, "labels": ["a", "b"], "scale": 1.0, "bias": [0.0, 0.0], "head": {"tokens": [1], "weight": [[1.0], [-1.0]], "bias": [0.0, 0.0]},
                "val_mean_macro_f1": {m: 0.5}, "val": {m: {"s": f1}, "none": {"s": f1}, "fitted": {"s": f1}}}

    def temper(model, task, entry, data_dir, n, fit_settings, threads):
        calls.append(task)
        return {"t": 1.5, "n": n, "n_asked": n, "nll": [0.7, 0.6], "ece": [0.09, 0.02]}

    monkeypatch.setattr(calibrate, "calibrate_task", fake)
    monkeypatch.setattr(calibrate, "temper_task", temper)
    out = tmp_path / "cal.json"
    args = ["-m", "x", "--data-dir", str(tmp_path), "--out", str(out), "--tasks", "polarity,irony,stance"]
    calibrate.main(args)
    calibrate.main([*args, "--temperature", "50"])  # the fits are reused: the temperature is no fit setting
    calibrate.main([*args, "--temperature", "50"])
    assert calls == ["polarity", "irony"]
    tasks = json.loads(out.read_text())["tasks"]
    assert tasks["polarity"]["temperature"]["t"] == 1.5 and "temperature" not in tasks["stance"]
    capsys.readouterr()
    calibrate.main(["--out", str(out), "--report"])
    table = capsys.readouterr().out
    assert "| 1.50 (0.090 -> 0.020) |" in table and table.splitlines()[-1].endswith("| - |")


def test_a_negative_temperature_sample_is_a_usage_error_before_any_scoring(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(calibrate, "calibrate_task", lambda *a: pytest.fail("scored before checking --temperature"))
    with pytest.raises(SystemExit) as exc:
        calibrate.main(["-m", "x", "--data-dir", str(tmp_path), "--out", str(tmp_path / "c.json"), "--temperature", "-3"])
    assert exc.value.code == 2 and "--temperature -3" in capsys.readouterr().err
    assert not (tmp_path / "c.json").exists()


def test_method_keeps_a_measured_alternative_says_so_and_refits_its_temperature(tmp_path, monkeypatch, capsys):
    calls = []
    f1 = {"macro_f1": 0.5, "recall": {"a": 0.5, "b": 0.5}, "ece": 0.1, "n": 2}
    monkeypatch.setattr(calibrate, "calibrate_task", lambda *a: {
        "method": "head", "labels": ["a", "b"], "scale": 1.0, "bias": [0.0, 0.0], "head": {"tokens": [1], "weight": [[1.0], [-1.0]], "bias": [0.0, 0.0]},
        "val_mean_macro_f1": {"head": 0.6, "fitted": 0.5}, "val": {"head": {"s": f1}, "fitted": {"s": f1}, "none": {"s": f1}}})
    monkeypatch.setattr(calibrate, "temper_task", lambda model, task, entry, *a: calls.append(entry["method"]) or
                        {"t": 2.0 if entry["method"] == "fitted" else 1.5, "n": 9, "n_asked": 9, "ece": [0.1, 0.05]})
    out = tmp_path / "cal.json"
    args = ["-m", "x", "--data-dir", str(tmp_path), "--out", str(out), "--tasks", "polarity", "--temperature", "9"]
    calibrate.main(args)
    calibrate.main([*args, "--method", "polarity=fitted"])  # no rescoring: the fit is in the file
    r = json.loads(out.read_text())["tasks"]["polarity"]
    assert calls == ["head", "fitted"] and r["method"] == "fitted" and r["temperature"]["t"] == 2.0
    assert r["chosen_by"] == "--method polarity=fitted (measured best: head)"
    assert scoring.stored_entry(r)["method"] == "fitted"
    for bad in ("polarity=svm", "irony=fitted"):
        with pytest.raises(SystemExit) as exc:
            calibrate.main([*args, "--method", bad])
        assert exc.value.code == 2 and f"--method {bad}" in capsys.readouterr().err
    monkeypatch.setattr(calibrate, "calibrate_task", lambda *a: {**json.loads(out.read_text())["tasks"]["polarity"], "val": {"none": {"s": f1}}})
    with pytest.raises(calibrate.SentiEdgeError, match="measured only none"):
        calibrate.main([*args, "--out", str(tmp_path / "other.json"), "--method", "polarity=head"])
