"""senti_edge/distill/config.py: TOML recipes, unknown keys, types, overrides, validation."""

import pytest

from senti_edge.distill.config import DistillConfig, load_config
from senti_edge.errors import SentiEdgeError


def test_defaults_and_recipe_load(tmp_path):
    from pathlib import Path

    recipe = Path(__file__).resolve().parents[2] / "configs" / "distill-smollm2.toml"
    cfg = load_config(recipe)
    assert cfg.student == "smollm2-135m" and cfg.train.target_modules == ["all-linear"]
    assert load_config(None).teacher.backend == "gguf"


def test_unknown_key_names_it(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[train]\nlora_rnk = 8\n")
    with pytest.raises(SentiEdgeError, match="unknown key 'train.lora_rnk'"):
        load_config(p)
    p.write_text("colour = 'red'\n")
    with pytest.raises(SentiEdgeError, match="unknown key 'colour'"):
        load_config(p)


def test_wrong_type_and_bad_values(tmp_path):
    with pytest.raises(SentiEdgeError, match="train.lora_r = 'big' should be a int"):
        DistillConfig.from_dict({"train": {"lora_r": "big"}})
    with pytest.raises(SentiEdgeError, match="teacher.backend = 'gpt'"):
        DistillConfig.from_dict({"teacher": {"backend": "gpt"}})
    with pytest.raises(SentiEdgeError, match="max_shots"):
        DistillConfig.from_dict({"icldist": {"min_shots": 5, "max_shots": 2}})
    with pytest.raises(SentiEdgeError, match="val/test"):
        DistillConfig.from_dict({"corpus": {"datasets": ["sc/sst2/val.json"]}})
    with pytest.raises(SentiEdgeError, match="not valid TOML"):
        (tmp_path / "bad.toml").write_text("[train\n")
        load_config(tmp_path / "bad.toml")
    with pytest.raises(SentiEdgeError, match="not found"):
        load_config(tmp_path / "missing.toml")


def test_overrides_are_typed(tmp_path):
    cfg = load_config(None, ["train.lr=1e-4", "train.target_modules=['q_proj','v_proj']", "student=/x/y"])
    assert cfg.train.lr == 1e-4 and cfg.train.target_modules == ["q_proj", "v_proj"] and cfg.student == "/x/y"
    with pytest.raises(SentiEdgeError, match="part.key=value"):
        load_config(None, ["train.lr"])
