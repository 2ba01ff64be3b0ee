"""Stage 1 generation: records, quality control, resume after a kill, failing or nonsense teachers."""

import json
from pathlib import Path

import pytest

from senti_edge.distill import knowdist
from senti_edge.distill.config import KnowDistConfig
from senti_edge.distill.pipeline import generate
from senti_edge.errors import SentiEdgeError

from .conftest import ScriptedTeacher


def _records(cfg):
    lines = (Path(cfg.out_dir) / "knowdist.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines]


def _strip(recs):
    return sorted((json.dumps(r, sort_keys=True) for r in recs))


def test_qc_reasons():
    ok = "The writer loves the food and the staff.\nOverall sentiment: positive"
    assert knowdist.stated_label(ok) == "positive"
    assert knowdist.qc_reasons(ok, True, "positive", "positive") == []
    assert knowdist.qc_reasons(ok, True, "positive", "negative") == ["inconsistent"]
    assert set(knowdist.qc_reasons("no label here at all, sorry friend", False, None, "neutral")) == {"truncated", "off_format"}
    assert "repetitive" in knowdist.qc_reasons("bad " * 40, True, None, None)
    assert "empty" in knowdist.qc_reasons("  ", True, None, None)
    cfg = KnowDistConfig(drop=["truncated"], downweight=["inconsistent"], low_weight=0.5)
    assert knowdist.decide({"qc": ["inconsistent"]}, cfg) == 0.5
    assert knowdist.decide({"qc": ["truncated", "inconsistent"]}, cfg) == 0.0
    assert knowdist.decide({"qc": []}, cfg) == 1.0


def test_generate_records_refs_not_texts(cfg_factory):
    cfg = cfg_factory(knowdist={"per_text": 2})
    m = generate(cfg, "knowdist", teacher=ScriptedTeacher())
    recs = _records(cfg)
    assert m["complete"] and m["done"] == len(recs) == 8
    raw = (Path(cfg.out_dir) / "knowdist.jsonl").read_text()
    from .conftest import NEG, POS

    assert not any(t in raw for t in POS + NEG)  # texts are referenced, never copied
    assert all(r["qc"] == [] and r["stated_label"] == r["teacher_label"] for r in recs)
    assert len({(r["ref"], r["perspective"]) for r in recs}) == 8


def test_resume_after_kill_equals_uninterrupted(cfg_factory, tmp_path):
    full = cfg_factory(out_dir=str(tmp_path / "full"))
    generate(full, "knowdist", teacher=ScriptedTeacher())
    part = cfg_factory(out_dir=str(tmp_path / "part"))
    m = generate(part, "knowdist", teacher=ScriptedTeacher(), max_items=2)
    assert not m["complete"] and m["done"] == 2
    path = tmp_path / "part" / "knowdist.jsonl"
    with open(path, "a") as fh:  # a kill in the middle of writing the third record
        fh.write('{"stage": "knowdist", "ref": "sc/ss')
    t = ScriptedTeacher()
    m = generate(part, "knowdist", teacher=t)
    assert m["complete"] and m["last_run"]["new_records"] == 2 and len(t.seen) == 2
    assert _strip(_records(part)) == _strip(_records(full))


def test_failing_teacher_stops_and_keeps_records(cfg_factory):
    cfg = cfg_factory(teacher={"max_errors": 2})
    generate(cfg, "knowdist", teacher=ScriptedTeacher(), max_items=1)
    with pytest.raises(SentiEdgeError, match="failed 2 times in a row.*1 records are kept"):
        generate(cfg, "knowdist", teacher=ScriptedTeacher(fail_all=True))
    assert len(_records(cfg)) == 1
    # one bad item is skipped (retried on the next run), the rest are written
    t = ScriptedTeacher(fail=["text below. Focus on the overall polarity"])  # fails on one perspective only
    m = generate(cfg, "knowdist", teacher=t)
    assert m["last_run"]["errors"] == m["jobs"] - m["done"]
    assert m["last_run"]["new_records"] + 1 + m["last_run"]["errors"] == m["jobs"]


def test_nonsense_teacher_is_dropped_by_qc(cfg_factory):
    cfg = cfg_factory(knowdist={"drop": ["truncated", "off_format", "repetitive"]})
    generate(cfg, "knowdist", teacher=ScriptedTeacher(nonsense=True))
    qc = json.loads((Path(cfg.out_dir) / "knowdist.qc.json").read_text())
    assert qc["dropped"] == qc["records"] == 4
    assert qc["reasons"] == {"off_format": 4, "repetitive": 4, "truncated": 4}
    from senti_edge.distill.corpus import load_corpus

    assert knowdist.examples(_records(cfg), load_corpus(cfg.corpus, cfg.seed), cfg) == []


def test_changed_corpus_needs_new_out_dir_but_max_texts_may_shrink(cfg_factory):
    from senti_edge.distill.corpus import load_corpus

    cfg = cfg_factory()
    generate(cfg, "knowdist", teacher=ScriptedTeacher(), max_items=2)
    # fewer texts keep a prefix of the same sampled order, so the records made so far stay valid
    fewer = cfg_factory(corpus={"max_texts": 2})
    ids = [j.id for j in knowdist.jobs(load_corpus(fewer.corpus, fewer.seed), fewer.knowdist, fewer.seed)]
    assert ids == [j.id for j in knowdist.jobs(load_corpus(cfg.corpus, cfg.seed), cfg.knowdist, cfg.seed)][:2]
    assert generate(fewer, "knowdist", teacher=ScriptedTeacher())["complete"]
    other = cfg_factory(corpus={"datasets": ["sc/sst2"]})
    with pytest.raises(SentiEdgeError, match="another corpus"):
        generate(other, "knowdist", teacher=ScriptedTeacher())


def test_an_interrupted_run_keeps_its_stats_and_resumes_with_a_history(cfg_factory):
    class Interrupting(ScriptedTeacher):
        def __init__(self, after):
            super().__init__()
            self.after, self.calls_left = after, after

        def _generate(self, prompt, chat, max_tokens, stop):
            if self.calls_left == 0:
                raise KeyboardInterrupt
            self.calls_left -= 1
            return super()._generate(prompt, chat, max_tokens, stop)

    cfg = cfg_factory(corpus={"max_texts": 0})
    with pytest.raises(KeyboardInterrupt):
        generate(cfg, "knowdist", teacher=Interrupting(after=2))
    manifest = json.loads((Path(cfg.out_dir) / "knowdist.manifest.json").read_text())
    assert manifest["done"] == 2 and not manifest["complete"] and len(manifest["history"]) == 1
    done = generate(cfg, "knowdist", teacher=ScriptedTeacher())
    assert done["complete"] and len(done["history"]) == 2
    assert done["total"]["new_records"] == done["done"] == done["jobs"]


def test_stage_two_can_replay_a_seeded_share_of_stage_one(cfg_factory):
    from senti_edge.distill.corpus import load_corpus
    from senti_edge.distill.pipeline import replay

    cfg = cfg_factory(corpus={"max_texts": 0})
    generate(cfg, "knowdist", teacher=ScriptedTeacher())
    corpus = load_corpus(cfg.corpus, cfg.seed)
    every = knowdist.examples(_records(cfg), corpus, cfg)
    assert len(every) >= 4 and replay(cfg, corpus) == []  # off by default
    cfg.train.stage2_replay = 0.5
    half = replay(cfg, corpus)
    assert len(half) == round(len(every) / 2) and half == replay(cfg, corpus)
    assert all(ex in every and ex["chat"] for ex in half)
    cfg.train.stage2_replay = 1.0
    assert sorted(e["id"] for e in replay(cfg, corpus)) == sorted(e["id"] for e in every)
