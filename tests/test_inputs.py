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


# --- issue 16: nothing dropped or changed silently --------------------------------------------

from senti_edge.inputs import Tally  # noqa: E402


def test_skipped_and_converted_records_are_counted_by_reason(tmp_path):
    c = tmp_path / "in.csv"
    c.write_text("id,text,who\n1,hello,x\n2\n3,,y\n4,fine,z,extra\n")
    tally = Tally()
    recs = list(read_texts([str(c)], tally=tally))
    assert [(r.line, r.text, r.fields) for r in recs] == [(2, "hello", {"id": "1", "who": "x"}),
                                                           (5, "fine", {"id": "4", "who": "z"})]
    assert tally.skipped == {"no 'text' field": 1, "empty or null text": 1}
    j = tmp_path / "in.jsonl"
    j.write_text('{"text": "ok"}\n{"text": null}\n{"text": ""}\n{"text": 42}\n{"text": ["a", "b"]}\n{"other": 1}\n')
    tally = Tally()
    assert texts([str(j)], tally=tally) == [(1, "ok"), (4, "42"), (5, '["a", "b"]')]
    assert tally.summary() == ("skipped 3 rows (2 empty or null text, 1 no 'text' field); "
                               "1 number(s) read as text; 1 list/object value(s) read as JSON text")


@pytest.mark.parametrize("content,match", [
    ('{"text": "ok"}\n{"text": null}\n', r"in.jsonl:2: empty or null text; fix the input or drop --strict"),
    ('{"text": "ok"}\n{"text": 3}\n', r"in.jsonl:2: number\(s\) read as text"),
    ('{"text": "ok"}\n{"body": "x"}\n', r"in.jsonl:2: no 'text' field"),
])
def test_strict_turns_the_first_skip_or_conversion_into_an_error(tmp_path, content, match):
    p = tmp_path / "in.jsonl"
    p.write_text(content)
    with pytest.raises(SentiEdgeError, match=match):
        list(read_texts([str(p)], tally=Tally(strict=True)))


def test_json_array_of_objects_reads_like_jsonl_with_line_numbers(tmp_path):
    p = tmp_path / "in.json"
    p.write_text('[\n  {"text": "one", "id": 7},\n\n  {"text": "two"}, {"text": "three"}\n]\n')
    recs = list(read_texts([str(p)]))
    assert [(r.line, r.text, r.fields) for r in recs] == [(2, "one", {"id": 7}), (4, "two", {}), (4, "three", {})]
    p.write_text('{"text": "a"}\n{"text": "b"}\n')  # JSON lines named .json
    assert texts([str(p)]) == [(1, "a"), (2, "b")]
    p.write_text('{"text": "solo"}')
    assert texts([str(p)]) == [(1, "solo")]
    p.write_text('[{"text": "a"} {"text": "b"}]')
    with pytest.raises(SentiEdgeError, match=r"in.json:1: not valid JSON \(expected , or \]\)"):
        list(read_texts([str(p)]))
    p.write_text('"just a string"')
    with pytest.raises(SentiEdgeError, match="expected a JSON array of objects"):
        list(read_texts([str(p)]))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-32-be"])
def test_utf16_and_utf32_with_a_byte_order_mark_are_decoded(tmp_path, encoding):
    import codecs

    bom = {"utf-16": b"", "utf-32": b"", "utf-16-be": codecs.BOM_UTF16_BE, "utf-32-be": codecs.BOM_UTF32_BE}[encoding]
    p = tmp_path / "in.txt"
    p.write_bytes(bom + "héllo wörld\n\nzweite ✓ Zeile\n".encode(encoding))
    assert texts([str(p)]) == [(1, "héllo wörld"), (3, "zweite ✓ Zeile")]
    c = tmp_path / "in.csv"
    c.write_bytes(bom + "id,body\n1,grüß\n".encode(encoding))
    assert texts([str(c)], field="body") == [(2, "grüß")]
    assert texts([str(p)], document=True) == [(1, "héllo wörld\n\nzweite ✓ Zeile")]


def test_document_mode_honours_field_on_records(tmp_path):
    c = tmp_path / "in.csv"
    c.write_text("id,body\n1,first part\n2,second part\n")
    assert texts([str(c)], document=True, field="body") == [(1, "first part\nsecond part")]
    j = tmp_path / "in.jsonl"
    j.write_text('{"t": "a"}\n{"t": "b"}\n')
    assert texts([str(j)], document=True, field="t") == [(1, "a\nb")]
    with pytest.raises(SentiEdgeError, match="no field 'text'"):
        list(read_texts([str(c)], document=True))


def test_a_20000_word_document_is_read_to_the_end(tmp_path):
    words = [f"w{i}" for i in range(20_000)]
    p = tmp_path / "speech.txt"
    p.write_text("\n".join(" ".join(words[i:i + 12]) for i in range(0, len(words), 12)) + "\n")
    (rec,) = read_texts([str(p)], document=True)
    assert len(rec.text) > MAX_TEXT_CHARS and rec.text.endswith("w19999") and not rec.clipped
    assert rec.text.split() == words


def test_chunker_covers_a_20000_word_document(tmp_path, smollm2_path):
    """The chunks --chunk scores cover the whole document (checked without scoring them)."""
    from senti_edge.runtime.analyzer import Analyzer

    words = " ".join(f"word{i}" for i in range(20_000))
    with Analyzer(model=str(smollm2_path), n_threads=1, n_ctx=2048, calibrate=False, chunk=True) as az:
        chunks = az._chunks(words)
        budget = az._chunk_budget
        assert len(chunks) >= len(az.engine.tokenize(words)) // budget
        assert all(len(az.engine.tokenize(c)) <= budget + 2 for c in chunks)
    assert "".join(chunks).split() == words.split()


def test_strict_and_summary_through_the_cli_before_the_model_loads(tmp_path):
    p = tmp_path / "in.jsonl"
    p.write_text('{"text": ""}\n{"text": "fine"}\n')
    res = CliRunner().invoke(cli, ["analyze", str(p), "--strict", "-m", "/no/such/model.gguf"])
    assert res.exit_code == 1 and res.output == (f"Error: {p}:1: empty or null text; fix the input or drop --strict "
                                                  "to skip or convert such rows\n")
    res = CliRunner().invoke(cli, ["analyze", str(p), "-m", "/no/such/model.gguf"])
    assert res.exit_code == 1 and "model file not found" in res.output  # without --strict: skipped, on to the model
    p.write_text('{"text": null}\n')
    res = CliRunner().invoke(cli, ["analyze", str(p), "-m", "/no/such/model.gguf"])
    assert res.output == f"Error: no texts in {p} (input is empty or blank; skipped 1 row (1 empty or null text))\n"


def test_bad_shots_file_is_one_error_line(tmp_path):
    reviews = tmp_path / "r.txt"
    reviews.write_text("great\n")
    for name, content, match in [("s.jsonl", '{"text": "x", "label": "positive"}\n{oops\n', "s.jsonl:2: not valid JSON"),
                                 ("s.json", "[1, 2", "s.json:1: not valid JSON"),
                                 ("t.json", "7", "needs `text`"),
                                 ("u.jsonl", '["x", "positive"]\n', "u.jsonl:1: a demonstration needs")]:
        shots = tmp_path / name
        shots.write_text(content)
        res = CliRunner().invoke(cli, ["analyze", str(reviews), "--shots", str(shots), "-m", "/no/such/model.gguf"])
        assert res.exit_code == 1 and res.output.startswith("Error: ") and match in res.output, res.output
        assert "Traceback" not in res.output and res.output.count("\n") == 1


def test_any_bytes_as_json_or_with_a_wide_byte_order_mark(tmp_path_factory):
    """The new readers (.json, UTF-16/32) raise nothing but a one-line SentiEdgeError."""
    import codecs

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(data=st.binary(max_size=600), bom=st.sampled_from([b"", codecs.BOM_UTF16_LE, codecs.BOM_UTF32_BE]),
           suffix=st.sampled_from([".json", ".txt", ".csv"]), document=st.booleans(),
           errors=st.sampled_from(["strict", "replace"]))
    def check(data, bom, suffix, document, errors):
        path = tmp_path_factory.mktemp("fuzz") / f"in{suffix}"
        path.write_bytes(bom + data)
        try:
            for rec in read_texts([str(path)], document=document, errors=errors):
                assert isinstance(rec.text, str) and rec.line >= 1
        except SentiEdgeError as exc:
            assert "\n" not in str(exc)

    check()


def test_rows_with_missing_text_are_counted_in_the_summary_line(tmp_path, smollm2_path):
    c = tmp_path / "in.csv"
    c.write_text("id,text\n1,lovely\n2\n3,\n4,awful\n")  # row 2 lacks its text cell, row 3 has an empty one
    j = tmp_path / "in.jsonl"
    j.write_text('{"text": "fine"}\n{"text": null}\n{"text": 7}\n')
    res = CliRunner().invoke(cli, ["analyze", str(c), str(j), "-m", str(smollm2_path), "--threads", "1", "-o", "jsonl"])
    assert res.exit_code == 0, res.output
    assert [r.split('"line": ')[1].split(",")[0] for r in res.stdout.splitlines()] == ["2", "5", "1", "3"]
    summary = res.stderr.strip().splitlines()[-1]
    assert summary.startswith("4 texts in ")
    assert summary.endswith("; skipped 3 rows (2 empty or null text, 1 no 'text' field); 1 number(s) read as text")
