import numpy as np
import pytest

from senti_edge.errors import SentiEdgeError
from senti_edge.quantize.stack import main, stack
from senti_edge.runtime.build import lora_pairs, merged_weight


def write_lora(path, tensors: dict, alpha: float):
    import gguf

    w = gguf.GGUFWriter(path, "llama")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", alpha)
    for name, (a, b) in tensors.items():
        w.add_tensor(f"{name}.lora_a", a.astype(np.float16))
        w.add_tensor(f"{name}.lora_b", b.astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_stacked_adapter_is_the_sum_of_its_parts(tmp_path):
    rng = np.random.default_rng(0)
    first = {"blk.0.attn_q.weight": (rng.normal(size=(4, 6)), rng.normal(size=(5, 4))),
             "blk.0.ffn_up.weight": (rng.normal(size=(4, 5)), rng.normal(size=(7, 4)))}
    second = {"blk.0.attn_q.weight": (rng.normal(size=(2, 6)), rng.normal(size=(5, 2)))}  # ffn_up untouched
    write_lora(tmp_path / "a.gguf", first, alpha=8.0)
    write_lora(tmp_path / "b.gguf", second, alpha=4.0)
    assert stack([tmp_path / "a.gguf", tmp_path / "b.gguf"], tmp_path / "ab.gguf") == 6
    joined, alpha = lora_pairs(tmp_path / "ab.gguf")
    assert alpha == 6.0 and set(joined) == set(first)
    p1, a1 = lora_pairs(tmp_path / "a.gguf")
    p2, a2 = lora_pairs(tmp_path / "b.gguf")
    for name, (a, b) in first.items():
        w = rng.normal(size=(b.shape[0], a.shape[1])).astype(np.float32)
        one_by_one = merged_weight(w, *p1[name], a1)
        if name in p2:
            one_by_one = merged_weight(one_by_one, *p2[name], a2)
        assert np.allclose(merged_weight(w, *joined[name], alpha), one_by_one, atol=1e-5)


def test_mismatched_adapters_are_refused(tmp_path, capsys):
    write_lora(tmp_path / "a.gguf", {"blk.0.attn_q.weight": (np.ones((2, 6)), np.ones((5, 2)))}, 4.0)
    write_lora(tmp_path / "b.gguf", {"blk.0.attn_q.weight": (np.ones((2, 3)), np.ones((5, 2)))}, 4.0)
    with pytest.raises(SentiEdgeError, match="disagree on the shape"):
        stack([tmp_path / "a.gguf", tmp_path / "b.gguf"], tmp_path / "ab.gguf")
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "ab.gguf"), str(tmp_path / "a.gguf"), str(tmp_path / "missing.gguf")])
    assert str(exc.value).startswith("Error:")


def test_a_run_ships_its_stage_joined_with_the_adapter_its_student_was_made_with(
        stack, converter, tiny_lora, smollm2_path, quant_home, tmp_path, monkeypatch):
    """`stack --run`: the student folder's copy of its adapter (not the registry's adapter of the
    day) plus the stage's LoRA. Here the student's adapter is the tiny LoRA itself, so the joined
    adapter must merge to the tiny LoRA applied twice."""
    from senti_edge.distill.train import STUDENT_ADAPTER
    from senti_edge.quantize.convert import convert_lora
    from senti_edge.quantize.merge import BaseModel, load_base
    from senti_edge.quantize.stack import stack_run

    monkeypatch.setenv("SENTI_EDGE_HOME", str(quant_home))
    run = tmp_path / "run"
    student = run / "student"
    model, tok = load_base(BaseModel(str(smollm2_path), gguf=smollm2_path))
    model.config.architectures = [type(model).__name__]  # the config prepare_student saves (weights aside)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.save_pretrained(student)
    tok.save_pretrained(student)
    (run / "consistency").mkdir()
    (run / "consistency" / "adapter").symlink_to(tiny_lora, target_is_directory=True)
    with pytest.raises(SentiEdgeError, match="student.lora.gguf not found"):
        stack_run(run, tmp_path / "joined.gguf")
    convert_lora(converter, tiny_lora, student, student / STUDENT_ADAPTER)
    assert stack_run(run, tmp_path / "joined.gguf") == 8
    once, a1 = lora_pairs(student / STUDENT_ADAPTER)
    joined, alpha = lora_pairs(tmp_path / "joined.gguf")
    assert set(joined) == set(once) and alpha == 8.0
    rng = np.random.default_rng(1)
    for name, (a, b) in list(once.items())[:3]:
        w = rng.normal(size=(b.shape[0], a.shape[1])).astype(np.float32)
        twice = merged_weight(merged_weight(w, a, b, a1), a, b, a1)
        assert np.allclose(merged_weight(w, *joined[name], alpha), twice, atol=1e-3)


def test_main_wants_adapters_or_a_run(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(tmp_path / "out.gguf")])
    assert "--run" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "out.gguf"), "--run", str(tmp_path / "nothing")])
    assert str(exc.value).startswith("Error:") and "train the stage first" in str(exc.value)
