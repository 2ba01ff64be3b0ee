"""Merge a PEFT LoRA adapter into its base and save a plain safetensors model directory.

The base is a registry name or `.gguf` file (dequantized by transformers' GGUF loader) or a
Hugging Face model directory. The adapter is checked against the base before merging: every
LoRA matrix must name a linear layer of the base with matching shapes. The merged model is
saved in float32 with its tokenizer and chat template, into a temporary directory renamed into
place at the end.

The gguf-load pitfall (../shared/models.md): a model loaded with `gguf_file=` refuses
`save_pretrained` even after merging, and its config has no `architectures`. We rebuild it with
`from_config` (quantization config removed, architecture set) and load the merged state dict.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import SentiEdgeError
from ..hfstack import first_line, load_causal_lm, load_stack
from ..jsonl import ensure_space
from ..runtime.chat import detect_template
from .files import make_public

log = logging.getLogger(__name__)

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")


@dataclass
class BaseModel:
    """Where the base came from: a GGUF file (dequantized) or a Hugging Face directory."""

    spec: str
    gguf: Path | None = None  # the base GGUF, when the base is one
    hf_dir: Path | None = None

    @property
    def label(self) -> str:
        return str(self.gguf or self.hf_dir)


def locate_base(spec: str) -> BaseModel:
    """Resolve `spec` (registry name, .gguf, HF directory) without loading weights."""
    p = Path(spec).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise SentiEdgeError(f"base {spec} is a directory without config.json; give a Hugging Face model directory or a .gguf file")
        if not any((p / f).is_file() for f in TOKENIZER_FILES):
            raise SentiEdgeError(f"base {spec} has no tokenizer ({', '.join(TOKENIZER_FILES)}); copy the tokenizer files into it")
        return BaseModel(spec, hf_dir=p)
    from ..runtime.fetch import resolve

    return BaseModel(spec, gguf=resolve(spec).path)


def load_base(base: BaseModel):
    """(model, tokenizer) in float32 on CPU."""
    return load_causal_lm(base.label, gguf=base.gguf)


def read_adapter_config(adapter: str | os.PathLike) -> dict:
    path = Path(adapter)
    cfg_path = path / "adapter_config.json"
    if not cfg_path.is_file():
        raise SentiEdgeError(f"{adapter} is not a PEFT adapter directory (no adapter_config.json)")
    try:
        cfg = json.loads(cfg_path.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise SentiEdgeError(f"{cfg_path}: not valid JSON ({exc.msg})") from None
    if cfg.get("peft_type", "LORA") != "LORA":
        raise SentiEdgeError(f"{adapter} is a {cfg.get('peft_type')} adapter; only LoRA adapters can be merged and exported")
    if not any((path / f).is_file() for f in ("adapter_model.safetensors", "adapter_model.bin")):
        raise SentiEdgeError(f"{adapter} has no adapter_model.safetensors; the adapter weights are missing")
    return cfg


def check_match(model, adapter: str | os.PathLike) -> int:
    """Every LoRA matrix must sit on a linear layer of `model` with matching shapes; returns their count."""
    weights = Path(adapter) / "adapter_model.safetensors"
    if not weights.is_file():
        return 0  # a .bin adapter: peft checks it while loading
    from safetensors import safe_open

    modules = dict(model.named_modules())
    n = 0
    with safe_open(str(weights), "pt") as fh:
        for key in fh.keys():
            if ".lora_A." not in key and ".lora_B." not in key:
                continue
            prefix, kind = (key.split(".lora_A.")[0], "A") if ".lora_A." in key else (key.split(".lora_B.")[0], "B")
            name = prefix.removeprefix("base_model.model.")
            mod = modules.get(name)
            if mod is None or not hasattr(mod, "in_features"):
                raise SentiEdgeError(
                    f"adapter {adapter} does not match the base model: it has LoRA weights for {name!r}, "
                    "which is not a linear layer of the base; was it trained on another model?"
                )
            shape = tuple(fh.get_slice(key).get_shape())
            want = mod.in_features if kind == "A" else mod.out_features
            got = shape[1] if kind == "A" else shape[0]
            if got != want:
                raise SentiEdgeError(
                    f"adapter {adapter} does not match the base model: {key} has shape {list(shape)} but "
                    f"{name} is {mod.in_features}->{mod.out_features}; was it trained on another model?"
                )
            n += 1
    if n == 0:
        raise SentiEdgeError(f"adapter {adapter} holds no LoRA weights")
    return n


def merge(base: BaseModel, adapter: str | None, out_dir: Path, *, force: bool = False) -> dict:
    """Merge `adapter` (or nothing) into `base` and save to `out_dir`; returns facts for the card."""
    torch = load_stack()[0]
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model, tokenizer = load_base(base)
    n_lora = 0
    if adapter is not None:
        acfg = read_adapter_config(adapter)
        n_lora = check_match(model, adapter)
        try:
            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
        except (RuntimeError, ValueError, KeyError) as exc:
            raise SentiEdgeError(f"adapter {adapter} does not fit base {base.label}: {first_line(exc)}") from None
    else:
        acfg = {}
    n_params = sum(p.numel() for p in model.parameters())
    ensure_space(out_dir.parent, 4 * n_params, "the merged model")

    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.architectures = [type(model).__name__]
    with torch.no_grad():
        clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        clean.load_state_dict(model.state_dict(), strict=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        clean.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if getattr(tokenizer, "chat_template", None) and not (tmp / "chat_template.jinja").exists():
            (tmp / "chat_template.jinja").write_text(tokenizer.chat_template, "utf-8")
        if out_dir.exists():
            if not force:
                raise SentiEdgeError(f"{out_dir} exists; pass --force to overwrite")
            shutil.rmtree(out_dir)
        make_public(tmp)
        os.replace(tmp, out_dir)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
    log.info("merged %s + %s into %s (%d LoRA matrices, %.1fM parameters)", base.label, adapter, out_dir, n_lora, n_params / 1e6)
    return {
        "architecture": config.architectures[0],
        "n_params": n_params,
        "lora_matrices": n_lora,
        "lora_r": acfg.get("r"),
        "lora_alpha": acfg.get("lora_alpha"),
        "target_modules": acfg.get("target_modules"),
        "chat_template": bool(getattr(tokenizer, "chat_template", None)),
        "template": detect_template(getattr(tokenizer, "chat_template", None)),
    }
