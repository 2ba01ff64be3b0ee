import json

import pytest

from senti_edge.errors import SentiEdgeError
from senti_edge.jsonl import JsonlAppender, atomic_open, read_jsonl, write_json


def test_atomic_open_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(path) as fh:
            fh.write("half")
            raise RuntimeError("crash")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_write_json_sorted_and_indented(tmp_path):
    write_json(tmp_path / "c.json", {"b": 1, "a": 2})
    assert (tmp_path / "c.json").read_text().startswith('{\n  "a": 2')


def test_appender_resumes_and_drops_a_torn_tail(tmp_path):
    path = tmp_path / "gen.jsonl"
    with JsonlAppender(path) as out:
        out.append({"id": "a", "x": 1})
        out.append({"id": "b", "x": 2})
    with open(path, "a") as fh:
        fh.write('{"id": "c", "x"')  # killed mid-write
    assert [r["id"] for r in read_jsonl(path)] == ["a", "b"]
    with JsonlAppender(path) as out:
        assert out.done == {"a", "b"}
        out.append({"id": "c", "x": 3})
        with pytest.raises(ValueError, match="duplicate"):
            out.append({"id": "a"})
    assert [json.loads(x)["id"] for x in path.read_text().splitlines()] == ["a", "b", "c"]


def test_read_jsonl_reports_a_bad_middle_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": 1}\nnot json\n{"id": 2}\n')
    with pytest.raises(SentiEdgeError, match=r"bad.jsonl:2"):
        read_jsonl(path)


def test_atomic_files_get_the_usual_permissions(tmp_path):
    import os
    import stat
    mask = os.umask(0o022)
    try:
        write_json(tmp_path / "c.json", {})
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "c.json").stat().st_mode) == 0o644
