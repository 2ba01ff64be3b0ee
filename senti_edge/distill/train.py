"""Student training: LoRA on the student, a direct loop in the style of nanoGPT, exact resume.

- The student comes from a Hugging Face directory or a GGUF; a GGUF is dequantized by
  transformers (`gguf_file=`) and saved once as safetensors (`prepare_student`), since a model
  loaded from GGUF refuses `save_pretrained` and cannot take a bitsandbytes config.
- Loss on the response tokens only (prompt tokens are masked), weighted per example (QC
  down-weighting), plus `kl_weight` x KL(teacher || student) over the label words' first
  tokens where the teacher's label distribution is known.
- Length-grouped batches: each epoch shuffles with `seed + epoch`, sorts within mega-batches by
  length and shuffles the batches, so step s always sees the same batch.
- Every `checkpoint_every` steps: adapter, optimizer, scheduler, step and RNG states go into
  `checkpoints/step-N/`, and `checkpoints/latest.json` points at it; a rerun resumes from there
  and ends with the same weights as an uninterrupted run. `log.csv` has loss and tokens/s.
- `accelerate launch` runs the same loop in several processes (one per GPU, or gloo on CPU with
  `--cpu`): each process takes every n-th item of the same global batch, the loss goes through
  the DDP-wrapped module's forward (`TargetLM`), so gradients are all-reduced; each share is
  normalised by the whole batch's weights, so n processes compute the single-process gradient.
  Only the main process writes files; a checkpoint holds every process's RNG state.
"""

from __future__ import annotations

import csv
import functools
import logging
import math
import os
import random
import shutil
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from ..errors import SentiEdgeError
from ..hfstack import load_gguf_spec, load_stack
from ..jsonl import write_json
from .config import TrainConfig
from ..runtime.chat import detect_template, wrap_chat

log = logging.getLogger(__name__)

LOG_FIELDS = ["step", "epoch", "loss", "ce", "kl", "lr", "tokens", "seconds", "tokens_per_s"]


def process_state():
    """accelerate's view of the processes of this run (`accelerate launch` or `torchrun` start
    several). On CPU (no CUDA here, or `--cpu`) it joins them with gloo; that flag must be given
    the first time the shared state is made, so every caller goes through here."""
    torch = load_stack()[0]
    from accelerate import PartialState

    cpu = not torch.cuda.is_available() or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    return PartialState(cpu=cpu)


# -- student ---------------------------------------------------------------------------------

def is_hf_dir(spec: str) -> bool:
    return Path(spec).expanduser().is_dir() and (Path(spec).expanduser() / "config.json").is_file()


STUDENT_ADAPTER = "student.lora.gguf"


def prepare_student(spec: str, out: Path) -> Path:
    """An HF directory for the student: `spec` itself, or a GGUF dequantized into `out`. A spec
    with an adapter (`BASE+ADAPTER.gguf`, or a registry entry applied at load time) is merged
    first (`runtime.build`), so the student is the model that spec names, not its bare base; a
    copy of that adapter stays in `out` (`STUDENT_ADAPTER`), because a LoRA trained on this
    student ships joined with it (`quantize.stack --run`), and the registry's adapter may have
    changed by then (stage 3 v3 was once joined with an older one)."""
    if is_hf_dir(spec):
        return Path(spec).expanduser()
    if (out / "model.safetensors").is_file() and (out / "config.json").is_file():
        return out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    from ..runtime.fetch import resolve

    adapter = resolve(spec).adapter
    model, tok = load_gguf_spec(spec)
    # A GGUF-loaded model refuses save_pretrained; the weights are plain fp32 tensors by now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    if adapter is not None:
        shutil.copyfile(adapter, tmp / STUDENT_ADAPTER)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def check_qlora(cfg: TrainConfig, device: str, torch) -> None:
    """QLoRA needs a CUDA device and bitsandbytes; refuse before loading anything rather than
    fall back to a different run than the config asks for (or fail deep inside bitsandbytes)."""
    if not cfg.qlora:
        return
    if not str(device).startswith("cuda") or not torch.cuda.is_available():
        raise SentiEdgeError("train.qlora = true needs a CUDA GPU (bitsandbytes 4-bit) and this process has none; "
                             "set train.qlora = false to train plain LoRA on CPU")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise SentiEdgeError("train.qlora = true needs bitsandbytes: pip install 'senti-edge[distill]'") from None


def load_student(base_dir: Path, cfg: TrainConfig, *, adapter: Path | None = None, trainable_adapter: bool = False,
                 seed: int = 0, device: str | None = None):
    """(model with a trainable LoRA, tokenizer, device). `device`: the process's own device
    (`Accelerator.device`); by default CUDA when present."""
    torch, transformers, peft = load_stack()
    device = str(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    check_qlora(cfg, device, torch)
    kwargs = {"dtype": getattr(torch, cfg.dtype)}
    if cfg.qlora:
        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
        kwargs["device_map"] = {"": torch.device(device).index or 0}  # this process's GPU
    if not (Path(base_dir) / "config.json").is_file():
        raise SentiEdgeError(f"could not load the student from {base_dir}: no config.json; give a Hugging Face model directory")
    try:
        tok = transformers.AutoTokenizer.from_pretrained(str(base_dir))
        model = transformers.AutoModelForCausalLM.from_pretrained(str(base_dir), **kwargs)
    except (OSError, ValueError) as exc:
        raise SentiEdgeError(f"could not load the student from {base_dir}: {exc}") from None
    except RuntimeError as exc:  # out of memory among others
        raise SentiEdgeError(f"the student {base_dir} does not fit: {exc}; try train.qlora on a GPU, a smaller student or batch") from None
    if "quantization_config" in kwargs:
        model = peft.prepare_model_for_kbit_training(model)
    elif device != "cpu":
        model = model.to(device)
    torch.manual_seed(seed)
    if adapter is not None and trainable_adapter:
        model = peft.PeftModel.from_pretrained(model, str(adapter), is_trainable=True)
    else:
        lcfg = peft.LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                               target_modules=cfg.target_modules[0] if cfg.target_modules == ["all-linear"] else cfg.target_modules,
                               task_type="CAUSAL_LM")
        try:
            model = peft.get_peft_model(model, lcfg)
        except ValueError as exc:
            raise SentiEdgeError(f"LoRA could not be applied with target_modules={cfg.target_modules}: {exc}") from None
    return model, tok, device


def merge_adapter(base_dir: Path, adapter: Path, out: Path) -> Path:
    """Base + adapter merged into plain weights, saved as an HF directory (stage 2's base)."""
    if (out / "model.safetensors").is_file():
        return out
    torch, transformers, peft = load_stack()
    model = transformers.AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    model = peft.PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    transformers.AutoTokenizer.from_pretrained(str(base_dir)).save_pretrained(tmp)
    os.replace(tmp, out)
    return out


# -- data ------------------------------------------------------------------------------------

KEEP_HEAD = 64  # prompt tokens kept from the start when a long prompt is cut (the instruction)


def label_ids(tok, words: Sequence[str]) -> list[int]:
    """Each label word's first token after a space: the columns a label answer is read from."""
    return [tok(" " + w, add_special_tokens=False)["input_ids"][0] for w in words]


def encode(examples: Sequence[dict], tok, max_length: int) -> list[dict]:
    """Token ids, the index where the response starts, and the KL position and label ids."""
    template = detect_template(tok.chat_template)
    bos = tok("", add_special_tokens=True)["input_ids"]
    eos = tok.eos_token_id
    out = []
    for ex in examples:
        segs = wrap_chat(ex["prompt"], template, ex.get("reply", "")) if ex["chat"] else ex["prompt"]
        prompt = list(bos)
        for s in segs:
            prompt += tok(s.text, add_special_tokens=False, split_special_tokens=not s.trusted)["input_ids"]
        resp = tok(ex["response"], add_special_tokens=False)["input_ids"] + [eos]
        resp = resp[: max_length - 8]
        room = max_length - len(resp)
        if len(prompt) > room:  # cut the middle (demonstrations): keep the instruction and the query
            head = min(KEEP_HEAD, room // 4)
            prompt = prompt[:head] + prompt[len(prompt) - (room - head):]
        item = {"id": ex["id"], "ids": prompt + resp, "start": len(prompt), "weight": float(ex.get("weight", 1.0))}
        if ex.get("teacher_probs"):
            first = label_ids(tok, ex["label_words"])
            if len(set(first)) == len(first):
                item["kl_ids"] = first
                item["kl_probs"] = ex["teacher_probs"]
        out.append(item)
    return out


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int, group: bool) -> list[list[int]]:
    rng = random.Random(seed * 100_003 + epoch)
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    if group:
        mega = batch_size * 16
        idx = [i for m in range(0, len(idx), mega) for i in sorted(idx[m:m + mega], key=lambda i: -lengths[i])]
    batches = [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(items: Sequence[dict], pad_id: int, torch):
    width = max(len(it["ids"]) for it in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    labels = torch.full((len(items), width), -100, dtype=torch.long)
    weights = torch.tensor([it["weight"] for it in items], dtype=torch.float32)
    for r, it in enumerate(items):
        n = len(it["ids"])
        ids[r, :n] = torch.tensor(it["ids"])
        mask[r, :n] = 1
        labels[r, it["start"]:n] = ids[r, it["start"]:n]
    return ids, mask, labels, weights


@functools.cache
def _target_lm_class():
    torch = load_stack()[0]

    class TargetLM(torch.nn.Module):
        """The student's decoder, then its output layer on the target positions only (a label
        answer is one or two tokens of a few hundred, so this saves most of the vocabulary
        projection on CPU). It is the module `accelerate` wraps in DDP: everything that needs a
        gradient runs inside one forward call, which is what makes DDP all-reduce gradients."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def base(self):
            return self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model

        def forward(self, ids, mask, sel):
            base = self.base()
            hidden = base.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
            return base.get_output_embeddings()(hidden[sel])

    return TargetLM


def target_lm(model):
    """`model` as a TargetLM: unchanged if it is one already (or a DDP wrapper of one)."""
    cls = _target_lm_class()
    return model if isinstance(getattr(model, "module", model), cls) else cls(model)


def batch_norm(items, kl_weight: float) -> tuple[float, int]:
    """(total cross-entropy weight, rows with a KL target) of a whole batch, counted as
    `batch_loss` counts them: each process divides its share by these, so the shares add up."""
    w = sum(it["weight"] * (len(it["ids"]) - max(it["start"], 1)) for it in items)
    return float(w), sum(1 for it in items if "kl_ids" in it) if kl_weight > 0 else 0


def batch_loss(model, items, pad_id, kl_weight, device, torch, amp: bool = False, norm: tuple[float, int] | None = None):
    """Weighted cross-entropy on the response tokens plus the KL term on label words.

    `model` is the student (wrapped in `TargetLM` here if it is not already). `norm`, from
    `batch_norm` of the whole global batch, makes this the share of `items` in that batch's
    loss; by default `items` is the whole batch.
    """
    F = torch.nn.functional
    ids, mask, labels, weights = (t.to(device) for t in collate(items, pad_id, torch))
    net = target_lm(model)
    targets = labels[:, 1:]
    sel = targets != -100
    with torch.autocast(device.type if hasattr(device, "type") else str(device), dtype=torch.bfloat16, enabled=amp):
        logits = net(ids, mask, sel).float()
    cap = getattr(getattr(net, "module", net).base().config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    tok_loss = F.cross_entropy(logits, targets[sel], reduction="none")
    w = weights[:, None].expand_as(targets)[sel]
    rows = [r for r, it in enumerate(items) if "kl_ids" in it] if kl_weight > 0 else []
    w_total, kl_total = norm if norm is not None else (w.sum().clamp(min=1e-8), len(rows))
    ce = (tok_loss * w).sum() / (max(w_total, 1e-8) if norm is not None else w_total)
    kl = torch.zeros((), device=device)
    if rows:
        counts = sel.sum(dim=1)
        first = torch.cumsum(counts, 0) - counts  # row r's first target (position start - 1) in `logits`
        terms = []
        for r in rows:
            it = items[r]
            student = F.log_softmax(logits[first[r], it["kl_ids"]], dim=-1)
            teacher = torch.tensor(it["kl_probs"], device=device).clamp(min=1e-12)
            terms.append((teacher * (teacher.log() - student)).sum())
        kl = torch.stack(terms).sum() / kl_total
    return ce + kl_weight * kl, ce, kl


def use_amp(cfg, device, torch) -> bool:
    """bf16 autocast: on where the hardware has fast bf16 (AVX512-BF16/AMX CPUs, recent GPUs).
    Measured here (`python benchmarks/train_speed.py`): 2.3x the tokens/s of float32 on CPU."""
    if cfg.amp == "off" or cfg.dtype == "bfloat16":
        return False
    if str(device).startswith("cuda"):
        ok = torch.cuda.is_bf16_supported()
    else:
        ok = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    if cfg.amp == "bf16" and not ok:
        log.warning("train.amp = bf16 but this device has no fast bf16; training in float32")
    return ok


# -- checkpoints -----------------------------------------------------------------------------

def rng_state(torch) -> dict:
    return {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(st: dict, torch) -> None:
    torch.set_rng_state(st["torch"])
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    if st.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def _save_checkpoint(run: Path, step: int, model, opt, sched, keep: int, torch, peft, rngs: list[dict]) -> None:
    """Called by the main process only; `rngs` holds every process's RNG state, in rank order."""
    from safetensors.torch import save_file

    ckdir = run / "checkpoints"
    final = ckdir / f"step-{step:07d}"
    tmp = ckdir / f".step-{step:07d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    state = {k: v.detach().cpu().contiguous() for k, v in peft.get_peft_model_state_dict(model).items()}
    save_file(state, str(tmp / "adapter.safetensors"))
    torch.save({"step": step, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "rng": rngs},
               tmp / "trainer.pt")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    write_json(ckdir / "latest.json", {"step": step, "dir": final.name, "processes": len(rngs)})
    for old in sorted(p for p in ckdir.glob("step-*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(run: Path, model, opt, sched, torch, peft, rank: int = 0, world: int = 1) -> int:
    import json

    from safetensors.torch import load_file

    latest = run / "checkpoints" / "latest.json"
    if not latest.exists():
        return 0
    info = json.loads(latest.read_text())
    ck = run / "checkpoints" / info["dir"]
    peft.set_peft_model_state_dict(model, load_file(str(ck / "adapter.safetensors")))
    st = torch.load(ck / "trainer.pt", weights_only=False)
    opt.load_state_dict(st["optimizer"])
    sched.load_state_dict(st["scheduler"])
    rngs = st.get("rng") or [{"torch": st["torch_rng"], "python": st["python_rng"], "numpy": st["numpy_rng"],
                              "cuda": st.get("cuda_rng")}]  # a checkpoint from before per-process states
    if len(rngs) != world and rank == 0:
        log.warning("%s was written by %d process(es), resumed by %d: the weights carry on, but dropout draws "
                    "differ from an uninterrupted run", ck, len(rngs), world)
    _set_rng_state(rngs[rank] if len(rngs) == world else rngs[0], torch)
    return int(st["step"])


def _trim_log(path: Path, step: int) -> None:
    """Keep only log rows up to the resumed step, so a resumed run logs each step once."""
    if not path.exists():
        return
    with open(path, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= step]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, LOG_FIELDS)
        w.writeheader()
        w.writerows(rows)


# -- the loop --------------------------------------------------------------------------------

def train(examples: Sequence[dict], *, base_dir: Path, run_dir: Path, cfg: TrainConfig, seed: int = 42,
          kl_weight: float = 0.0, init_adapter: Path | None = None, stop_after: int = 0) -> dict:
    """Train a LoRA on `examples`; the adapter ends in `run_dir/adapter`. Resumes from checkpoints.

    `stop_after` > 0 stops (with a checkpoint) once that global step is reached, as a kill would.
    Returns the run state (also written as `run_dir/state.json`). Under `accelerate launch` every
    process runs this with the same arguments.
    """
    torch, transformers, peft = load_stack()
    if not examples:
        raise SentiEdgeError(f"no training examples for {run_dir.name}: every teacher record was dropped or none exist; see the QC report")
    if cfg.n_threads:
        torch.set_num_threads(cfg.n_threads)
    from accelerate import Accelerator
    from accelerate.utils import gather_object

    procs = process_state()
    acc = Accelerator(cpu=procs.device.type == "cpu")  # one process, or one of `accelerate launch --num_processes N`
    world, rank, main = acc.num_processes, acc.process_index, acc.is_main_process
    if world != int(os.environ.get("WORLD_SIZE", "1")):
        raise SentiEdgeError(f"this process is one of {os.environ['WORLD_SIZE']} started by a launcher, but accelerate "
                             f"joined {world}; each would train alone and overwrite the others' files. Launch with "
                             "`accelerate launch --multi_gpu --num_processes N` (on CPU too) or `torchrun --nproc_per_node N`")
    if cfg.batch_size < world:
        raise SentiEdgeError(f"train.batch_size = {cfg.batch_size} is smaller than the {world} processes; raise it")
    run_dir.mkdir(parents=True, exist_ok=True)
    model, tok, _ = load_student(base_dir, cfg, adapter=init_adapter, trainable_adapter=init_adapter is not None, seed=seed,
                                 device=str(acc.device))
    data = encode(examples, tok, cfg.max_length)
    lengths = [len(d["ids"]) for d in data]
    per_epoch = math.ceil(len(data) / cfg.batch_size)
    total = cfg.max_steps or cfg.epochs * per_epoch
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warm = min(cfg.warmup_steps, max(1, total // 10))

    def lr_lambda(s: int) -> float:
        if s < warm:
            return (s + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    net, opt = acc.prepare(target_lm(model), opt)
    device = acc.device
    amp = use_amp(cfg, device, torch)
    step = _load_checkpoint(run_dir, model, opt, sched, torch, peft, rank, world)
    if step:
        log.info("resuming %s at step %d of %d", run_dir.name, step, total)
    log_path = run_dir / "log.csv"
    if main:
        _trim_log(log_path, step)
    new_log = not log_path.exists()
    fh = open(log_path if main else os.devnull, "a", newline="")
    writer = csv.DictWriter(fh, LOG_FIELDS)
    if new_log and main:
        writer.writeheader()
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    net.train()
    batches_epoch, batches = -1, []
    last = {}
    # steps, rate and ETA on stderr, as the bench and teacher generation show theirs (log.csv keeps the numbers)
    bar = tqdm(total=total, initial=step, desc=run_dir.name, unit="step", disable=not main,
               dynamic_ncols=True)
    try:
        while step < total:
            epoch, b = divmod(step, per_epoch)
            if epoch != batches_epoch:
                batches, batches_epoch = epoch_batches(lengths, cfg.batch_size, seed, epoch, cfg.group_by_length), epoch
            batch = [data[i] for i in batches[b]]
            # every world-th item; a process left without one (a short last batch) runs a zero-weight
            # item, since DDP needs every process in every step
            items = batch[rank::world] or [{"ids": batch[0]["ids"], "start": batch[0]["start"], "weight": 0.0}]
            t0 = time.perf_counter()
            try:
                loss, ce, kl = batch_loss(net, items, pad_id, kl_weight, device, torch, amp, batch_norm(batch, kl_weight))
                parts = torch.stack([loss, ce, kl]).detach()
                parts = acc.reduce(parts, "sum") if world > 1 else parts  # the whole batch's loss, as one process has it
                if not torch.isfinite(parts[0]):
                    raise SentiEdgeError(f"the loss became {parts[0].item()} at step {step + 1}; lower train.lr")
                opt.zero_grad(set_to_none=True)
                acc.backward(loss * world)  # DDP averages gradients over processes; the shares must add up
            except torch.OutOfMemoryError:
                raise SentiEdgeError(
                    f"the student does not fit in memory at step {step + 1} (batch of {len(items)} x "
                    f"{max(len(it['ids']) for it in items)} tokens); lower train.batch_size or train.max_length "
                    "(or use train.qlora on a GPU) and rerun: it resumes from the last checkpoint") from None
            if cfg.grad_clip:
                acc.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            sched.step()
            step += 1
            secs = time.perf_counter() - t0
            ntok = sum(len(it["ids"]) for it in batch)
            last = {"step": step, "epoch": epoch, "loss": round(parts[0].item(), 6), "ce": round(parts[1].item(), 6),
                    "kl": round(parts[2].item(), 6), "lr": sched.get_last_lr()[0], "tokens": ntok,
                    "seconds": round(secs, 4), "tokens_per_s": round(ntok / secs, 2)}
            writer.writerow(last)
            fh.flush()
            bar.set_postfix(loss=f"{last['loss']:.3f}", refresh=False)
            bar.update(1)
            if step % cfg.checkpoint_every == 0 or step == total or step == stop_after:
                rngs = gather_object([rng_state(torch)]) if world > 1 else [rng_state(torch)]
                if main:
                    _save_checkpoint(run_dir, step, model, opt, sched, cfg.keep_checkpoints, torch, peft, rngs)
                acc.wait_for_everyone()
            if stop_after and step >= stop_after and step < total:
                return {"complete": False, "step": step, "total_steps": total}
    finally:
        bar.close()
        fh.close()
    state = {"complete": True, "step": step, "total_steps": total, "examples": len(data), "base_model": str(base_dir),
             "init_adapter": str(init_adapter) if init_adapter else None, "processes": world, "last": last}
    if main:
        model.save_pretrained(run_dir / "adapter.tmp")
        shutil.rmtree(run_dir / "adapter", ignore_errors=True)
        os.replace(run_dir / "adapter.tmp", run_dir / "adapter")
        write_json(run_dir / "state.json", state)
        plot_log(log_path)
    acc.wait_for_everyone()
    return state


def plot_log(path: Path) -> None:
    """loss.png beside log.csv, when matplotlib is installed (the `bench` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([int(r["step"]) for r in rows], [float(r["loss"]) for r in rows], label="loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    ax2.plot([int(r["step"]) for r in rows], [float(r["tokens_per_s"]) for r in rows], color="grey", alpha=0.5)
    ax2.set_ylabel("tokens/s")
    fig.tight_layout()
    fig.savefig(path.with_name("loss.png"))
    plt.close(fig)
