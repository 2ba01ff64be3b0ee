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
