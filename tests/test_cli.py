"""The CLI end to end with the real SmolLM2 model (skipped with a reason when absent)."""

import csv
import io
import json

import pytest
from click.testing import CliRunner

from senti_edge.cli import cli


@pytest.fixture
def run(smollm2_path):
    def _run(*args, input=None):
        return CliRunner().invoke(cli, ["analyze", "-m", str(smollm2_path), "--threads", "2", *args], input=input)
    return _run


@pytest.fixture
def reviews(tmp_path):
    p = tmp_path / "reviews.txt"
    p.write_text("I love it.\n\nBroke after a day.\nIt is a chair.\n")
    return p


def test_help_lists_commands_and_examples():
    res = CliRunner().invoke(cli, ["--help"])
    assert res.exit_code == 0 and "analyze" in res.output and "models" in res.output
    res = CliRunner().invoke(cli, ["analyze", "-h"])
    assert "Examples:" in res.output


def test_jsonl_rows_keep_line_numbers(run, reviews):
    res = run(str(reviews), "-o", "jsonl", "--probs")
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in res.stdout.splitlines()]
    assert [r["line"] for r in rows] == [1, 3, 4]
    for r in rows:
        assert r["label"] in ("negative", "neutral", "positive")
        assert abs(sum(r["probs"].values()) - 1) < 1e-6
        assert r["confidence"] == max(r["probs"].values())
    assert "3 texts in" in res.stderr


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_output_formats(run, reviews, fmt):
    res = run(str(reviews), "-o", fmt)
    assert res.exit_code == 0, res.output
    if fmt == "json":
        assert len(json.loads(res.stdout)) == 3
    elif fmt == "csv":
        assert len(list(csv.DictReader(io.StringIO(res.stdout)))) == 3
    else:
        assert res.stdout.splitlines()[0].startswith("id")


def test_explain_adds_the_models_analysis_beside_the_label(run, reviews):
    plain = [json.loads(x) for x in run(str(reviews), "-o", "jsonl").stdout.splitlines()]
    res = run(str(reviews), "-o", "jsonl", "--explain")
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in res.stdout.splitlines()]
    assert [r["label"] for r in rows] == [r["label"] for r in plain]  # the label still comes from the scores
    assert all(isinstance(r["explanation"], str) and r["explanation"] and "\n" not in r["explanation"] for r in rows)
    assert not any("Overall sentiment" in r["explanation"] for r in rows)
    table = run(str(reviews), "-o", "table", "--explain").stdout.splitlines()
    assert len(table) == 1 + 2 * 3 and table[2].lstrip().startswith("->")
    lines = list(csv.DictReader(io.StringIO(run(str(reviews), "-o", "csv", "--explain").stdout)))
    assert all(r["explanation"] for r in lines)


def test_stdin_jsonl_csv_and_document_inputs(run, tmp_path):
    assert run("-", input="great\nawful\n").stdout.count("\n") == 2
    j = tmp_path / "t.jsonl"
    j.write_text('{"body": "nice"}\n{"body": "bad"}\n')
    assert run(str(j), "--field", "body").exit_code == 0
    c = tmp_path / "t.csv"
    c.write_text("body\nnice\n")
    assert json.loads(run(str(c), "--field", "body").stdout)["text"] == "nice"
    res = run(str(c), "--document")
    assert res.exit_code == 0 and len(res.stdout.splitlines()) == 1


def test_tasks_custom_labels_and_stance(run, reviews):
    res = run(str(reviews), "-t", "emotion")
    assert {json.loads(x)["label"] for x in res.stdout.splitlines()} <= {"anger", "joy", "sadness", "optimism"}
    res = run(str(reviews), "--labels", "furniture,electronics")
    assert {json.loads(x)["label"] for x in res.stdout.splitlines()} <= {"furniture", "electronics"}
    assert run(str(reviews), "-t", "stance").exit_code == 1
    assert run(str(reviews), "-t", "stance", "--target", "chairs").exit_code == 0


def test_shots_file(run, reviews, tmp_path):
    shots = tmp_path / "shots.jsonl"
    shots.write_text('{"text": "Wonderful!", "label": "positive"}\n{"text": "Dreadful.", "label": "negative"}\n')
    assert run(str(reviews), "--shots", str(shots), "-t", "binary").exit_code == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x", "label": "great"}\n')
    res = run(str(reviews), "--shots", str(bad), "-t", "binary")
    assert res.exit_code == 1 and "not one of" in res.output


def test_aspects_output_parses(run, tmp_path):
    p = tmp_path / "r.txt"
    p.write_text("The pasta was great but the waiter was rude.\n")
    res = run(str(p), "-t", "aspects")
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)
    assert isinstance(row["aspects"], list)


def test_output_file_is_written_atomically(run, reviews, tmp_path):
    out = tmp_path / "out.jsonl"
    res = run(str(reviews), "--output", str(out))
    assert res.exit_code == 0 and res.stdout == ""
    assert len(out.read_text().splitlines()) == 3
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("args,code,message", [
    (["missing.txt"], 1, "file not found"),
    (["--task", "nope", "x"], 2, "Invalid value"),
    (["-m", "/no/such/model.gguf", "{reviews}"], 1, "model file not found"),
])
def test_bad_input_one_line_no_traceback(run, reviews, args, code, message):
    res = run(*[a.format(reviews=reviews) for a in args])
    assert res.exit_code == code
    assert message in res.output
    assert "Traceback" not in res.output


def test_empty_input_and_bad_field(run, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    res = run(str(empty))
    assert res.exit_code == 1 and "no texts" in res.output
    j = tmp_path / "t.jsonl"
    j.write_text('{"body": "x"}\n')
    res = run(str(j), "--field", "text")
    assert res.exit_code == 1 and "no field 'text'" in res.output


def test_models_list():
    res = CliRunner().invoke(cli, ["models", "list"])
    assert res.exit_code == 0
    assert "smollm2-135m" in res.output and "qwen2.5-coder-1.5b" in res.output


def test_the_default_model_is_the_distilled_adapter_on_the_pypi_base(smollm2_path):
    from senti_edge.runtime.analyzer import Analyzer
    from senti_edge.runtime.registry import resolve

    ref = resolve(None)
    assert ref.name == "senti-smollm2-135m" and ref.path == smollm2_path and ref.adapter.parent.name == "adapters"
    texts = ["The soup was cold and the waiter rude.", "Best concert of my life!", "It is a chair."]
    distilled = Analyzer(n_threads=2)
    base = Analyzer(model="smollm2-135m", n_threads=2)
    try:
        assert distilled.engine.ref.adapter is not None and base.engine.ref.adapter is None
        a, b = distilled.label_logits(texts), base.label_logits(texts)
        assert abs(a - b).max() > 0.5  # the adapter is applied, not just named
        assert [r["label"] for r in distilled.classify(texts)][:2] == ["negative", "positive"]
    finally:
        distilled.close()
        base.close()
