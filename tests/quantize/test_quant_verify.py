"""Probe loading and the comparison maths: no model needed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from senti_edge.errors import SentiEdgeError
from senti_edge.quantize.verify import PROBES, compare, label_counts, load_probes


def test_compare_identical_and_different():
    ref = np.array([[1.0, 2.0, 0.0], [3.0, 0.0, 0.0]])
    same = compare(ref, ref + 5.0)  # a constant shift changes no probability
    assert same.agreement == 1.0 and same.mean_kl == pytest.approx(0.0, abs=1e-12) and same.max_logit_diff == 5.0
    flipped = compare(ref, ref[:, ::-1])
    assert flipped.agreement == 0.5 and flipped.mean_kl > 0.1


def test_kl_matches_the_definition():
    ref, other = np.array([[0.0, 1.0]]), np.array([[0.5, 0.0]])
    p = np.exp(ref[0]) / np.exp(ref[0]).sum()
    q = np.exp(other[0]) / np.exp(other[0]).sum()
    assert compare(ref, other).mean_kl == pytest.approx(float((p * np.log(p / q)).sum()))


def test_label_counts():
    assert label_counts(np.array([[0, 1.0], [2, 1], [0, 3]]), ["a", "b"]) == {"a": 1, "b": 2}


def test_probes_builtin_file_and_jsonl(tmp_path):
    assert load_probes(None, 10) == list(PROBES[:10]) and len(set(PROBES)) == len(PROBES) >= 64
    txt = tmp_path / "p.txt"
    txt.write_text("one\n\ntwo\nthree\nfour\nfive\n")
    assert load_probes(str(txt), 4) == ["one", "two", "three", "four"]
    jl = tmp_path / "p.jsonl"
    jl.write_text("".join(json.dumps({"text": f"t{i}"}) + "\n" for i in range(5)))
    assert load_probes(str(jl), 64) == [f"t{i}" for i in range(5)]
    jl.write_text('{"text": "a"}\n{"label": "x"}\n')
    with pytest.raises(SentiEdgeError, match=r"p.jsonl:2: expected a JSON object"):
        load_probes(str(jl), 64)
    txt.write_text("just one\n")
    with pytest.raises(SentiEdgeError, match="has 1 texts"):
        load_probes(str(txt), 64)
