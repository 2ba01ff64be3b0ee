"""Stage 2 generation: diversified prompts, teacher answers and distributions, gold handling."""

import json
from pathlib import Path

import pytest

from senti_edge.distill import icldist
from senti_edge.distill.config import ICLDistConfig
from senti_edge.distill.corpus import load_corpus
from senti_edge.distill.pipeline import generate
from senti_edge.distill.records import to_segments
from senti_edge.errors import SentiEdgeError

from .conftest import NEG, POS, ScriptedTeacher


def test_jobs_are_seeded_and_diverse(cfg_factory):
    cfg = cfg_factory()
    corpus = load_corpus(cfg.corpus, cfg.seed)
    icfg = ICLDistConfig(n_items=300, max_shots=8, general_fraction=0.1, group_size=1)
    a, b = icldist.jobs(corpus, icfg, 7), icldist.jobs(corpus, icfg, 7)
    assert [j.data for j in a] == [j.data for j in b]
    labels = [j for j in a if j.data["kind"] == "label"]
    assert 0 < len(a) - len(labels) < 60
    prompts = ["".join(s.text for s in to_segments(j.data["parts"], corpus)) for j in labels]
    assert {w for j in labels for w in j.data["label_words"]} >= {"positive", "POSITIVE", "Positive", "favor"}
    assert len({p.split("\n")[0] for p in prompts}) > 10  # paraphrased instructions, orders, joiners
    assert any("\n---\n" in p for p in prompts) and any("\n###\n" in p for p in prompts)
    shots = [sum(1 for part in j.data["parts"] if isinstance(part, dict) and "field" not in part) - 1 for j in labels]
    assert min(shots) == 0 and max(shots) >= 8 - 1  # small pools cap the demos
    assert all("VAL TEXT" not in p for p in prompts)
    assert all(p.rstrip().endswith(":") for p in prompts)


def test_groups_share_a_prefix_and_some_use_the_runtime_format(cfg_factory):
    cfg = cfg_factory()
    corpus = load_corpus(cfg.corpus, cfg.seed)
    icfg = ICLDistConfig(n_items=240, group_size=6, general_fraction=0.0, canonical_fraction=0.5, demo_chars=20,
                          min_shots=1, max_shots=2)
    jobs = icldist.jobs(corpus, icfg, 3)
    groups = [jobs[g:g + 6] for g in range(0, len(jobs), 6)]
    for group in groups:
        q = 5 if group[0].data["dataset"] == "multifaced/pstance" else 3  # the query block (with Target:)
        heads = {json.dumps(j.data["parts"][:-q]) for j in group}
        assert len(heads) == 1
        queries = {json.dumps(j.data["parts"][-q:]) for j in group}
        demo_refs = {p["ref"] for p in group[0].data["parts"][:-q] if isinstance(p, dict)}
        assert not demo_refs & {p["ref"] for j in group for p in j.data["parts"][-q:] if isinstance(p, dict)}
        assert len(queries) > 1 or q == 5  # the pstance fixture has only three texts
    canonical = [g[0] for g in groups if g[0].data["parts"][0][0].startswith(("Classify the sentiment of each sentence as one of: negative, positive",
                                                                              "Decide whether each sentence is ironic. Answer with one of: non-irony, irony."))]
    assert canonical
    for j in canonical:
        text = "".join(s.text for s in to_segments(j.data["parts"], corpus))
        assert "\nLabel:" in text and text.endswith("\nLabel:")
    demo_texts = [s.text for j in jobs for p, s in zip(j.data["parts"][:-5], to_segments(j.data["parts"][:-5], corpus))
                  if isinstance(p, dict) and "field" not in p]
    assert demo_texts and max(len(t) for t in demo_texts) <= 21  # a space and at most demo_chars


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
    from senti_edge.runtime.prompts import wrap_chat

    mine = wrap_chat(ex[0]["prompt"], "chatml")
    assert [s.text for s in mine[:-1]] == [s.text for s in rt[:-1]] and rt[-1].text == mine[-1].text + "Opinions:"


def test_packed_records_resume_generation_and_need_no_teacher(cfg_factory, tmp_path):
    from senti_edge.distill.pipeline import pack_stage

    full = cfg_factory(out_dir=str(tmp_path / "full"), icldist={"n_items": 10})
    generate(full, "icldist", teacher=ScriptedTeacher())
    half = cfg_factory(out_dir=str(tmp_path / "half"), icldist={"n_items": 10})
    generate(half, "icldist", teacher=ScriptedTeacher(), max_items=4)
    packed = pack_stage(half, "icldist", tmp_path / "pack")
    assert packed.name == "icldist.jsonl.gz" and (tmp_path / "pack" / "config.json").is_file()
    raw = __import__("gzip").open(packed, "rt").read()
    assert "VAL TEXT" not in raw and "loved every minute" not in raw  # references, not texts

    # a new run starts from the pack and asks the teacher only for the rest
    more = cfg_factory(out_dir=str(tmp_path / "more"), icldist={"n_items": 10}, teacher_records=str(tmp_path / "pack"))
    teacher = ScriptedTeacher()
    m = generate(more, "icldist", teacher=teacher)
    assert m["complete"] and m["last_run"]["new_records"] == 6

    def recs(d):
        return sorted((json.loads(x) for x in (tmp_path / d / "icldist.jsonl").read_text().splitlines()), key=lambda r: r["id"])

    assert recs("more") == recs("full")

    # a complete pack trains without a teacher: a teacher that cannot load is never loaded
    pack_stage(more, "icldist", tmp_path / "pack")
    alone = cfg_factory(out_dir=str(tmp_path / "alone"), icldist={"n_items": 10}, teacher_records=str(tmp_path / "pack"))
    alone.teacher.model = str(tmp_path / "missing.gguf")
    m = generate(alone, "icldist")
    assert m["complete"] and m["teacher"] == recs("full")[0]["teacher"]
    assert recs("alone") == recs("full")


def test_users_labelled_files_become_tasks_of_their_own(cfg_factory, tmp_path):
    rows = [{"body": f"ticket {i}: the printer is on fire" if i % 2 else f"ticket {i}: please reset my password",
             "tag": "urgent" if i % 2 else "routine"} for i in range(12)]
    rows.append({"body": "a blank tag here", "tag": " "})
    f = tmp_path / "tickets.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows))
    cfg = cfg_factory(corpus={"sentibench_dir": "", "datasets": [], "files": [str(f)], "text_field": "body",
                              "label_field": "tag", "max_texts": 0},
                      icldist={"n_items": 24, "general_fraction": 0.0, "aspects_fraction": 0.0, "group_size": 4})
    corpus = load_corpus(cfg.corpus, cfg.seed)
    jobs = icldist.jobs(corpus, cfg.icldist, cfg.seed)
    assert {j.data["dataset"] for j in jobs} == {"file0"}
    assert all(sorted(w.lower() for w in j.data["label_words"]) == ["routine", "urgent"] for j in jobs)
    prompts = ["".join(s.text for s in to_segments(j.data["parts"], corpus)) for j in jobs]
    assert any("printer is on fire" in p for p in prompts) and not any("a blank tag here" in p for p in prompts)
    generate(cfg, "icldist", teacher=ScriptedTeacher())
    report = json.loads((Path(cfg.out_dir) / "icldist.report.json").read_text())
    assert report["by_dataset"] == {"file0": 24} and report["teacher_gold_agreement"] is not None

    one_label = tmp_path / "one.jsonl"
    one_label.write_text("\n".join(json.dumps({"text": f"t{i}", "label": "x"}) for i in range(3)))
    bad = cfg_factory(corpus={"sentibench_dir": "", "datasets": [], "files": [str(one_label)], "label_field": "label"},
                      icldist={"general_fraction": 0.0})
    with pytest.raises(SentiEdgeError, match="no labelled train texts"):
        icldist.jobs(load_corpus(bad.corpus, bad.seed), bad.icldist, bad.seed)
