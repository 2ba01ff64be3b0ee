import io
import sys

import pytest

from senti_edge.errors import SentiEdgeError
from senti_edge.inputs import MAX_TEXT_CHARS, read_texts


def texts(*args, **kw):
    return [(r.line, r.text) for r in read_texts(*args, **kw)]


def test_plain_text_skips_blank_lines_but_keeps_line_numbers(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(b"\xef\xbb\xbffirst\n\n  \nsecond\r\nthird")
    assert texts([str(p)]) == [(1, "first"), (4, "second"), (5, "third")]


def test_document_mode_reads_each_file_whole(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("line one\nline two\n")
    b.write_text("other")
    assert texts([str(a), str(b)], document=True) == [(1, "line one\nline two"), (1, "other")]


def test_jsonl_and_csv_take_a_field(tmp_path):
    j = tmp_path / "in.jsonl"
    j.write_text('{"body": "hello", "who": "x"}\n\n{"body": "bye", "who": "y"}\n')
    assert texts([str(j)], field="body") == [(1, "hello"), (3, "bye")]
    c = tmp_path / "in.csv"
    c.write_text('id,body\n1,"quoted, with comma"\n2,"multi\nline"\n')
    assert [t for _, t in texts([str(c)], field="body")] == ["quoted, with comma", "multi\nline"]


def test_stance_target_field(tmp_path):
    j = tmp_path / "in.jsonl"
    j.write_text('{"text": "we must act", "t": "climate"}\n')
    rec = next(read_texts([str(j)], target_field="t"))
    assert rec.target == "climate"


@pytest.mark.parametrize("content,match", [
    ('{"body": "x"}\n', "no field 'text'"),
    ("[1, 2]\n", "expected a JSON object"),
    ('{"text": \n', "not valid JSON"),
])
def test_jsonl_errors_name_the_line(tmp_path, content, match):
    p = tmp_path / "in.jsonl"
    p.write_text(content)
    with pytest.raises(SentiEdgeError, match=match):
        list(read_texts([str(p)]))


def test_csv_unknown_field_lists_the_columns(tmp_path):
    p = tmp_path / "in.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(SentiEdgeError, match=r"fields: a, b"):
        list(read_texts([str(p)], field="text"))


def test_missing_directory_binary_and_bad_utf8(tmp_path):
    with pytest.raises(SentiEdgeError, match="file not found"):
        list(read_texts([str(tmp_path / "nope.txt")]))
    with pytest.raises(SentiEdgeError, match="is a directory"):
        list(read_texts([str(tmp_path)]))
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"\x00\x01\x02garbage")
    with pytest.raises(SentiEdgeError, match="binary"):
        list(read_texts([str(binary)]))
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\nbro\xffken\n")
    with pytest.raises(SentiEdgeError, match=r"bad.txt:2: invalid UTF-8.*--errors replace"):
        list(read_texts([str(bad)]))
    assert texts([str(bad)], errors="replace") == [(1, "fine"), (2, "bro\ufffdken")]


def test_field_on_plain_text_is_refused(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("x\n")
    with pytest.raises(SentiEdgeError, match="--field"):
        list(read_texts([str(p)], field="text"))


def test_stdin(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"one\ntwo\n")))
    recs = list(read_texts(["-"]))
    assert [(r.id, r.text) for r in recs] == [("<stdin>:1", "one"), ("<stdin>:2", "two")]


def test_very_long_lines_are_clipped_and_flagged(tmp_path):
    p = tmp_path / "long.txt"
    p.write_text("x" * (MAX_TEXT_CHARS + 10) + "\nshort\n")
    recs = list(read_texts([str(p)]))
    assert len(recs[0].text) == MAX_TEXT_CHARS and recs[0].clipped
    assert not recs[1].clipped
