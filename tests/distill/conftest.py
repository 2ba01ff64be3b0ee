"""Fixtures for the distill tests: a made-up SentiBench-shaped tree, configs, a scripted teacher."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from senti_edge.distill.config import DistillConfig
from senti_edge.distill.teachers import Reply, Teacher

POS = ["I loved every minute of this film.", "What a wonderful, warm little story.", "Great acting and a clever plot.",
       "The best meal I have had all year.", "Friendly staff and lovely views."]
NEG = ["A dull, lifeless mess of a movie.", "The soup was cold and the waiter rude.", "I want my two hours back.",
       "Badly written and far too long.", "The battery died after one day."]


def _write(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows), encoding="utf-8")


@pytest.fixture
def fake_bench(tmp_path) -> Path:
    """A tiny tree shaped like SentiBench (made-up sentences), with a val.json that must never be read."""
    root = tmp_path / "bench"
    rows = [{"sentence": s, "label": "positive"} for s in POS] + [{"sentence": s, "label": "negative"} for s in NEG]
    rows.append({"sentence": POS[0], "label": "positive"})  # a duplicate text
    _write(root / "sc" / "sst2" / "train.json", rows)
    _write(root / "sc" / "sst2" / "val.json", [{"sentence": "VAL TEXT never to be used", "label": "positive"}])
    _write(root / "multifaced" / "pstance" / "train.json",
           [{"sentence": "Taxes must rise for the rich.", "target": "Bernie Sanders", "label": "FAVOR"},
            {"sentence": "He will ruin the economy.", "target": "Bernie Sanders", "label": "AGAINST"},
            {"sentence": "Vote for her, she listens.", "target": "Hillary Clinton", "label": "FAVOR"}])
    _write(root / "absa" / "atsa_rest16" / "train.json",
           [{"sentence": "The pasta was great but the service slow.", "aspects": []},
            {"sentence": "Nice terrace.", "aspects": []}])
    return root


def make_config(tmp_path: Path, bench: Path, **parts) -> DistillConfig:
    data = {
        "out_dir": str(tmp_path / "run"), "seed": 7, "student": "smollm2-135m",
        "teacher": {"model": "smollm2-135m", "n_threads": 1, "n_ctx": 1024},
        "corpus": {"sentibench_dir": str(bench), "datasets": ["sc/sst2", "multifaced/pstance"], "max_texts": 4},
        "knowdist": {"max_tokens": 24, "drop": []},
        "icldist": {"n_items": 4, "max_shots": 2, "general_fraction": 0.25, "max_tokens": 12},
        "train": {"batch_size": 2, "max_length": 96, "max_steps": 2, "checkpoint_every": 1, "n_threads": 1,
                  "warmup_steps": 1},
    }
    for part, values in parts.items():
        if isinstance(values, dict):
            data[part] = {**data.get(part, {}), **values}
        else:
            data[part] = values
    return DistillConfig.from_dict(data, "test")


@pytest.fixture
def cfg_factory(tmp_path, fake_bench):
    return lambda **parts: make_config(tmp_path, fake_bench, **parts)


class ScriptedTeacher(Teacher):
    """A fast deterministic teacher; `fail` ids raise, `nonsense` answers garbage."""

    def __init__(self, fail=(), nonsense=False, fail_all=False):
        super().__init__(name="scripted", settings={"backend": "scripted"})
        self.fail, self.nonsense, self.fail_all, self.seen = set(fail), nonsense, fail_all, []

    def _generate(self, prompt, chat, max_tokens, stop):
        from senti_edge.errors import SentiEdgeError

        text = "".join(s.text for s in prompt)
        self.seen.append(text)
        if self.fail_all or any(f in text for f in self.fail):
            raise SentiEdgeError("teacher server failed 3 times: HTTP 500")
        if "JSON list" in text:
            return Reply('[{"aspect": "pasta", "category": "food quality", "opinion": "great", "polarity": "positive"}]', True)
        if self.nonsense:
            return Reply("zzz zzz zzz " * 30, False)
        pol = "negative" if any(n.lower() in text.lower() for n in NEG) else "positive"
        return Reply(f"The writer sounds {pol} about it overall here.\nOverall sentiment: {pol}", True)

    def _label_logits(self, prompt, labels):
        text = "".join(s.text for s in prompt).lower()
        neg = max(text.rfind(n.lower()) for n in NEG) > max(text.rfind(p.lower()) for p in POS)
        want = "negative" if neg else "positive"
        return [2.0 if lab.lower() == want else 0.0 for lab in labels]


@pytest.fixture(scope="session")
def student_dir(smollm2_path, tmp_path_factory):
    """SmolLM2 dequantized from its GGUF by transformers and saved as safetensors (once per session)."""
    pytest.importorskip("peft", reason="the training stack is not installed: pip install 'senti-edge[distill]'")
    import torch

    from senti_edge.distill.train import prepare_student

    torch.set_num_threads(1)
    return prepare_student(str(smollm2_path), tmp_path_factory.mktemp("student") / "student")


def build_tiny_student(out: Path) -> Path:
    """A random two-layer Llama (hidden size 32) with a byte-level BPE tokenizer trained on the
    fixture sentences and a ChatML template: built offline in a second, it trains in milliseconds
    a step, so multi-process training can be tested without any downloaded weights."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = ByteLevelBPETokenizer()
    corpus = POS + NEG + ["Overall sentiment: positive negative neutral. Label: Sentence: Answer: Opinions:"]
    bpe.train_from_iterator(corpus * 4, vocab_size=400, min_frequency=1, special_tokens=specials, show_progress=False)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                  additional_special_tokens=specials[1:])
    tok.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                         "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    LlamaForCausalLM(cfg).save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_student(tmp_path_factory) -> Path:
    pytest.importorskip("peft", reason="the training stack is not installed: pip install 'senti-edge[distill]'")
    return build_tiny_student(tmp_path_factory.mktemp("tiny") / "student")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a server or a process group the test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
