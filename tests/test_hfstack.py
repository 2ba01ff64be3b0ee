"""The torch side's loader: one error for a missing stack, and a spec's adapter merged in."""

import builtins

import numpy as np
import pytest

from senti_edge import hfstack
from senti_edge.errors import SentiEdgeError


def test_a_missing_package_is_one_error_naming_the_extra(monkeypatch):
    real = builtins.__import__

    def no_peft(name, *args, **kwargs):
        if name == "peft":
            raise ImportError("No module named 'peft'", name="peft")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_peft)
    with pytest.raises(SentiEdgeError, match=r"peft is missing\); pip install 'senti-edge\[distill\]'"):
        hfstack.load_stack()


@pytest.mark.slow
@pytest.mark.model
def test_a_spec_with_an_adapter_is_the_merged_model(smollm2_path):
    import gguf

    from senti_edge.runtime.build import lora_pairs, merged_weight
    from senti_edge.runtime.fetch import shipped_adapter
    from senti_edge.runtime.registry import get_entry

    plain, _ = hfstack.load_gguf_spec(str(smollm2_path))
    distilled, _ = hfstack.load_gguf_spec("senti-smollm2-135m-lora")  # base + shipped adapter, applied at load
    name = "blk.3.ffn_down.weight"  # not permuted by the GGUF layout, so comparable as is
    pairs, alpha = lora_pairs(shipped_adapter(get_entry("senti-smollm2-135m-lora")))
    t = next(t for t in gguf.GGUFReader(smollm2_path).tensors if t.name == name)
    w = gguf.quants.dequantize(t.data, t.tensor_type)
    want = merged_weight(w, *pairs[name], alpha)
    got = distilled.model.layers[3].mlp.down_proj.weight.detach().numpy()
    base = plain.model.layers[3].mlp.down_proj.weight.detach().numpy()
    assert np.allclose(base, w) and np.allclose(got, want, atol=1e-6) and not np.allclose(got, base)
