"""The CLI end to end with the real SmolLM2 model (skipped with a reason when absent)."""

import csv
import importlib
import io
import json
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from senti_edge.cli import cli
from senti_edge.clitools import EXTRAS, friendly_errors


@pytest.fixture
def run(smollm2_path):
    def _run(*args, input=None):
        return CliRunner().invoke(cli, ["analyze", "-m", str(smollm2_path), "--threads", "1", *args], input=input)
    return _run


@pytest.fixture
def reviews(tmp_path):
    p = tmp_path / "reviews.txt"
    p.write_text("I love it.\n\nBroke after a day.\nIt is a chair.\n")
    return p


def test_every_part_adds_its_commands():
    """The parts' cli modules are imported plainly: a missing one fails at once instead of hiding its commands."""
    assert sorted(cli.commands) == ["analyze", "bench", "compare", "distill", "doctor", "models", "quantize", "tasks"]


def test_a_missing_optional_stack_is_one_error_line_naming_its_extra(tmp_path, monkeypatch):
    data = tmp_path / "sentibench"
    rows = [{"sentence": f"text {i}", "label": lab} for i, lab in enumerate(["positive", "negative"] * 3)]
    for split in ("train", "val"):
        (data / "sc" / "sst2").mkdir(parents=True, exist_ok=True)
        (data / "sc" / "sst2" / f"{split}.json").write_text(json.dumps(rows))
    for name in ["sklearn"] + [m for m in list(sys.modules) if m.startswith("sklearn.")]:
        monkeypatch.setitem(sys.modules, name, None)  # the bench extra not installed (submodules other tests loaded too)
    res = CliRunner().invoke(cli, ["bench", "-b", "majority", "--data-dir", str(data), "-d", "sst2", "--robust-n", "0",
                                   "--out", str(tmp_path / "out"), "--no-progress"])
    assert res.exit_code == 1 and res.output == "Error: scikit-learn is not installed; pip install 'senti-edge[bench]'\n"


def test_any_other_missing_module_is_a_bug_and_keeps_its_traceback():
    with pytest.raises(ModuleNotFoundError, match="senti_edge.not_written"):
        friendly_errors(importlib.import_module)("senti_edge.not_written")


def test_the_extras_named_in_errors_are_pyprojects():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    extras = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for module, (dist, extra) in EXTRAS.items():
        assert dist.lower() in {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in extras[extra]}, (module, extra)


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
    # the explanation gives reasons for the row's own label: it opens by stating it
    assert all(r["explanation"].startswith(f"The sentiment is {r['label']} because") for r in rows), rows
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
    res = run(str(c), "--document", "--field", "body")
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


def test_aspects_output_has_the_grammar_shape(tmp_path):
    """The default model's tuples (the base SmolLM2 answers an empty list, which would check nothing)."""
    from senti_edge.runtime.fetch import is_present
    from senti_edge.runtime.registry import DEFAULT_MODEL, get_entry

    if not is_present(get_entry(DEFAULT_MODEL)):
        pytest.skip(f"{DEFAULT_MODEL} is not built here; run `senti-edge models pull`")
    p = tmp_path / "r.txt"
    p.write_text("The pasta was great but the waiter was rude.\n")
    res = CliRunner().invoke(cli, ["analyze", str(p), "-t", "aspects", "--threads", "1", "-o", "jsonl"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)
    assert row["text"] == "The pasta was great but the waiter was rude." and row["complete"] is True
    assert row["aspects"], row
    for op in row["aspects"]:  # the grammar's shape: these four keys in order, a closed polarity set
        assert list(op) == ["aspect", "category", "opinion", "polarity"], op
        assert op["polarity"] in ("negative", "neutral", "positive")
        assert op["aspect"] is None or op["aspect"] in row["text"]  # the text's own words
        assert op["opinion"] in row["text"] and 1 <= len(op["category"]) <= 60
    assert len({json.dumps(op) for op in row["aspects"]}) == len(row["aspects"])  # no tuple twice
    n = len(row["aspects"])
    assert "1 text in" in res.stderr and f": 1 with {n} tuple{'s' * (n != 1)}" in res.stderr


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


def test_the_default_model_is_the_distilled_adapter_merged_into_the_pypi_base(smollm2_path):
    """The default is the merged build; it agrees with the same adapter applied at load time
    (the -lora form) and differs from the bare base."""
    from senti_edge.runtime.analyzer import Analyzer
    from senti_edge.runtime.fetch import resolve

    ref = resolve(None)
    assert ref.name == "senti-smollm2-135m" and ref.adapter is None and ref.path.name == "senti-smollm2-135m.Q8_0.gguf"
    texts = ["The soup was cold and the waiter rude.", "Best concert of my life!", "It is a chair."]
    with Analyzer(n_threads=1) as merged, Analyzer(model="senti-smollm2-135m-lora", n_threads=1) as lora, \
            Analyzer(model="smollm2-135m", n_threads=1) as base:
        assert lora.engine.ref.adapter is not None and lora.engine.ref.path.resolve() == smollm2_path.resolve()
        m, a, b = merged.label_logits(texts), lora.label_logits(texts), base.label_logits(texts)
        assert abs(a - b).max() > 0.5  # the adapter is applied, not just named
        assert abs(m - a).max() < abs(a - b).max() / 2 and (m.argmax(1) == a.argmax(1)).all()
        assert [r["label"] for r in merged.classify(texts)][:2] == ["negative", "positive"]


# --- issue 16: tasks that say what they do -------------------------------------------------------

NOTES = ["URGENT: the server room is flooding, come now", "Team lunch is on Thursday as usual",
         "WIN a FREE iPhone!!! Click here to claim your prize", "Please sign the timesheet by Friday"]


@pytest.fixture
def notes(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("\n".join(NOTES) + "\n")
    return p


def test_label_order_does_not_change_the_answer(run, notes):
    """The old prompt listed labels in the order given; with the same model, urgent,routine,spam and
    spam,urgent,routine gave different labels (measured: 31 of 70 labels flipped across the six orders on 14 texts)."""
    results = []
    for order in ("urgent,routine,spam", "spam,urgent,routine"):
        res = run(str(notes), "--labels", order, "--probs", "-o", "jsonl")
        assert res.exit_code == 0, res.output
        rows = [json.loads(x) for x in res.stdout.splitlines()]
        assert list(rows[0]["probs"]) == order.split(",")  # reported in the order given
        results.append(rows)
    for rows in results[1:]:
        for a, b in zip(results[0], rows):
            assert a["label"] == b["label"]
            assert all(abs(a["probs"][k] - b["probs"][k]) < 1e-6 for k in a["probs"])


def test_custom_labels_get_a_neutral_instruction_or_the_users(run, notes):
    from senti_edge.runtime.prompts import build_prefix
    from senti_edge.runtime.tasks import get_task

    prefix = "".join(s.text for s in build_prefix(get_task("polarity", ["urgent", "routine", "spam"])))
    assert prefix.startswith("Classify each text as one of: routine, spam, urgent.") and "sentiment" not in prefix
    a = run(str(notes), "--labels", "urgent,routine,spam", "--probs")
    b = run(str(notes), "--labels", "urgent,routine,spam", "--probs", "--instruction", "Sort these office messages.")
    assert a.exit_code == b.exit_code == 0, b.output
    assert [json.loads(x)["probs"] for x in a.stdout.splitlines()] != [json.loads(x)["probs"] for x in b.stdout.splitlines()]
    res = run(str(notes), "-t", "aspects", "--instruction", "x")
    assert res.exit_code == 1 and "do not apply to the generative task" in res.output


def test_stance_has_none_and_target_field_works_alone(run, tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_text('{"text": "We must act on climate now", "about": "climate action"}\n'
                 '{"text": "My cat likes the sofa", "about": "climate action"}\n'
                 '{"text": "No target here"}\n')
    res = run(str(p), "-t", "stance", "--target-field", "about", "--probs")
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in res.stdout.splitlines()]
    assert len(rows) == 2 and set(rows[0]["probs"]) == {"against", "favor", "none"}
    assert "skipped 1 row (1 no stance target)" in res.stderr
    res = run(str(p), "-t", "stance", "--target-field", "about", "--target", "climate action")
    assert res.exit_code == 0 and len(res.stdout.splitlines()) == 3  # --target fills the missing one
    res = run(str(p), "-t", "stance", "--target-field", "about", "--strict")
    assert res.exit_code == 1 and res.output.startswith(f"Error: {p}:3: no stance target")


def test_explain_is_refused_where_it_does_not_apply(run, reviews):
    for args, what in [(["-t", "aspects"], "-t aspects"), (["--labels", "a,b"], "-t custom"),
                       (["-t", "intimacy"], "-t intimacy")]:
        res = run(str(reviews), "--explain", *args)
        assert res.exit_code == 1 and res.output.startswith(f"Error: --explain does not apply to {what}"), res.output


def test_explain_keeps_whole_sentences_in_the_tasks_terms(run, reviews):
    res = run(str(reviews), "-o", "jsonl", "--explain", "-t", "emotion")
    assert res.exit_code == 0, res.output
    for row in (json.loads(x) for x in res.stdout.splitlines()):
        assert row["explanation"].rstrip("\"')]").endswith((".", "!", "?")), row["explanation"]
        assert "overall sentiment" not in row["explanation"].lower()
        assert row["explanation"].startswith(f"The text expresses {row['label']} because"), row


def test_tasks_command_lists_labels_instructions_and_examples():
    res = CliRunner().invoke(cli, ["tasks"])
    assert res.exit_code == 0
    from senti_edge.runtime.tasks import TASKS

    for name in ("polarity", "binary", "emotion", "irony", "stance", "intimacy", "aspects", "custom"):
        assert f"\n{name}: " in "\n" + res.output
    assert "labels:      against, favor, none" in res.output
    assert "instruction: Classify each text as one of:" in res.output
    assert res.output.count("example:     senti-edge analyze") + res.output.count("| senti-edge analyze") == len(
        {t.name for t in TASKS.values()}) + 1


def test_long_document_chunk_labels_and_no_echo(run, tmp_path):
    doc = tmp_path / "speech.txt"
    doc.write_text(("The first half of this speech is full of hope and joy. " * 15 + "\n") +
                   ("The second half is bitter, angry and full of despair. " * 15 + "\n"))
    res = run(str(doc), "--document", "--chunk", "--chunk-labels", "--ctx", "256")
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)
    assert "text" not in row and len(row["chunks"]) >= 2
    assert all(c["label"] in ("negative", "neutral", "positive") for c in row["chunks"])
    plain = json.loads(run(str(doc), "--document", "--chunk", "--ctx", "256", "--text").stdout)
    assert plain["label"] == row["label"] and abs(plain["confidence"] - row["confidence"]) < 1e-6
    assert plain["text"].endswith("full of despair.")
    assert run(str(doc), "--chunk-labels").exit_code == 2


def test_a_20000_word_document_is_read_to_the_end_through_the_cli(run, tmp_path):
    """Without --chunk only the context's worth is scored (fast), but the row holds the whole text."""
    words = [f"w{i}" for i in range(20_000)]
    doc = tmp_path / "speech.txt"
    doc.write_text("\n".join(" ".join(words[i:i + 10]) for i in range(0, 20_000, 10)) + "\n")
    res = run(str(doc), "--document", "--text", "--ctx", "512")
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)
    assert row["text"].split() == words and len(row["text"]) > 100_000
    assert "truncated (use --chunk" in res.stderr


def test_interrupt_message_says_what_was_written(smollm2_path, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    big = tmp_path / "big.txt"
    big.write_text("".join(f"text {i}, fine\n" for i in range(5000)))
    proc = subprocess.Popen([sys.executable, "-m", "senti_edge", "analyze", str(big), "-m", str(smollm2_path),
                             "--threads", "1", "-o", "jsonl"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()  # the first batch is out
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        # the same buffered reader: communicate() reads the raw pipe and would miss what readline() buffered
        rest, err = proc.stdout.read(), proc.stderr.read()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    n = 1 + len(rest.splitlines())
    assert proc.returncode == 130 and json.loads(first)["line"] == 1
    assert f"Interrupted; {n} complete rows were written." in err, err


@pytest.mark.parametrize("args,code,message", [
    (["--target", "x"], 2, "--target and --target-field apply to -t stance"),
    (["--chunk-labels"], 2, "--chunk-labels needs --chunk"),
    (["-t", "aspects", "--chunk", "--chunk-labels"], 2, "not -t aspects"),
    (["-t", "stance"], 1, "needs --target or --target-field"),
    (["--explain", "-t", "aspects"], 1, "--explain does not apply to -t aspects"),
    (["--labels", "a,a"], 1, "distinct"),
])
def test_option_mistakes_fail_before_the_model_loads(tmp_path, args, code, message):
    p = tmp_path / "r.txt"
    p.write_text("fine\n")
    res = CliRunner().invoke(cli, ["analyze", str(p), "-m", "/no/such/model.gguf", *args])
    assert res.exit_code == code and message in res.output and "Traceback" not in res.output, res.output


def test_verbose_lets_llama_cpps_own_log_through(smollm2_path, tmp_path):
    """The root -v reaches the Engine: llama.cpp's own loader log reaches stderr, and only with -v."""
    import subprocess
    import sys

    texts = tmp_path / "t.txt"
    texts.write_text("Great phone.\n")

    def analyze(*flags):
        return subprocess.run([sys.executable, "-m", "senti_edge", *flags, "analyze", str(texts), "-m", str(smollm2_path),
                               "--threads", "1", "-q", "-o", "jsonl"], capture_output=True, text=True, timeout=300)

    quiet, loud = analyze(), analyze("-v")
    assert quiet.returncode == loud.returncode == 0, (quiet.stderr[-500:], loud.stderr[-500:])
    assert json.loads(quiet.stdout)["label"] == json.loads(loud.stdout)["label"]
    assert "llama_model_loader" in loud.stderr and "llama_model_loader" not in quiet.stderr
