"""senti_edge/distill/corpus.py: sources, dedup, refs, and refusing val/test or empty input."""

import json

import pytest

from senti_edge.distill.config import CorpusConfig
from senti_edge.distill.corpus import load_corpus
from senti_edge.errors import SentiEdgeError


def test_sentibench_train_only_dedup_and_labels(fake_bench):
    c = load_corpus(CorpusConfig(sentibench_dir=str(fake_bench), datasets=["sc/sst2", "multifaced/pstance"]))
    texts = [it.text for it in c.items]
    assert len(texts) == len(set(texts)) == 13  # 11 sst2 rows with one duplicate, 3 pstance
    assert all("VAL TEXT" not in t for t in texts)
    assert c.by_ref["multifaced/pstance:0"].label == "favor"  # casing normalised
    assert c.by_ref["multifaced/pstance:0"].target == "Bernie Sanders"
    assert c.text("sc/sst2:0") == "I loved every minute of this film."


def test_sampling_is_even_and_seeded(fake_bench):
    cfg = CorpusConfig(sentibench_dir=str(fake_bench), datasets=["sc/sst2", "multifaced/pstance"], max_texts=4)
    a, b = load_corpus(cfg, seed=1).items, load_corpus(cfg, seed=1).items
    assert a == b and len(a) == 4
    assert sum(it.ref.startswith("multifaced") for it in a) == 2


def test_user_files(tmp_path):
    (tmp_path / "a.txt").write_text("one\n\ntwo\none\n")
    (tmp_path / "b.jsonl").write_text(json.dumps({"body": "three"}) + "\n")
    (tmp_path / "c.csv").write_text("body,x\nfour,1\n")
    c = load_corpus(CorpusConfig(files=[str(tmp_path / "a.txt")]))
    assert sorted((it.text, it.ref) for it in c.items) == [("one", "file0:1"), ("two", "file0:3")]
    c = load_corpus(CorpusConfig(files=[str(tmp_path / "b.jsonl"), str(tmp_path / "c.csv")], text_field="body"))
    assert sorted(it.text for it in c.items) == ["four", "three"]
    with pytest.raises(SentiEdgeError, match="no field 'text'"):
        load_corpus(CorpusConfig(files=[str(tmp_path / "b.jsonl")]))


def test_bad_corpus(tmp_path, fake_bench):
    with pytest.raises(SentiEdgeError, match="corpus is empty"):
        load_corpus(CorpusConfig())
    with pytest.raises(SentiEdgeError, match="file not found"):
        load_corpus(CorpusConfig(files=[str(tmp_path / "nope.txt")]))
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(SentiEdgeError, match="no non-empty texts"):
        load_corpus(CorpusConfig(files=[str(tmp_path / "empty.txt")]))
    with pytest.raises(SentiEdgeError, match="evaluation split"):
        load_corpus(CorpusConfig(files=[str(fake_bench / "sc" / "sst2" / "val.json")]))
    with pytest.raises(SentiEdgeError, match="unknown SentiBench dataset"):
        load_corpus(CorpusConfig(sentibench_dir=str(fake_bench), datasets=["sc/nope"]))
    with pytest.raises(SentiEdgeError, match="train.json not found"):
        load_corpus(CorpusConfig(sentibench_dir=str(fake_bench), datasets=["sc/imdb"]))


def test_sentibench_texts_come_through_the_one_strict_reader(fake_bench):
    """The corpus reads SentiBench through `sentibench.load_split`: refs stay "<folder>:<index>", and a
    bad train record is refused with its file and index instead of becoming an unlabelled text."""
    from senti_edge.distill.corpus import SENTIBENCH
    from senti_edge.sentibench import DATASETS

    assert SENTIBENCH == {d.dir: (d.task, d.labels) for d in DATASETS.values()}
    c = load_corpus(CorpusConfig(sentibench_dir=str(fake_bench), datasets=["absa/atsa_rest16"]))
    assert sorted(c.by_ref) == ["absa/atsa_rest16:0", "absa/atsa_rest16:1"]
    assert c.by_ref["absa/atsa_rest16:0"].label is None  # fine-grained sets give texts only
    path = fake_bench / "sc" / "sst2" / "train.json"
    path.write_text(json.dumps([{"sentence": "fine", "label": "positive"}, {"sentence": "no label here"}]))
    with pytest.raises(SentiEdgeError, match=r"train\.json: record 1: missing field 'label'"):
        load_corpus(CorpusConfig(sentibench_dir=str(fake_bench), datasets=["sc/sst2"]))
