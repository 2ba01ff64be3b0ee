"""The `senti-edge quantize` command: wiring, help and one-line errors (no heavy work)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from senti_edge.cli import cli


def test_quantize_is_a_command_with_examples():
    assert "quantize" in cli.commands
    res = CliRunner().invoke(cli, ["quantize", "--help"])
    assert res.exit_code == 0
    assert "Examples:" in res.output and "--types" in res.output and "--force" in res.output


def test_missing_base_file_is_one_line_error(tmp_path, tmp_home):
    (tmp_path / "adapter").mkdir()
    res = CliRunner().invoke(cli, ["quantize", str(tmp_path / "adapter"), "-m", str(tmp_path / "none.gguf"),
                                   "--out", str(tmp_path / "out")])
    assert res.exit_code == 1
    assert res.output.strip().splitlines()[-1].startswith("Error: model file not found")


def test_not_an_adapter_is_one_line_error(tmp_path, tmp_home, smollm2_path):
    (tmp_path / "adapter").mkdir()
    res = CliRunner().invoke(cli, ["quantize", str(tmp_path / "adapter"), "-m", str(smollm2_path),
                                   "--out", str(tmp_path / "out"), "--types", "q4_0"])
    assert res.exit_code == 1
    assert "is not a PEFT adapter directory" in res.output and "Traceback" not in res.output


def test_unknown_type_is_one_line_error(tmp_path):
    res = CliRunner().invoke(cli, ["quantize", "--out", str(tmp_path / "o"), "--types", "q9_9"])
    assert res.exit_code == 1 and "unknown quantization type 'q9_9'" in res.output


def test_a_shipped_model_name_is_refused_before_any_work(tmp_path, tmp_home):
    res = CliRunner().invoke(cli, ["quantize", "-m", str(tmp_path / "none.gguf"), "--out", str(tmp_path / "o"),
                                   "--name", "smollm2-135m"])
    assert res.exit_code == 1 and "'smollm2-135m' is taken by a shipped model" in res.output


@pytest.mark.parametrize("name", ["senti-smollm2-135m", "senti-smollm2-135m-lora"])
def test_a_shipped_model_built_here_is_refused_before_any_work_too(tmp_path, tmp_home, name):
    """Distilled models have no download of their own (base + adapter, built here), yet are shipped:
    the name check is the registry's, so `quantize` fails at once, not after the work."""
    res = CliRunner().invoke(cli, ["quantize", "-m", str(tmp_path / "none.gguf"), "--out", str(tmp_path / "o"),
                                   "--name", name])
    assert res.exit_code == 1 and f"'{name}' is taken by a shipped model" in res.output, res.output
    assert "model file not found" not in res.output and not (tmp_path / "o").exists()


def test_a_generative_task_is_refused(tmp_path, tmp_home):
    res = CliRunner().invoke(cli, ["quantize", "-m", str(tmp_path / "none.gguf"), "--out", str(tmp_path / "o"), "-t", "aspects"])
    assert res.exit_code == 2 and "'aspects' is not one of" in res.output  # click's own usage error
    from senti_edge.errors import SentiEdgeError
    from senti_edge.quantize import QuantizeConfig, run

    with pytest.raises(SentiEdgeError, match="task 'aspects' is generative"):
        run(QuantizeConfig(base=str(tmp_path / "none.gguf"), out_dir=str(tmp_path / "o"), task="aspects", register=False))
