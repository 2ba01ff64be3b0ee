"""Stage 2 generation: diversified prompts, teacher answers and distributions, gold handling."""

import json
from pathlib import Path

import pytest

from senti_edge.distill import icldist
from senti_edge.distill.config import ICLDistConfig
from senti_edge.distill.corpus import load_corpus
from senti_edge.distill.pipeline import generate
from senti_edge.distill.records import render
from senti_edge.errors import SentiEdgeError

from .conftest import NEG, POS, ScriptedTeacher


def test_jobs_are_seeded_and_diverse(cfg_factory):
    cfg = cfg_factory()
    corpus = load_corpus(cfg.corpus, cfg.seed)
    icfg = ICLDistConfig(n_items=300, max_shots=8, general_fraction=0.1)
    a, b = icldist.jobs(corpus, icfg, 7), icldist.jobs(corpus, icfg, 7)
    assert [j.data for j in a] == [j.data for j in b]
    labels = [j for j in a if j.data["kind"] == "label"]
    assert 0 < len(a) - len(labels) < 60
    prompts = ["".join(s.text for s in render(j.data["parts"], corpus)) for j in labels]
    assert {w for j in labels for w in j.data["label_words"]} >= {"positive", "POSITIVE", "Positive", "favor"}
    assert len({p.split("\n")[0] for p in prompts}) > 10  # paraphrased instructions, orders, joiners
    assert any("\n---\n" in p for p in prompts) and any("\n###\n" in p for p in prompts)
    shots = [sum(1 for part in j.data["parts"] if isinstance(part, dict) and "field" not in part) - 1 for j in labels]
    assert min(shots) == 0 and max(shots) >= 8 - 1  # small pools cap the demos
    assert all("VAL TEXT" not in p for p in prompts)
    assert all(p.rstrip().endswith(":") for p in prompts)


def test_records_answers_and_kl_targets(cfg_factory):
    cfg = cfg_factory(icldist={"n_items": 12, "gold": "report"})
    m = generate(cfg, "icldist", teacher=ScriptedTeacher())
    assert m["complete"]
    raw = (Path(cfg.out_dir) / "icldist.jsonl").read_text()
    assert not any(t in raw for t in POS + NEG)
    recs = [json.loads(x) for x in raw.splitlines()]
    label = [r for r in recs if r["kind"] == "label"]
    assert label and all(r["response"].strip() in r["label_words"] for r in label)
    assert all("gold" not in r for r in recs)  # only agreement is recorded, never the gold label
    report = json.loads((Path(cfg.out_dir) / "icldist.report.json").read_text())
    assert report["records"] == 12 and report["teacher_gold_agreement"] is not None
    ex = icldist.examples(recs, load_corpus(cfg.corpus, cfg.seed), cfg)
    kl = [e for e in ex if "teacher_probs" in e]
    assert kl and all(abs(sum(e["teacher_probs"]) - 1) < 1e-6 for e in kl)
    # gold = filter drops the answers that disagree with the gold label
    cfg2 = cfg_factory(icldist={"n_items": 12, "gold": "filter"})
    n_disagree = sum(1 for r in recs if r.get("gold_agree") is False)
    assert len(icldist.examples(recs, load_corpus(cfg.corpus, cfg.seed), cfg2)) == len(ex) - n_disagree


def test_no_labelled_data_is_an_error(tmp_path):
    from senti_edge.distill.config import CorpusConfig

    (tmp_path / "t.txt").write_text("hello\n")
    corpus = load_corpus(CorpusConfig(files=[str(tmp_path / "t.txt")]))
    with pytest.raises(SentiEdgeError, match="no labelled train texts"):
        icldist.jobs(corpus, ICLDistConfig(general_fraction=0.0), 1)
    with pytest.raises(SentiEdgeError, match="not a labelled classification set"):
        icldist.jobs(corpus, ICLDistConfig(datasets=["absa/opener"]), 1)
    assert all(j.data["kind"] == "general" for j in icldist.jobs(corpus, ICLDistConfig(n_items=5), 1))


class NoLogprobsTeacher(ScriptedTeacher):
    """A server without logprobs: answers in text, or with nonsense."""

    def __init__(self, answer):
        super().__init__()
        self.answer = answer

    def _label_logits(self, prompt, labels):
        return None

    def _generate(self, prompt, chat, max_tokens, stop):
        from senti_edge.distill.teachers import Reply

        return Reply(self.answer if not chat else "A summary.", True)


def test_teacher_without_logprobs_answers_in_text(cfg_factory):
    assert icldist.answer_index(" Not intimate.", ["intimate", "not intimate"]) == 1
    assert icldist.answer_index("banana", ["positive", "negative"]) is None
    cfg = cfg_factory(icldist={"n_items": 6, "general_fraction": 0.0, "datasets": ["sc/sst2"]})
    generate(cfg, "icldist", teacher=NoLogprobsTeacher(" NEGATIVE\n"))
    recs = [json.loads(x) for x in (Path(cfg.out_dir) / "icldist.jsonl").read_text().splitlines()]
    assert all(r["response"].strip().lower() == "negative" and r["label_logits"] is None for r in recs)
    ex = icldist.examples(recs, load_corpus(cfg.corpus, cfg.seed), cfg)
    assert len(ex) == 6 and not any("teacher_probs" in e for e in ex)
    bad = cfg_factory(out_dir=str(Path(cfg.out_dir).parent / "bad"), icldist={"n_items": 6, "datasets": ["sc/sst2"]},
                      teacher={"max_errors": 3})
    with pytest.raises(SentiEdgeError, match="answered none of"):
        generate(bad, "icldist", teacher=NoLogprobsTeacher("lorem ipsum"))


def test_aspect_tuple_tasks(cfg_factory):
    cfg = cfg_factory(corpus={"datasets": ["sc/sst2", "absa/atsa_rest16"]},
                      icldist={"n_items": 10, "aspects_fraction": 0.5, "general_fraction": 0.0})
    generate(cfg, "icldist", teacher=ScriptedTeacher())
    recs = [json.loads(x) for x in (Path(cfg.out_dir) / "icldist.jsonl").read_text().splitlines()]
    asp = [r for r in recs if r["kind"] == "aspects"]
    assert asp and all(r["qc"] == [] and r["dataset"] == "absa/atsa_rest16" for r in asp)
    assert json.loads(asp[0]["response"].removeprefix("Opinions: "))[0]["polarity"] == "positive"
    ex = [e for e in icldist.examples(recs, load_corpus(cfg.corpus, cfg.seed), cfg) if e["response"].startswith("Opinions:")]
    assert ex and all(e["chat"] for e in ex)
    # the prompt is the runtime's aspects prompt (chat form) for the same text
    from senti_edge.runtime.prompts import build_aspects_prompt

    rt = build_aspects_prompt(load_corpus(cfg.corpus, cfg.seed).text(asp[0]["ref"] if "ref" in asp[0] else asp[0]["prompt"][-1]["ref"]),
                              template="chatml")
    from senti_edge.distill.teachers import wrap_chat

    mine = wrap_chat(ex[0]["prompt"], "chatml")
    assert [s.text for s in mine[:-1]] == [s.text for s in rt[:-1]] and rt[-1].text == mine[-1].text + "Opinions:"
