"""Property-based tests: no input file or model output may raise anything but SentiEdgeError."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from senti_edge.errors import SentiEdgeError
from senti_edge.inputs import read_texts
from senti_edge.jsonl import read_jsonl
from senti_edge.runtime.prompts import parse_aspects

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(data=st.binary(max_size=2000), suffix=st.sampled_from([".txt", ".jsonl", ".csv", ".tsv"]),
       errors=st.sampled_from(["strict", "replace"]), document=st.booleans())
def test_any_bytes_in_any_format(tmp_path_factory, data, suffix, errors, document):
    path = tmp_path_factory.mktemp("fuzz") / f"input{suffix}"
    path.write_bytes(data)
    try:
        for rec in read_texts([str(path)], errors=errors, document=document):
            assert isinstance(rec.text, str) and rec.line >= 1
    except SentiEdgeError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(rows=st.lists(json_values, max_size=6), field=st.sampled_from(["text", "body", ""]))
def test_any_json_lines(tmp_path_factory, rows, field):
    path = tmp_path_factory.mktemp("fuzz") / "in.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    try:
        for rec in read_texts([str(path)], field=field or None):
            assert isinstance(rec.text, str)
    except SentiEdgeError:
        pass


@FUZZ
@given(text=st.text(max_size=400) | json_values.map(json.dumps))
def test_any_generation_parses_or_is_none(text):
    out = parse_aspects(text)
    assert out is None or all(set(t) == {"aspect", "category", "opinion", "polarity"} for t in out)


@FUZZ
@given(data=st.binary(max_size=1000))
def test_any_bytes_as_a_results_file(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "r.jsonl"
    path.write_bytes(data)
    try:
        assert isinstance(read_jsonl(path), list)
    except SentiEdgeError:
        pass
