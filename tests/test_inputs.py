import io
import sys

import pytest
from click.testing import CliRunner

from senti_edge.cli import cli
from senti_edge.errors import SentiEdgeError
from senti_edge.inputs import MAX_LINE_BYTES, MAX_TEXT_CHARS, read_texts


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


def test_per_file_cap_refuses_every_file_before_the_first_text(tmp_path):
    small, big = tmp_path / "small.txt", tmp_path / "big.txt"
    small.write_text("fine\n")
    big.write_text("x\n" * 600)  # 1,200 bytes
    records = read_texts([str(small), str(big)], max_file_bytes=1000)
    with pytest.raises(SentiEdgeError, match=r"big.txt: 1,200 bytes, over the 1,000 bytes limit per input file; raise it with --max-file-mb"):
        next(records)  # the oversize second file fails before the first file's text comes out
    assert len(texts([str(small), str(big)], max_file_bytes=0)) == 601  # 0: no cap
    assert len(texts([str(big)], max_file_bytes=1200)) == 600  # the cap itself is allowed


def test_per_file_cap_holds_for_stdin_as_it_streams(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"one\n" * 300)))
    recs = read_texts(["-"], max_file_bytes=1000)
    assert next(recs).text == "one"
    with pytest.raises(SentiEdgeError, match=r"<stdin>:251: the input passes the 1,000 bytes limit per input file"):
        list(recs)


@pytest.mark.parametrize("name", ["long.txt", "long.jsonl"])
def test_a_line_over_the_line_limit_is_refused_not_read_whole(tmp_path, name):
    p = tmp_path / name
    with open(p, "wb") as fh:
        fh.write(b"ok\n" if name.endswith(".txt") else b'{"text": "ok"}\n')
        fh.write(b"y" * (MAX_LINE_BYTES + 10))  # a file with no newline after a short first line
    recs = read_texts([str(p)])
    assert next(recs).text == "ok"
    with pytest.raises(SentiEdgeError, match=rf"{name}:2: a line longer than 16 MB"):
        next(recs)


def test_analyze_cap_is_a_one_line_error_before_the_model_loads(tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("a fine review\n" * 100_000)  # 1.4 MB
    res = CliRunner().invoke(cli, ["analyze", str(big), "--max-file-mb", "1", "-m", "/no/such/model.gguf"])
    assert res.exit_code == 1
    assert res.output == (f"Error: {big}: 1.4 MB, over the 1 MB limit per input file; raise it with --max-file-mb "
                          "(0: no limit) or split the input\n")
    res = CliRunner().invoke(cli, ["analyze", str(big), "--max-file-mb", "2", "-m", "/no/such/model.gguf"])
    assert res.exit_code == 1 and "model file not found" in res.output  # under the cap: on to the model
    assert "--max-file-mb" in CliRunner().invoke(cli, ["analyze", "--help"]).output
