"""Runtime speed benchmark: `python benchmarks/runtime_speed.py -m MODEL [-m MODEL ...] [--out FILE]`.

Measures, on this machine and in one run for every model given, with medians over repeats:
- llama.cpp's raw prompt-processing rate of the same model files (one 512-token batch from an
  empty cache, adapter applied if the model has one): the ceiling;
- `analyze` throughput on 1,000 tweet-length and 100 review-length texts, for several
  sequence-batching settings (`n_seq`), and its ratio to what the raw rate allows for the
  tokens each text adds (the shared prefix is cached, so it is not counted);
- cold start of `senti-edge analyze` on a one-line file (a fresh process), against model load;
- peak RSS of a fresh `senti-edge analyze` process on the 1,000 short texts.

Models are passed by registry name (or path), exactly as `analyze -m` takes them, so a distilled
model is measured with its adapter or as its merged build, whichever the registry ships.
Texts are generated from a fixed seed (no data set needed), so runs are comparable; `make_texts`
also makes the input of `memory.py` and test texts. Everything goes through the public API
(`senti_edge.Engine`, `senti_edge.Analyzer`), as `analyze` does.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from senti_edge import Analyzer, Engine
from senti_edge.jsonl import write_json
from senti_edge.runtime.cpu import machine

SUBJECTS = ["the phone", "this laptop", "the hotel", "our waiter", "the new update", "the battery", "customer support",
            "the movie", "the pasta", "delivery", "the screen", "the app", "the room", "the soundtrack", "the price"]
VERBS = ["is", "was", "seems", "felt", "turned out", "has been", "looks"]
ADJS = ["amazing", "terrible", "fine", "slow", "gorgeous", "broken", "overpriced", "perfect", "okay", "awful",
        "surprisingly good", "disappointing", "loud", "friendly", "rude", "fast", "confusing", "great value"]
TAILS = ["honestly", "to be fair", "after a week", "for the money", "as expected", "again", "lol", "#fail", "!!", "100%"]


def make_texts(n: int, sentences: int, seed: int) -> list[str]:
    rng = random.Random(seed)

    def sentence() -> str:
        s = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(ADJS)}"
        if rng.random() < 0.5:
            s += f" and {rng.choice(ADJS)}"
        if rng.random() < 0.4:
            s += f", {rng.choice(TAILS)}"
        return s[0].upper() + s[1:] + "."

    return [" ".join(sentence() for _ in range(sentences)) for _ in range(n)]


def raw_prompt_rate(engine: Engine, text: str, repeats: int) -> float:
    """tokens/s for one n_batch-token prompt evaluated from an empty cache (llama.cpp's pp rate)."""
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = engine.eval_prompt(text)
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def throughput(model: str, texts: list[str], n_seq: int, threads: int, repeats: int) -> dict:
    eng = Engine(model, n_threads=threads, n_seq=n_seq)
    az = Analyzer(engine=eng)
    az.classify(texts[:8])  # warm up; the prefix is now cached
    times, tokens = [], 0
    for _ in range(repeats):
        before = eng.stats.prompt_tokens
        t0 = time.perf_counter()
        az.classify(texts)
        times.append(time.perf_counter() - t0)
        tokens = eng.stats.prompt_tokens - before
    eng.close()
    t = statistics.median(times)
    return {"n_seq": n_seq, "texts": len(texts), "seconds": t, "texts_per_s": len(texts) / t,
            "tokens_per_text": tokens / len(texts)}


def cold_start(model: str, threads: int, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        one = Path(d) / "one.txt"
        one.write_text("The battery lasts two full days.\n")
        cmd = [sys.executable, "-m", "senti_edge", "analyze", str(one), "-m", model, "--threads", str(threads), "-q", "-o", "jsonl"]
        walls = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            walls.append(time.perf_counter() - t0)
        load_cmd = [sys.executable, "-c",
                    "import sys,time;from senti_edge import Engine;"
                    "t=time.perf_counter();Engine(sys.argv[1],n_threads=1);print(time.perf_counter()-t)", model]
        loads = [float(subprocess.run(load_cmd, check=True, capture_output=True, text=True).stdout) for _ in range(repeats)]
        imp = [sys.executable, "-X", "importtime", "-c", "import senti_edge.cli"]
        torch_loaded = "torch" in subprocess.run(imp, capture_output=True, text=True).stderr
    return {"cold_start_s": statistics.median(walls), "model_load_s": statistics.median(loads),
            "overhead_s": statistics.median(walls) - statistics.median(loads), "cli_imports_torch": torch_loaded}


def peak_rss_mb(model: str, texts: list[str], threads: int) -> float:
    """Peak RSS of a fresh analyze process (ru_maxrss of a child that runs nothing else)."""
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "short.txt"
        f.write_text("\n".join(texts) + "\n")
        code = ("import resource,subprocess,sys;"
                "subprocess.run([sys.executable,'-m','senti_edge','analyze',sys.argv[1],'-m',sys.argv[2],'--threads',sys.argv[3],'-q','-o','jsonl'],"
                "check=True,stdout=subprocess.DEVNULL);"
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        out = subprocess.run([sys.executable, "-c", code, str(f), model, str(threads)], check=True, capture_output=True, text=True)
    return int(out.stdout) / 1024


def measure(model: str, short: list[str], long: list[str], n_seqs: list[int], threads: int, repeats: int) -> dict:
    with Engine(model, n_threads=threads) as eng:
        raw = raw_prompt_rate(eng, " ".join(long), repeats + 2)
        path, adapter, extra = eng.ref.path, eng.ref.adapter, eng.extra_bufts
    # The other buffer choice, for the side-by-side (only where the probe found it safe to try).
    raw_other = None
    if extra:
        with Engine(model, n_threads=threads, extra_bufts=False) as eng:
            raw_other = raw_prompt_rate(eng, " ".join(long), repeats + 2)
    rows = []
    for name, texts in (("short (tweet)", short), ("long (review)", long)):
        for n_seq in n_seqs:
            r = throughput(model, texts, n_seq, threads, repeats)
            r["set"] = name
            r["allowed_texts_per_s"] = raw / r["tokens_per_text"]
            r["ratio"] = r["texts_per_s"] / r["allowed_texts_per_s"]
            rows.append(r)
            print(f"{model}: {name:14} n_seq={n_seq:<3} {r['texts_per_s']:7.1f} texts/s  "
                  f"({r['tokens_per_text']:.0f} tok/text, ratio {r['ratio']:.2f})", file=sys.stderr)
    size = path.stat().st_size + (adapter.stat().st_size if adapter else 0)
    return {"model": model, "file": path.name, "adapter": adapter.name if adapter else None, "size_mb": size / 1e6,
            "extra_bufts": extra, "raw_prompt_tok_per_s": raw, "raw_prompt_tok_per_s_without_extra_bufts": raw_other,
            "throughput": rows, **cold_start(model, threads, repeats),
            "peak_rss_mb": peak_rss_mb(model, short, threads)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", action="append", help="registry name or .gguf path; repeat to compare  [default: senti-smollm2-135m]")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-seq", default="1,4,16", help="comma-separated n_seq settings to compare")
    ap.add_argument("--short", type=int, default=1000)
    ap.add_argument("--long", type=int, default=100)
    ap.add_argument("--out", type=Path, help="also write the results as JSON")
    args = ap.parse_args(argv)

    short = make_texts(args.short, 1, seed=1)
    long = make_texts(args.long, 12, seed=2)
    n_seqs = [int(x) for x in args.n_seq.split(",")]
    models = [measure(m, short, long, n_seqs, args.threads, args.repeats) for m in args.model or ["senti-smollm2-135m"]]
    result = {"machine": machine(args.threads), "threads": args.threads, "repeats": args.repeats, "models": models}
    if args.out:
        write_json(args.out, result)
    print(render(result))


def render(r: dict) -> str:
    m = r["machine"]
    lines = [
        f"Machine: {m['cpu']} ({', '.join(m['features']) or 'no listed SIMD features'}), {m['cores']} cores, "
        f"{r['threads']} threads; medians of {r['repeats']} runs.",
        "",
        "| model | size MB | raw tok/s | texts | n_seq | texts/s | tokens/text | allowed by raw rate | ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for mod in r["models"]:
        for t in mod["throughput"]:
            lines.append(f"| {mod['model']} | {mod['size_mb']:.0f} | {mod['raw_prompt_tok_per_s']:.0f} | {t['texts']} {t['set']} | "
                         f"{t['n_seq']} | {t['texts_per_s']:.1f} | {t['tokens_per_text']:.0f} | "
                         f"{t['allowed_texts_per_s']:.1f} | {t['ratio']:.2f} |")
    lines += ["", "| model | extra buffer types (this CPU's decision) | raw tok/s with them | raw tok/s without |", "|---|---|---|---|"]
    for mod in r["models"]:
        other = mod.get("raw_prompt_tok_per_s_without_extra_bufts")
        lines.append(f"| {mod['model']} | {'on' if mod['extra_bufts'] else 'off'} | "
                     f"{mod['raw_prompt_tok_per_s']:.0f} | {f'{other:.0f}' if other else '-'} |" if mod["extra_bufts"] else
                     f"| {mod['model']} | off | - | {mod['raw_prompt_tok_per_s']:.0f} |")
    lines += ["", f"| model | cold start s | model load s | beyond load s | CLI imports torch | peak RSS MB ({r['models'][0]['throughput'][0]['texts']:,} short) |",
              "|---|---|---|---|---|---|"]
    for mod in r["models"]:
        lines.append(f"| {mod['model']} | {mod['cold_start_s']:.2f} | {mod['model_load_s']:.2f} | {mod['overhead_s']:.2f} | "
                     f"{'yes' if mod['cli_imports_torch'] else 'no'} | {mod['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
