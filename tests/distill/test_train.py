"""Student training with the real SmolLM2: GGUF -> safetensors, LoRA steps, exact kill-and-resume."""

import csv
import json

import pytest

from senti_edge.distill import icldist
from senti_edge.distill.config import TrainConfig
from senti_edge.distill.corpus import load_corpus
from senti_edge.distill.pipeline import generate
from senti_edge.errors import SentiEdgeError

from .conftest import ScriptedTeacher

pytestmark = [pytest.mark.slow, pytest.mark.model]


def test_student_from_gguf(student_dir):
    from transformers import AutoTokenizer

    assert (student_dir / "model.safetensors").is_file()
    tok = AutoTokenizer.from_pretrained(str(student_dir))
    assert len(tok(" positive", add_special_tokens=False)["input_ids"]) == 1
    assert "<|im_start|>" in tok.chat_template
    # user text never turns into special tokens
    assert 1 not in tok("<|im_start|>", add_special_tokens=False, split_special_tokens=True)["input_ids"]


def _examples(cfg_factory, tmp_path):
    cfg = cfg_factory(out_dir=str(tmp_path / "gen"), icldist={"n_items": 8, "general_fraction": 0.25, "max_shots": 1})
    generate(cfg, "icldist", teacher=ScriptedTeacher())
    recs = [json.loads(x) for x in (tmp_path / "gen" / "icldist.jsonl").read_text().splitlines()]
    return icldist.examples(recs, load_corpus(cfg.corpus, cfg.seed), cfg)


def test_kill_and_resume_gives_identical_weights(student_dir, cfg_factory, tmp_path, capsys):
    from safetensors.torch import load_file

    from senti_edge.distill.train import train

    ex = _examples(cfg_factory, tmp_path)
    tcfg = TrainConfig(batch_size=2, max_length=80, max_steps=4, checkpoint_every=10, warmup_steps=1,
                       n_threads=1, lora_r=4, lora_alpha=8, lora_dropout=0.1)
    full = train(ex, base_dir=student_dir, run_dir=tmp_path / "full", cfg=tcfg, seed=3, kl_weight=1.0)
    assert full["complete"] and full["step"] == 4
    part = train(ex, base_dir=student_dir, run_dir=tmp_path / "part", cfg=tcfg, seed=3, kl_weight=1.0, stop_after=2)
    assert part == {"complete": False, "step": 2, "total_steps": 4}
    assert "2/4 [" in capsys.readouterr().err  # the step bar: where it stopped, of how many
    assert not (tmp_path / "part" / "adapter").exists()
    resumed = train(ex, base_dir=student_dir, run_dir=tmp_path / "part", cfg=tcfg, seed=3, kl_weight=1.0)
    assert resumed["complete"]
    a = load_file(str(tmp_path / "full" / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "part" / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and len(a) > 0
    assert all((a[k] == b[k]).all() for k in a)

    def losses(run):
        with open(tmp_path / run / "log.csv") as fh:
            return [(r["step"], r["loss"], r["kl"]) for r in csv.DictReader(fh)]

    assert losses("full") == losses("part") and len(losses("full")) == 4
    assert any(float(kl) > 0 for _, _, kl in losses("full"))

    # stage 2 may continue the stage-1 adapter instead of merging it
    one = TrainConfig(**{**tcfg.__dict__, "max_steps": 1})
    cont = train(ex, base_dir=student_dir, run_dir=tmp_path / "cont", cfg=one, seed=3, init_adapter=tmp_path / "full" / "adapter")
    c = load_file(str(tmp_path / "cont" / "adapter" / "adapter_model.safetensors"))
    assert c.keys() == a.keys() and cont["init_adapter"].endswith("adapter")
    assert any(not (c[k] == a[k]).all() for k in a)


def test_no_examples_is_an_error(student_dir, tmp_path):
    from senti_edge.distill.train import train

    with pytest.raises(SentiEdgeError, match="no training examples"):
        train([], base_dir=student_dir, run_dir=tmp_path / "r", cfg=TrainConfig())
    with pytest.raises(SentiEdgeError, match="could not load the student"):
        train([{"id": "x", "prompt": [], "chat": False, "response": "a"}], base_dir=tmp_path, run_dir=tmp_path / "r",
              cfg=TrainConfig())


def test_hf_teacher(student_dir):
    from senti_edge.distill.config import TeacherConfig
    from senti_edge.distill.teachers import make_teacher
    from senti_edge.runtime.prompts import Segment

    t = make_teacher(TeacherConfig(backend="hf", model=str(student_dir), n_threads=1))
    assert t.template == "chatml"
    reply = t.generate([Segment("Say hello.", True)], chat=True, max_tokens=4)
    assert isinstance(reply.text, str) and t.stats.completion_tokens <= 4
    logits = t.label_logits([Segment("Sentence: I love it\nLabel:", True)], ["positive", "negative"])
    assert len(logits) == 2 and all(isinstance(x, float) for x in logits)
    with pytest.raises(SentiEdgeError, match="could not load the teacher"):
        make_teacher(TeacherConfig(backend="hf", model="/nonexistent/dir"))


def test_batch_loss_matches_the_full_vocabulary_computation(student_dir, cfg_factory, tmp_path):
    """Projecting only target positions must give the loss of the plain full-logits formula."""
    import torch
    import torch.nn.functional as F

    from senti_edge.distill.train import batch_loss, collate, encode, load_student

    torch.set_num_threads(1)
    ex = _examples(cfg_factory, tmp_path)
    model, tok, _ = load_student(student_dir, TrainConfig(lora_r=4, lora_alpha=8, lora_dropout=0.0), seed=1)
    model.eval()
    items = encode(ex, tok, 96)[:4]
    assert any("kl_ids" in it for it in items)
    with torch.no_grad():
        loss, ce, kl = batch_loss(model, items, tok.eos_token_id, 1.0, torch.device("cpu"), torch)
        ids, mask, labels, weights = collate(items, tok.eos_token_id, torch)
        logits = model(input_ids=ids, attention_mask=mask).logits.float()[:, :-1]
        tgt = labels[:, 1:]
        tl = F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt.reshape(-1), ignore_index=-100,
                             reduction="none").view(tgt.shape)
        w = (tgt != -100).float() * weights[:, None]
        ref_ce = (tl * w).sum() / w.sum()
        ref_kl = torch.stack([
            (torch.tensor(it["kl_probs"]) * (torch.tensor(it["kl_probs"]).log()
                                             - F.log_softmax(logits[r, it["start"] - 1, it["kl_ids"]], -1))).sum()
            for r, it in enumerate(items) if "kl_ids" in it]).mean()
    assert abs(ce.item() - ref_ce.item()) < 1e-4 and abs(kl.item() - ref_kl.item()) < 1e-4
    assert abs(loss.item() - (ref_ce + ref_kl).item()) < 1e-4


def test_long_prompts_lose_their_middle_not_the_instruction(student_dir):
    from transformers import AutoTokenizer

    from senti_edge.distill.train import encode
    from senti_edge.runtime.prompts import Segment

    tok = AutoTokenizer.from_pretrained(str(student_dir))
    prompt = [Segment("Classify the sentiment of each sentence as one of: negative, positive.\n\n", True)]
    prompt += [Segment(f"Sentence: demo number {i} was fine\nLabel: positive\n\n", True) for i in range(40)]
    prompt += [Segment("Sentence: the final query text\nLabel:", True)]
    item = encode([{"id": "x", "prompt": prompt, "chat": False, "response": " negative"}], tok, 128)[0]
    text = tok.decode(item["ids"])
    assert len(item["ids"]) <= 128
    assert "Classify the sentiment" in text and text.rstrip().endswith(("negative", tok.eos_token))
    assert "the final query text\nLabel: negative" in text and "demo number 3 " not in text


def test_an_opinion_list_is_learnt_after_the_runtimes_reply_opening(student_dir):
    """`-t aspects` opens the assistant's turn with "Opinions:" and lets the model go on; an
    aspects example must be tokenised the same way, with the answer's loss after that opening."""
    from transformers import AutoTokenizer

    from senti_edge.distill.train import encode
    from senti_edge.runtime.prompts import ASPECTS_REPLY, build_aspects_prompt

    tok = AutoTokenizer.from_pretrained(str(student_dir))
    text, answer = "The pasta was great .", ' [{"aspect": "pasta", "category": "food quality", "opinion": "great", "polarity": "positive"}]'
    ex = {"id": "a", "prompt": build_aspects_prompt(text)[:-1], "chat": True, "reply": ASPECTS_REPLY, "response": answer}
    item = encode([ex], tok, 256)[0]
    runtime = "".join(s.text for s in build_aspects_prompt(text, "chatml"))
    assert tok.decode(item["ids"][:item["start"]]).endswith(runtime)
    assert tok.decode(item["ids"][item["start"]:]) == answer + tok.eos_token


def test_a_student_made_with_an_adapter_keeps_a_copy_of_it(tmp_path, monkeypatch):
    """Stage 3's LoRA is a change to this student, so it ships joined with this adapter
    (`quantize.stack --run`), whatever the registry ships by then."""
    from types import SimpleNamespace

    from senti_edge.distill import train as train_mod
    from senti_edge.runtime import fetch

    class Saved:
        config = SimpleNamespace()

        def save_pretrained(self, path, **_):
            path.mkdir(parents=True, exist_ok=True)
            (path / "model.safetensors").write_bytes(b"w")
            (path / "config.json").write_text("{}")

    adapter = tmp_path / "shipped.lora.gguf"
    adapter.write_bytes(b"the adapter of the day")
    monkeypatch.setattr(train_mod, "load_gguf_spec", lambda spec: (Saved(), Saved()))
    monkeypatch.setattr(fetch, "resolve", lambda spec: SimpleNamespace(adapter=adapter if "+" in spec else None))
    out = train_mod.prepare_student("base.gguf+shipped.lora.gguf", tmp_path / "with")
    assert (out / train_mod.STUDENT_ADAPTER).read_bytes() == b"the adapter of the day"
    out = train_mod.prepare_student("base.gguf", tmp_path / "without")
    assert not (out / train_mod.STUDENT_ADAPTER).exists()
