"""The converter cache (fake sdist), error handling around the converter scripts, the real converter's map."""

from __future__ import annotations

import io
import stat
import tarfile
import textwrap
from pathlib import Path

import pytest

from senti_edge.errors import SentiEdgeError
from senti_edge.quantize import convert

FAKE_MAP = 'TEXT_MODEL_MAP: dict[str, str] = {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen"}\n'


def _fake_sdist(path: Path, version: str) -> None:
    pre = f"llama_cpp_python-{version}/"
    files = {
        pre + "README.md": "not kept",
        pre + "vendor/llama.cpp/convert_hf_to_gguf.py": "print('hf')\n",
        pre + "vendor/llama.cpp/convert_lora_to_gguf.py": "print('lora')\n",
        pre + "vendor/llama.cpp/convert_llama_ggml_to_gguf.py": "not kept",
        pre + "vendor/llama.cpp/conversion/__init__.py": FAKE_MAP,
        pre + "vendor/llama.cpp/gguf-py/gguf/__init__.py": "",
        pre + "vendor/llama.cpp/src/llama.cpp": "not kept",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_converter_is_extracted_once_from_the_cached_sdist(tmp_home):
    _fake_sdist(convert.sdist_path("9.9.9"), "9.9.9")
    conv = convert.ensure_converter("9.9.9", download=False)
    assert conv.hf_script.is_file() and conv.lora_script.is_file()
    assert (conv.root / "gguf-py" / "gguf" / "__init__.py").is_file()
    assert not (conv.root / "convert_llama_ggml_to_gguf.py").exists() and not (conv.root / "src").exists()
    assert len(conv.sdist_sha256) == 64 and "9.9.9 sdist" in conv.describe()
    assert convert.supported_architectures(conv) == {"LlamaForCausalLM", "Qwen2ForCausalLM"}
    convert.sdist_path("9.9.9").unlink()  # extracted: the tarball is no longer needed
    assert convert.ensure_converter("9.9.9", download=False).sdist_sha256 == conv.sdist_sha256


def test_missing_sdist_without_download_is_a_clear_error(tmp_home):
    with pytest.raises(SentiEdgeError, match="converter is not cached"):
        convert.ensure_converter("9.9.8", download=False)


def test_a_broken_sdist_is_reported(tmp_home):
    p = convert.sdist_path("9.9.7")
    p.parent.mkdir(parents=True)
    p.write_bytes(b"not a tarball")
    with pytest.raises(SentiEdgeError, match="not a readable sdist"):
        convert.ensure_converter("9.9.7", download=False)


def _fake_converter(tmp_path: Path, body: str) -> convert.Converter:
    root = tmp_path / "conv"
    (root / "conversion").mkdir(parents=True)
    (root / "conversion" / "__init__.py").write_text(FAKE_MAP)
    script = textwrap.dedent(f"""
        import sys
        out = sys.argv[sys.argv.index("--outfile") + 1]
        {body}
    """)
    (root / "convert_hf_to_gguf.py").write_text(script)
    return convert.Converter(root, "0.0.0", "0" * 64)


def _model_dir(tmp_path: Path, arch: str) -> Path:
    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_text(f'{{"architectures": ["{arch}"]}}')
    return d


def test_a_failed_conversion_leaves_no_file_under_the_final_name(tmp_path):
    conv = _fake_converter(tmp_path, 'open(out, "wb").write(b"GGUF half"); print("ERROR:hf-to-gguf:boom", file=sys.stderr); sys.exit(1)')
    out = tmp_path / "out" / "m-f16.gguf"
    with pytest.raises(SentiEdgeError, match="converter failed on .*boom"):
        convert.convert_hf(conv, _model_dir(tmp_path, "LlamaForCausalLM"), out)
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_a_successful_conversion_is_renamed_into_place_with_normal_permissions(tmp_path):
    conv = _fake_converter(tmp_path, 'open(out, "wb").write(b"GGUF whole")')
    out = tmp_path / "out" / "m-f16.gguf"
    convert.convert_hf(conv, _model_dir(tmp_path, "LlamaForCausalLM"), out, metadata={"general.name": "m"})
    assert out.read_bytes() == b"GGUF whole" and [p.name for p in out.parent.iterdir()] == ["m-f16.gguf"]
    assert stat.S_IMODE(out.stat().st_mode) & 0o044  # readable by others, unlike a bare mkstemp file


def test_relative_paths_work_although_the_script_runs_in_its_own_folder(tmp_path, monkeypatch):
    conv = _fake_converter(tmp_path, 'import os; model = sys.argv[1]; '
                                     'open(out, "wb").write(b"GGUF " + str(os.path.isdir(model)).encode())')
    _model_dir(tmp_path, "LlamaForCausalLM")
    monkeypatch.chdir(tmp_path)
    convert.convert_hf(conv, Path("model"), Path("out") / "m-f16.gguf")
    assert (tmp_path / "out" / "m-f16.gguf").read_bytes() == b"GGUF True"


def test_unsupported_architecture_is_refused_before_converting(tmp_path):
    conv = _fake_converter(tmp_path, "raise SystemExit(3)")
    with pytest.raises(SentiEdgeError, match="architecture MambaForCausalLM is not supported"):
        convert.convert_hf(conv, _model_dir(tmp_path, "MambaForCausalLM"), tmp_path / "x.gguf")


def test_the_real_converter_knows_our_students(converter):
    archs = convert.supported_architectures(converter)
    assert {"LlamaForCausalLM", "Qwen2ForCausalLM", "Gemma3ForCausalLM"} <= archs
    assert converter.version == convert.runtime_version()
    assert (converter.root / "conversion" / "llama.py").is_file()


def test_rslora_is_converted_with_an_equivalent_alpha(tmp_path):
    import json

    conv = _fake_converter(tmp_path, "")
    (conv.root / "convert_lora_to_gguf.py").write_text(textwrap.dedent("""
        import json, pathlib, sys
        out = sys.argv[sys.argv.index("--outfile") + 1]
        cfg = json.loads((pathlib.Path(sys.argv[1]) / "adapter_config.json").read_text())
        w = (pathlib.Path(sys.argv[1]) / "adapter_model.safetensors").read_text()
        open(out, "w").write(json.dumps([cfg["lora_alpha"], cfg["use_rslora"], w]))
    """))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 16, "lora_alpha": 8, "use_rslora": True}))
    (adapter / "adapter_model.safetensors").write_text("weights")
    out = tmp_path / "lora.gguf"
    convert.convert_lora(conv, adapter, _model_dir(tmp_path, "LlamaForCausalLM"), out)
    assert json.loads(out.read_text()) == [32.0, False, "weights"]  # 8 * sqrt(16): alpha/r == 8/sqrt(16)
    assert json.loads((adapter / "adapter_config.json").read_text())["lora_alpha"] == 8  # the original is untouched


def test_adapters_without_a_gguf_lora_form_are_named():
    assert convert.lora_export_problem({"use_dora": True}).startswith("DoRA")
    assert "alpha_pattern" in convert.lora_export_problem({"alpha_pattern": {"q_proj": 4}})
    assert convert.lora_export_problem({"r": 8, "rank_pattern": {}, "alpha_pattern": {}}) is None
