"""bench/datasets.py and the table and reader it builds on (senti_edge/sentibench.py): selection by name
and category, loading, gold extraction and bad input, the runtime task table as the one instruction source."""

from __future__ import annotations

import pytest

from senti_edge.bench.datasets import TUPLE_INSTRUCTIONS, instruction, select_datasets
from senti_edge.sentibench import DATASETS, load_split, parse_record
from senti_edge.errors import SentiEdgeError


def test_twelve_datasets_in_three_categories():
    assert len(DATASETS) == 12
    cats = {}
    for d in DATASETS.values():
        cats.setdefault(d.category, []).append(d.name)
    assert {k: len(v) for k, v in cats.items()} == {"basic": 4, "multifaceted": 4, "fine-grained": 4}


def test_select_by_name_category_and_alias():
    assert [d.name for d in select_datasets("sst2, basic")] == ["imdb", "yelp2", "sst2", "twitter"]
    assert [d.name for d in select_datasets("FSA,pstance")] == ["pstance", "atsa_rest16", "acsa_rest16",
                                                                "asqp_rest16", "opener"]
    assert len(select_datasets("all")) == 12 and len(select_datasets(None)) == 12
    assert [d.name for d in select_datasets(["irony18", "sst2"])] == ["sst2", "irony18"]  # table order


@pytest.mark.parametrize("bad", ["sst3", "basic,nope", ""])
def test_select_unknown(bad):
    with pytest.raises(SentiEdgeError, match="unknown dataset|no datasets"):
        select_datasets(bad)


def test_load_bom_and_plain(tiny_bench):
    items = load_split(tiny_bench, DATASETS["sst2"], "val")  # BOM-prefixed
    assert len(items) == 12 and items[0].text == "a great film number 0" and items[0].gold == "positive"
    assert len(load_split(tiny_bench, DATASETS["sst2"], "val", limit=3)) == 3


def test_stance_target_and_label_case(tiny_bench):
    it = load_split(tiny_bench, DATASETS["pstance"], "val")[0]
    assert it.target == "Joe Biden" and it.gold == "against"


def test_atsa_skips_null_targets_and_keeps_empty(tiny_bench):
    items = load_split(tiny_bench, DATASETS["atsa_rest16"], "val")
    assert items[0].gold == [("meal", "positive")]
    assert items[1].gold == []


def test_acsa_category_lower_case_hash_as_space():
    rec = {"sentence": "x", "aspects": [{"target": "NULL", "category": "FOOD#STYLE_OPTIONS", "polarity": "negative"}]}
    assert parse_record(DATASETS["acsa_rest16"], rec, 0).gold == [("food style_options", "negative")]


def test_asqp_null_aspect():
    rec = {"sentence": "x", "quards": [{"aspect": "NULL", "category": "food quality", "sentiment": "positive",
                                        "opinion": "tasty"}]}
    assert parse_record(DATASETS["asqp_rest16"], rec, 0).gold == [("food quality", "NULL", "tasty", "positive")]


def test_opener_spans_and_nulls():
    rec = {"sentence": "I 'm definitely going there again", "opinions": [
        {"Source": [["I"], ["0:1"]], "Target": [["there"], ["22:27"]],
         "Polar_expression": [["definitely going", "again"], ["5:21", "28:33"]], "Polarity": "Positive"},
        {"Source": [[], []], "Target": [[], []], "Polar_expression": [["nice"], ["0:4"]], "Polarity": "Negative"}]}
    assert parse_record(DATASETS["opener"], rec, 0).gold == [("I", "there", "definitely going again", "positive"),
                                                             ("NULL", "NULL", "nice", "negative")]


def test_missing_data_dir(tmp_path):
    with pytest.raises(SentiEdgeError, match="data directory .*nope"):
        load_split(tmp_path / "nope", DATASETS["sst2"], "val")


def test_missing_split_names_file_and_alternatives(tiny_bench):
    with pytest.raises(SentiEdgeError, match=r"sst2: split file .*sc/sst2/test\.json not found \(this dataset has: train, val\)"):
        load_split(tiny_bench, DATASETS["sst2"], "test")
    with pytest.raises(SentiEdgeError, match="does not exist"):
        load_split(tiny_bench, DATASETS["imdb"], "val")


@pytest.mark.parametrize("records, match", [
    ([{"sentence": "ok", "label": "positive"}, {"sentence": "no label"}], r"record 1: missing field 'label'"),
    ([{"text": "x", "label": "positive"}], r"record 0: missing field 'sentence'"),
    ([{"sentence": "x", "label": "great"}], r"record 0: label 'great' is not one of negative, positive"),
    ([{"sentence": 3, "label": "positive"}], r"record 0: field 'sentence' is not a string"),
    (["just a string"], r"record 0: is not a JSON object"),
    ({"sentence": "x"}, r"expected a JSON list"),
    ([], r"no records"),
])
def test_bad_records_name_file_and_record(tmp_path, write_records, records, match):
    path = write_records(tmp_path / "sc/sst2/val.json", records)
    with pytest.raises(SentiEdgeError, match=match) as exc:
        load_split(tmp_path, DATASETS["sst2"], "val")
    assert str(path) in str(exc.value)


def test_bad_fine_grained_records(tmp_path, write_records):
    write_records(tmp_path / "absa/asqp_rest16/val.json", [{"sentence": "x", "quards": [{"aspect": "a"}]}])
    with pytest.raises(SentiEdgeError, match="record 0: an entry of 'quards' lacks"):
        load_split(tmp_path, DATASETS["asqp_rest16"], "val")
    write_records(tmp_path / "multifaced/pstance/val.json", [{"sentence": "x", "label": "FAVOR"}])
    with pytest.raises(SentiEdgeError, match="record 0: missing field 'target'"):
        load_split(tmp_path, DATASETS["pstance"], "val")


def test_invalid_json(tmp_path):
    p = tmp_path / "sc/sst2/val.json"
    p.parent.mkdir(parents=True)
    p.write_text('[{"sentence": "x",')
    with pytest.raises(SentiEdgeError, match="not valid JSON at line 1"):
        load_split(tmp_path, DATASETS["sst2"], "val")


@pytest.mark.sentibench
def test_real_data_loads(sentibench_dir):
    for spec in DATASETS.values():
        for split in ("train", "val"):
            items = load_split(sentibench_dir, spec, split)
            assert items, spec.name
    atsa = load_split(sentibench_dir, DATASETS["atsa_rest16"], "val")
    assert all(t[0] != "NULL" for it in atsa for t in it.gold)


def test_classification_sets_read_the_runtime_task_table(monkeypatch):
    """One source: a dataset's instruction is its runtime task's, and its gold labels are that task's words."""
    from senti_edge.runtime import tasks

    for spec in DATASETS.values():
        task = tasks.get_task(spec.task)
        if spec.generative:
            assert spec.task == "aspects" and instruction(spec) == TUPLE_INSTRUCTIONS[spec.name]
            assert len(spec.keys) == len(spec.fields)
            continue
        assert instruction(spec) == task.instruction and spec.needs_target == task.needs_target
        assert set(spec.labels) <= set(task.labels), spec.name  # the runtime may offer more (stance: none)
    # changing the runtime's table changes the bench's prompt: there is no second copy
    edited = tasks.Task("binary", ("negative", "positive"), "Is this good? {labels}")
    monkeypatch.setitem(tasks.TASKS, "binary", edited)
    assert instruction(DATASETS["sst2"]) == "Is this good? {labels}"


def test_aspects_objects_map_onto_each_tuple_format():
    from senti_edge.bench.datasets import from_aspects

    objs = [{"aspect": "Meal", "category": "food quality", "opinion": "tasty", "polarity": "positive"},
            {"aspect": None, "category": "restaurant general", "opinion": "meh", "polarity": "neutral"}]
    assert from_aspects(DATASETS["atsa_rest16"], objs) == [("Meal", "positive")]  # implicit aspect dropped
    assert from_aspects(DATASETS["acsa_rest16"], objs) == [("food quality", "positive"), ("restaurant general", "neutral")]
    assert from_aspects(DATASETS["asqp_rest16"], objs)[1] == ("restaurant general", "NULL", "meh", "neutral")
    assert from_aspects(DATASETS["opener"], objs)[0] == ("NULL", "Meal", "tasty", "positive")
