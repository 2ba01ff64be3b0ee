"""The torch-free merge: LoRA folded into the base GGUF in numpy, as peft would, and as
llama.cpp applies the adapter at load time; the quantized build is reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from senti_edge.errors import SentiEdgeError
from senti_edge.runtime import build
from senti_edge.runtime.fetch import shipped_adapter
from senti_edge.runtime.registry import get_entry


def test_merged_weight_is_w_plus_scaled_b_a():
    rng = np.random.default_rng(0)
    w, a, b = rng.normal(size=(6, 5)).astype(np.float32), rng.normal(size=(2, 5)), rng.normal(size=(6, 2))
    got = build.merged_weight(w, a, b, alpha=4.0)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, w + 2.0 * (b @ a), rtol=1e-6, atol=1e-6)


def test_merged_weight_refuses_shapes_that_do_not_fit():
    with pytest.raises(SentiEdgeError, match="do not fit"):
        build.merged_weight(np.zeros((6, 5), np.float32), np.zeros((2, 4)), np.zeros((6, 2)), 4.0)


def test_a_non_adapter_is_refused(smollm2_path):
    with pytest.raises(SentiEdgeError, match="not a GGUF LoRA adapter"):
        build.lora_pairs(smollm2_path)


@pytest.mark.model
@pytest.mark.slow
def test_numpy_merge_equals_peft_merge(smollm2_path):
    """The same weight merged by peft's `merge_and_unload` in torch agrees to float32 precision."""
    torch = pytest.importorskip("torch")
    peft = pytest.importorskip("peft")
    import gguf

    pairs, alpha = build.lora_pairs(shipped_adapter(get_entry("senti-smollm2-135m")))
    name = "blk.3.ffn_down.weight"
    a, b = pairs[name]
    tensor = next(t for t in gguf.GGUFReader(smollm2_path).tensors if t.name == name)
    w = gguf.quants.dequantize(tensor.data, tensor.tensor_type)

    class One(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)

    model = peft.get_peft_model(One(), peft.LoraConfig(r=a.shape[0], lora_alpha=alpha, target_modules=["proj"]))
    layer = model.base_model.model.proj
    with torch.no_grad():
        layer.base_layer.weight.copy_(torch.from_numpy(w))
        layer.lora_A["default"].weight.copy_(torch.from_numpy(a.astype(np.float32)))
        layer.lora_B["default"].weight.copy_(torch.from_numpy(b.astype(np.float32)))
    merged = model.merge_and_unload().proj.weight.detach().numpy()
    ours = build.merged_weight(w, a, b, alpha)
    assert np.abs(merged - w).max() > 1e-3  # the adapter really changes this weight
    np.testing.assert_allclose(ours, merged, rtol=0, atol=1e-5)


def test_stamped_metadata_is_added_or_replaced_and_nothing_else_changes(tmp_path, tiny_gguf):
    import gguf

    src = tiny_gguf(tmp_path / "a.gguf", **{"senti_edge.calibration": "old", "general.name": "toy"})
    dst = tmp_path / "b.gguf"
    build.stamp_metadata(src, dst, {"senti_edge.calibration": "new", "senti_edge.note": "x"})
    assert build.senti_metadata(src) == {"senti_edge.calibration": "old"}
    assert build.senti_metadata(dst) == {"senti_edge.calibration": "new", "senti_edge.note": "x"}
    a, b = gguf.GGUFReader(src), gguf.GGUFReader(dst)
    assert b.fields["general.name"].contents() == "toy" and b.fields["llama.block_count"].contents() == 2
    assert [t.name for t in b.tensors] == ["blk.0.attn_q.weight"]
    np.testing.assert_array_equal(a.tensors[0].data, b.tensors[0].data)


@pytest.mark.model
def test_the_adapter_form_and_the_merged_default_calibrate_alike():
    from senti_edge.runtime.analyzer import Analyzer
    from senti_edge.runtime.fetch import is_present
    from senti_edge.runtime.registry import DEFAULT_MODEL

    if not is_present(get_entry(DEFAULT_MODEL)):
        pytest.skip(f"{DEFAULT_MODEL} is not built here; run `senti-edge models pull`")
    seen = {}
    for name in (DEFAULT_MODEL, DEFAULT_MODEL + "-lora"):
        with Analyzer(model=name, task="polarity", n_threads=1, n_ctx=512) as az:
            cal = az.calibration
            seen[name] = (az.calibration_method, cal.tokens.tolist(), cal.weight.tolist(), cal.bias.tolist())
    assert seen[DEFAULT_MODEL][0] == "head" and len(set(map(str, seen.values()))) == 1
