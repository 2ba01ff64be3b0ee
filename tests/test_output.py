"""Output a user can trust: formula-safe CSV, a table that escapes control codes, formats from the
--output extension, no overwritten inputs, rows streamed as batches finish, input fields kept."""

import csv
import io
import json
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from senti_edge.cli import cli
from senti_edge.output import RowWriter, csv_cell, format_for, printable

NO_MODEL = ["-m", "/no/such/model.gguf"]  # checks that must fail before any model loads


@pytest.fixture
def run(smollm2_path):
    def _run(*args, input=None):
        return CliRunner().invoke(cli, ["analyze", "-m", str(smollm2_path), "--threads", "1", *args], input=input)
    return _run


@pytest.mark.parametrize("value,cell", [
    ("=1+2", "'=1+2"), ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"), ("-x", "'-x"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"), ("-5", "-5"), ("+1.5e3", "+1.5e3"), ("fine", "fine"), (0.25, 0.25), (None, ""),
    ([1, "=x"], '[1, "=x"]'),
])
def test_csv_cell_neutralises_formulas_but_not_numbers(value, cell):
    assert csv_cell(value) == cell


def test_printable_escapes_control_and_bidi_characters():
    assert printable("a\x1b[2Jb\x07\u202ec\n d") == "a\\x1b[2Jb\\x07\\u202ec d"


@pytest.mark.parametrize("output,fmt,tty,expected", [
    ("x.csv", None, False, "csv"), ("x.JSON", None, True, "json"), ("x.ndjson", None, False, "jsonl"),
    ("x.txt", None, False, "table"), ("x.out", None, True, "jsonl"), ("x.csv", "jsonl", False, "jsonl"),
    (None, None, True, "table"), (None, None, False, "jsonl"),
])
def test_format_follows_the_output_extension_unless_given(output, fmt, tty, expected):
    assert format_for(output, fmt, tty) == expected


def test_csv_rows_missing_or_adding_fields():
    buf = io.StringIO()
    writer = RowWriter(buf, "csv")
    writer.write_batch([{"id": "a", "label": "x", "who": "=me"}, {"id": "b", "label": "y", "new": 1}])
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert rows == [{"id": "a", "label": "x", "who": "'=me"}, {"id": "b", "label": "y", "who": ""}]
    assert writer.unknown == {"new"}


def test_output_equal_to_an_input_is_refused_before_the_model_loads(tmp_path):
    p = tmp_path / "reviews.txt"
    p.write_text("great\n")
    for out in (str(p), str(tmp_path / "." / "reviews.txt")):
        res = CliRunner().invoke(cli, ["analyze", str(p), "--output", out, *NO_MODEL])
        assert res.exit_code == 1 and res.output.startswith(f"Error: --output {out} is the input file"), res.output
    assert p.read_text() == "great\n"


def test_output_into_a_missing_directory_is_refused(tmp_path):
    p = tmp_path / "reviews.txt"
    p.write_text("great\n")
    res = CliRunner().invoke(cli, ["analyze", str(p), "--output", str(tmp_path / "nope" / "out.csv"), *NO_MODEL])
    assert res.exit_code == 1 and "does not exist; create it first" in res.output
    assert not (tmp_path / "nope").exists()


def test_help_documents_csv_guard_columns_and_exit_codes():
    out = CliRunner().invoke(cli, ["analyze", "--help"]).output
    assert "leading '" in out and "Output columns:" in out and "Exit codes: 0" in out and "143" in out
    assert "Exit codes: 0" in CliRunner().invoke(cli, ["--help"]).output


def test_csv_output_neutralises_formula_cells(run, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text('id,text,note\n1,=HYPERLINK("http://x"),+1\n2,+cmd|calc,ok\n3,-dangerous,-7\n4,@SUM(A1),"=2*3"\n')
    out = tmp_path / "labels.csv"  # CSV because of the extension, no -o needed
    res = run(str(src), "--output", str(out), "--probs")
    assert res.exit_code == 0, res.output
    rows = list(csv.reader(io.StringIO(out.read_text())))
    header, body = rows[0], rows[1:]
    assert header[:6] == ["id", "source", "line", "text", "label", "confidence"] and "input_id" in header
    assert [r[3] for r in body] == ["'=HYPERLINK(\"http://x\")", "'+cmd|calc", "'-dangerous", "'@SUM(A1)"]
    note = header.index("note")
    assert [r[note] for r in body] == ["+1", "ok", "-7", "'=2*3"]  # plain numbers stay numbers
    for r in body:
        assert not any(c and c[0] in "=+-@" and not c.lstrip("+-").replace(".", "").isdigit() for c in r), r


def test_table_escapes_terminal_control_codes(run, tmp_path):
    src = tmp_path / "evil.txt"
    src.write_text("\x1b]0;pwned\x07\x1b[2J\x1b[Hlovely phone\x9b31m\n")
    res = run(str(src), "-o", "table")
    assert res.exit_code == 0, res.output
    assert not any(ch in res.stdout for ch in "\x1b\x07\x9b")
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\x1b[Hlovely phone\\x9b31m" in res.stdout


def test_table_probs_headers_show_whole_label_names(run, tmp_path):
    src = tmp_path / "t.txt"
    src.write_text("I am so happy today\n")
    head = run(str(src), "-o", "table", "--probs", "-t", "emotion").stdout.splitlines()[0]
    assert head.split()[3:7] == ["anger", "joy", "sadness", "optimism"]


def test_input_fields_are_kept_and_text_can_be_left_out(run, tmp_path):
    src = tmp_path / "posts.jsonl"
    src.write_text('{"id": "p1", "body": "Love it", "author": "ann", "stars": 5}\n'
                   '{"id": "p2", "body": "Hate it", "author": "bob", "stars": 1}\n')
    rows = [json.loads(x) for x in run(str(src), "--field", "body").stdout.splitlines()]
    assert [(r["input_id"], r["author"], r["stars"], r["text"]) for r in rows] == [("p1", "ann", 5, "Love it"),
                                                                                     ("p2", "bob", 1, "Hate it")]
    assert rows[0]["id"] == f"{src}:1" and "body" not in rows[0]
    rows = [json.loads(x) for x in run(str(src), "--field", "body", "--keep-fields", "author", "--no-text").stdout.splitlines()]
    assert set(rows[0]) == {"id", "source", "line", "label", "confidence", "author"}
    res = run(str(src), "--field", "body", "--keep-fields", "author,autor")
    assert "warning: --keep-fields autor: no input record has such a field" in res.stderr
    rows = [json.loads(x) for x in run(str(src), "--field", "body", "--keep-fields", "none").stdout.splitlines()]
    assert set(rows[0]) == {"id", "source", "line", "text", "label", "confidence"}


def test_rows_reach_a_pipe_while_the_run_goes_on(smollm2_path, tmp_path):
    src = tmp_path / "many.txt"
    src.write_text("".join(f"review {i}: fine, I guess\n" for i in range(150)))  # batches of 8, 64, 64, 14
    proc = subprocess.Popen([sys.executable, "-m", "senti_edge", "analyze", str(src), "-m", str(smollm2_path),
                             "--threads", "1", "-q", "-o", "jsonl"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        t0 = time.perf_counter()
        first = proc.stdout.readline()
        t_first = time.perf_counter() - t0
        still_running = proc.poll() is None
        # Read on through the same buffered reader: communicate() reads the raw pipe and would
        # lose the rest of the first batch, which readline() already pulled into the buffer.
        rest = proc.stdout.read()
        err = proc.stderr.read()
        proc.wait(timeout=300)
        total = time.perf_counter() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert json.loads(first)["line"] == 1 and len(rest.splitlines()) == 149
    assert still_running and t_first < total / 2, (t_first, total)
