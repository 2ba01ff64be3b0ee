"""Stage 3 examples: the runtime's own zero-shot prompt, QC v2 against the train label, distractors."""

import json
import math

import pytest

from senti_edge.bench import injection
from senti_edge.distill import consistency
from senti_edge.distill.corpus import load_corpus
from senti_edge.errors import SentiEdgeError
from senti_edge.runtime.prompts import build_aspects_prompt, build_prefix, build_query, parse_aspects, text_spans, wrap_chat
from senti_edge.runtime.tasks import TASKS
from senti_edge.sentibench import DATASETS

from .conftest import POS


def record(i: int, ref: str, logits, dataset="sc/sst2", words=("negative", "positive")):
    return {"id": f"icl:{i}", "kind": "label", "dataset": dataset, "qc": [], "label_words": list(words),
            "label_logits": list(logits), "response": " x",
            "prompt": [["Tell me.\n", True], ["Sentence:", True], {"ref": "sc/sst2:9"}, ["\nLabel: negative\n", True],
                       ["Sentence:", True], {"ref": ref, "chars": 1500}, ["\nLabel:", True]]}


def setup(cfg_factory, **consistency_cfg):
    cfg = cfg_factory(consistency={"enabled": True, **consistency_cfg})
    return cfg, load_corpus(cfg.corpus, cfg.seed)


def text_of(ex):
    return "".join(s.text for s in ex["prompt"])


def test_examples_are_the_runtimes_zero_shot_prompt_with_the_teachers_distribution(cfg_factory):
    cfg, corpus = setup(cfg_factory, distractor_share=0.0, replay=0.0)
    recs = [record(0, "sc/sst2:0", [0.0, 2.0]), record(1, "sc/sst2:0", [0.0, 3.0])]  # the same query twice: one example
    (ex,) = consistency.examples(recs, corpus, cfg)
    task = TASKS["binary"]
    assert text_of(ex) == "".join(s.text for s in build_prefix(task) + build_query(task, POS[0]))
    assert ex["response"] == " positive" and ex["label_words"] == ["negative", "positive"]
    assert ex["teacher_probs"][1] == pytest.approx(1 / (1 + math.exp(-2)))


@pytest.mark.parametrize("gold", ["filter", "correct", "weight"])
def test_quality_control_against_the_train_label(cfg_factory, gold):
    cfg, corpus = setup(cfg_factory, gold=gold, distractor_share=0.0, replay=0.0)
    recs = [record(0, "sc/sst2:0", [0.0, 2.0]), record(1, "sc/sst2:1", [1.0, 0.0])]  # the second disagrees (gold positive)
    ex = {e["id"]: e for e in consistency.examples(recs, corpus, cfg)}
    assert ex["c:icl:0"]["response"] == " positive" and ex["c:icl:0"]["weight"] == 1.0
    if gold == "filter":
        assert "c:icl:1" not in ex
    elif gold == "correct":
        assert ex["c:icl:1"]["response"] == " positive" and "teacher_probs" not in ex["c:icl:1"]
    else:
        assert ex["c:icl:1"]["response"] == " negative"
        assert ex["c:icl:1"]["weight"] == pytest.approx(1 / (1 + math.e))


def test_distractor_copies_keep_the_clean_target_and_leave_the_bench_kinds_held_back(cfg_factory):
    cfg, corpus = setup(cfg_factory, distractor_share=1.0, replay=0.0, gold_texts=3)
    recs = [record(i, f"sc/sst2:{i}", [0.0, 1.0] if i < 3 else [1.0, 0.0]) for i in range(6)]
    ex = consistency.examples(recs, corpus, cfg)
    clean = {e["id"]: e for e in ex if "distractor" not in e}
    noisy = [e for e in ex if "distractor" in e]
    assert len(noisy) == len(clean) and sum(e.startswith("g:") for e in clean) == 3 + 3  # sst2 and pstance
    kinds = set()
    for e in noisy:
        src = clean[e["clean_id"]]
        kinds.add(e["distractor"])
        assert e["distractor"] in consistency.TRAIN_KINDS and e["response"] == src["response"]
        assert text_of(src).split("Sentence: ")[1].split("\n")[0] in text_of(e) != text_of(src)
    assert len(kinds) >= 3
    # the bench's robustness strings never appear in training; chat markers and Sentence:/Label: demos are whole kinds held back
    trained = " ".join(consistency.HARMLESS + consistency.INSTRUCTIONS)
    for suffix, _ in injection.perturbations().values():
        assert suffix.strip().format() not in trained
    assert "<|" not in trained and "Sentence:" not in trained and "Label:" not in trained


def test_stance_keeps_its_target_and_gets_no_kl_over_a_label_the_teacher_was_not_offered(cfg_factory):
    cfg, corpus = setup(cfg_factory, distractor_share=0.0, replay=0.0)
    rec = record(0, "multifaced/pstance:0", [0.0, 2.0], dataset="multifaced/pstance", words=("against", "favor"))
    (ex,) = consistency.examples([rec], corpus, cfg)
    assert "Target: Bernie Sanders" in text_of(ex) and ex["response"] == " favor" and "teacher_probs" not in ex
    assert text_of(ex).startswith(build_prefix(TASKS["stance"], (), "Bernie Sanders")[0].text)


def test_gold_datasets_give_gold_texts_to_the_named_sets_only(cfg_factory):
    cfg, corpus = setup(cfg_factory, distractor_share=0.0, replay=0.0, gold_texts=3)
    every = {e["id"].split(":")[1] for e in consistency.examples([], corpus, cfg)}
    assert every == {"sc/sst2", "multifaced/pstance"}  # the fixture's two labelled sets
    cfg, corpus = setup(cfg_factory, distractor_share=0.0, replay=0.0, gold_texts=3, gold_datasets=["pstance"])
    ex = consistency.examples([], corpus, cfg)
    assert len(ex) == 3 and {e["id"].split(":")[1] for e in ex} == {"multifaced/pstance"}
    with pytest.raises(SentiEdgeError, match="gold_datasets entry 'opener' is not a classification set"):
        cfg_factory(consistency={"gold_datasets": ["opener"]})


def test_replay_and_config_checks(cfg_factory):
    cfg, corpus = setup(cfg_factory, distractor_share=0.0, replay=0.5)
    old = [{"id": f"old:{i}"} for i in range(10)]
    ex = consistency.examples([record(0, "sc/sst2:0", [0.0, 1.0])], corpus, cfg, old)
    assert sum(e["id"].startswith("old:") for e in ex) == 5
    for bad in ({"gold": "maybe"}, {"init": "merge"}, {"distractor_share": 1.5}, {"gold_texts": -1}):
        with pytest.raises(SentiEdgeError, match="consistency"):
            cfg_factory(consistency=bad)


def _quad(category, aspect, opinion, sentiment):
    return {"category": category, "aspect": aspect, "opinion": opinion, "sentiment": sentiment}


def _asqp(root, split, rows):
    path = root / "absa" / "asqp_rest16" / f"{split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([{"sentence": s, "quards": q} for s, q in rows]), encoding="utf-8")


def test_gold_opinion_lists_are_what_the_grounded_grammar_can_write():
    spec = DATASETS["asqp_rest16"]
    text = "The pasta was great , but the service slow ."
    gold = [("food quality", "pasta", "great", "positive"), ("service general", "service", "slow", "negative"),
            ("food quality", "pasta", "great", "positive"), ("restaurant general", "NULL", "great", "positive")]
    objs = consistency.gold_objects(spec, text, gold)
    assert objs == [{"aspect": "pasta", "category": "food quality", "opinion": "great", "polarity": "positive"},
                    {"aspect": "service", "category": "service general", "opinion": "slow", "polarity": "negative"},
                    {"aspect": None, "category": "restaurant general", "opinion": "great", "polarity": "positive"}]
    assert parse_aspects(json.dumps(objs)) == objs  # keys in the grammar's order, a duplicate kept once
    assert all(o["opinion"] in text_spans(text) for o in objs)
    # an opinion that is not a run of the text's words, or a polarity outside the task's: the whole list is refused
    assert consistency.gold_objects(spec, text, [("food quality", "pasta", "tasty", "positive")]) is None
    assert consistency.gold_objects(spec, text, [("food quality", "pasta", "great", "mixed")]) is None
    assert consistency.gold_objects(spec, text, [("NULL", "pasta", "great", "positive")]) is None


def test_aspect_examples_ask_the_runtimes_prompt_and_leave_val_texts_out(cfg_factory, fake_bench):
    _asqp(fake_bench, "train", [
        ("The pasta was great .", [_quad("food quality", "pasta", "great", "positive")]),
        ("Rude staff , cold soup .", [_quad("service general", "staff", "Rude", "negative"),
                                      _quad("food quality", "soup", "cold", "negative")]),
        ("The terrace is lovely .", [_quad("ambience general", "terrace", "lovely", "positive")]),
        ("Tasty .", [_quad("food quality", "NULL", "delicious", "positive")])])  # not a span: left out
    _asqp(fake_bench, "val", [("the TERRACE is lovely", [])])  # the same sentence up to case and spacing
    cfg, corpus = setup(cfg_factory, distractor_share=0.0, replay=0.0, aspects_gold=10)
    ex = [e for e in consistency.examples([record(0, "sc/sst2:0", [0.0, 1.0])], corpus, cfg) if e["id"].startswith("a:")]
    assert sorted(e["id"] for e in ex) == ["a:absa/asqp_rest16:0", "a:absa/asqp_rest16:1"]
    for e in ex:
        text = {"0": "The pasta was great .", "1": "Rude staff , cold soup ."}[e["id"][-1]]
        # what the trainer wraps is byte for byte what the analyzer sends for `-t aspects`
        assert wrap_chat(e["prompt"], "chatml", e["reply"]) == build_aspects_prompt(text, "chatml")
        assert wrap_chat(e["prompt"], None, e["reply"]) == build_aspects_prompt(text)
        assert parse_aspects(e["response"]) and e["response"].startswith(" [")
    assert len(consistency.aspect_examples(fake_bench, 1, cfg.seed)) == 1
    with pytest.raises(SentiEdgeError, match="sentibench_dir"):
        consistency.aspect_examples("", 1, cfg.seed)


def test_label_share_keeps_a_random_part_of_the_label_examples(cfg_factory):
    recs = [record(i, f"sc/sst2:{i}", [0.0, 1.0]) for i in range(4)]  # four positive texts, the teacher agreeing
    cfg, corpus = setup(cfg_factory, distractor_share=0.0, replay=0.0, gold_texts=0)
    assert len(consistency.examples(recs, corpus, cfg)) == 4
    cfg, corpus = setup(cfg_factory, distractor_share=0.0, replay=0.0, gold_texts=0, label_share=0.5)
    kept = consistency.examples(recs, corpus, cfg)
    assert len(kept) == 2 and kept == consistency.examples(recs, corpus, cfg)  # seeded: the same half each time
    for bad in ({"label_share": -0.1}, {"aspects_gold": -1}):
        with pytest.raises(SentiEdgeError, match="consistency"):
            cfg_factory(consistency=bad)
