"""Training-step speed of the student, alternatives side by side in one run:
`python benchmarks/train_speed.py [--student smollm2-135m] [--threads 1] [--out FILE]`.

Each setting trains the same LoRA on the same random batch (8 x 256 tokens by default, loss on
the last eighth) through `batch_loss`, so the figures compare float32 with bf16 autocast, and
LoRA dropout on and off, as the trainer runs them. Medians over `--steps` steps after one
warm-up step. The bf16 settings run only where the trainer would use bf16 (`train.use_amp`: a
CPU with AVX512-BF16/AMX or a bf16 GPU); elsewhere torch emulates bf16 and one step of the
default batch took over 6 minutes on an AMD EPYC, so they are listed as skipped unless `--all`.
It drives the trainer's own functions (`senti_edge.distill.train`), so it measures what training runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

SETTINGS = [("float32, dropout 0.05", False, 0.05), ("bf16 autocast, dropout 0.05", True, 0.05),
            ("bf16 autocast, dropout 0", True, 0.0)]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--student", default="smollm2-135m")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8, help="sequences per step")
    ap.add_argument("--length", type=int, default=256, help="tokens per sequence")
    ap.add_argument("--all", action="store_true", help="also run bf16 where this CPU has no fast bf16")
    ap.add_argument("--out")
    args = ap.parse_args(argv)

    from senti_edge.distill import TrainConfig
    from senti_edge.distill.train import batch_loss, load_student, prepare_student, use_amp
    from senti_edge.hfstack import load_stack
    from senti_edge.runtime.cpu import machine

    torch = load_stack()[0]
    torch.set_num_threads(args.threads)
    fast_bf16 = use_amp(TrainConfig(), torch.device("cpu"), torch)
    n_tok = args.batch * args.length
    with tempfile.TemporaryDirectory() as td:
        base = prepare_student(args.student, Path(td) / "student")
        gen = torch.Generator().manual_seed(0)
        ids = torch.randint(100, 10000, (args.batch, args.length), generator=gen).tolist()
        items = [{"ids": row, "start": args.length - max(1, args.length // 8), "weight": 1.0} for row in ids]
        rows = []
        for name, amp, dropout in SETTINGS:
            if amp and not (fast_bf16 or args.all):
                rows.append({"setting": name, "skipped": "no fast bf16 on this CPU (the trainer uses float32 here)"})
                print(f"{name:<30} skipped: no fast bf16 on this CPU", flush=True)
                continue
            model, tok, _ = load_student(base, TrainConfig(lora_dropout=dropout), seed=0)
            model.train()
            opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
            secs = []
            for _ in range(args.steps + 1):
                t0 = time.perf_counter()
                loss, _, _ = batch_loss(model, items, tok.eos_token_id, 0.0, torch.device("cpu"), torch, amp)
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                secs.append(time.perf_counter() - t0)
            s = statistics.median(secs[1:])
            rows.append({"setting": name, "s_per_step": round(s, 3), "tokens_per_s": round(n_tok / s, 1)})
            print(f"{name:<30} {s:6.2f} s/step  {n_tok / s:7.1f} tokens/s", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"student": args.student, "threads": args.threads, "batch": [args.batch, args.length],
                                               "machine": machine(args.threads), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
