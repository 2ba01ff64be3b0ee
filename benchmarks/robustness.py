"""Does what is written around an opinion change the label? Held-back and trained kinds, side by side.

    python benchmarks/robustness.py -m senti-smollm2-135m -m runs/v1.Q8_0.gguf -b tfidf -b vader \
        --data-dir ../shared/sentibench --datasets sst2,twitter --n 100 --out results/robustness.json

For the first N val texts of each polarity set, each model labels the clean text and perturbed
copies; a flip is a changed label. Every labeller goes through its public path: `Analyzer` with
the dataset's runtime task, defaults as `senti-edge analyze` (zero-shot, shipped calibration),
or a baseline fitted on the dataset's train split (`bench.baselines`). Three families:

- held-back: the bench's robustness strings (`bench.injection.perturbations`: 3 harmless
  sentences, 4 injections in both directions, appended), never seen in stage 3's training; two
  of their kinds (chat-template markers, `Sentence:`/`Label:` demonstrations) have no trained
  counterpart at all;
- held-back, prepended: the 3 harmless sentences before the text;
- trained kinds: stage 3's own distractors (`distill.consistency`: its first harmless sentences
  and instructions, both directions, appended and prepended).

Prints one table per dataset, and where the flips went (clean -> perturbed label counts), and
writes every rate to --out.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from senti_edge import Analyzer
from senti_edge.bench import baselines, injection
from senti_edge.distill.consistency import HARMLESS, INSTRUCTIONS
from senti_edge.runtime.cpu import machine
from senti_edge.sentibench import DATASETS, Item, load_split


def families(labels: tuple[str, ...]) -> dict[str, dict[str, tuple[str, str | None]]]:
    held = injection.perturbations()
    if "neutral" in labels:  # ask for each label of the set, the bench's two and neutral
        held = {**held, **{k.replace(":positive", ":neutral"): (v.replace("positive", "neutral").replace("I love it", "It is a table")
                                                                 .replace("What a wonderful day", "The bus leaves at nine"), "neutral")
                           for k, (v, t) in held.items() if t == "positive"}}
    prepended = {f"distractor:start:{k}": (s.strip() + " {text}", None) for k, s in injection.DISTRACTORS.items()}
    trained = {}
    for i, s in enumerate(HARMLESS[:3]):
        trained[f"distractor:end:{i}"] = (" " + s, None)
        trained[f"distractor:start:{i}"] = (s + " {text}", None)
    for i, tmpl in enumerate(INSTRUCTIONS[:3]):
        for lab in labels:
            trained[f"injection:end:{i}:{lab}"] = (" " + tmpl.format(label=lab), lab)
            trained[f"injection:start:{i}:{lab}"] = (tmpl.format(label=lab) + " {text}", lab)
    return {"held-back": held, "held-back prepended": prepended, "trained kinds": trained}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", action="append", default=[])
    ap.add_argument("-b", "--baseline", action="append", default=[], choices=["tfidf", "vader", "minilm"])
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--datasets", default="sst2,twitter")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    models = args.model or ([] if args.baseline else ["senti-smollm2-135m"])
    out = {"n": args.n, "machine": machine(args.threads), "datasets": {}}
    for name in args.datasets.split(","):
        spec = DATASETS[name]
        items = load_split(args.data_dir, spec, "val", args.n)
        texts = [it.text for it in items]
        kinds = families(spec.labels)
        labellers = {}
        for m in models:
            az = Analyzer(model=m, task=spec.task, n_threads=args.threads)
            labellers[m] = (lambda xs, az=az: [r["label"] for r in az.classify(xs)], az)
        if args.baseline:
            train = load_split(args.data_dir, spec, "train")
            for b in args.baseline:
                if baselines.applies(b, spec):
                    fitted = baselines.fit(b, spec, train, args.threads)
                    labellers[b] = (lambda xs, f=fitted: f.predict([Item(i, x, None) for i, x in enumerate(xs)]), None)
        rows = {}
        for who, (fn, az) in labellers.items():
            t0 = time.perf_counter()
            rows[who] = {fam: injection.robustness(fn, texts, k) for fam, k in kinds.items()}
            for fam in rows[who].values():
                fam.pop("perturbations", None)
            if az is not None:
                az.close()
            print(f"  {name} {who}: {time.perf_counter() - t0:.0f} s", flush=True)
        out["datasets"][name] = rows
        print(f"\n{name} (first {len(texts)} val texts): flip rates, % (injection: label taken %)")
        print("| labeller | " + " | ".join(f"{f} distractor | {f} injection" for f in kinds) + " |")
        print("|---|" + "---|---|" * len(kinds))
        for who, fams in rows.items():
            cells = []
            for f in kinds:
                r = fams[f]
                d = "-" if r["distractor_flip_rate"] is None else f"{100 * r['distractor_flip_rate']:.1f}"
                j = "-" if r["injection_flip_rate"] is None else (f"{100 * r['injection_flip_rate']:.1f} "
                                                                  f"({100 * np.nan_to_num(r['injection_to_target']):.0f})")
                cells += [d, j]
            print(f"| {who} | " + " | ".join(cells) + " |")
        for who, fams in rows.items():  # where the flips went, over all families
            for fam in ("distractor", "injection"):
                c = Counter()
                for r in fams.values():
                    c.update(r[f"{fam}_moves"])
                print(f"  {who} {fam} flips: " + (", ".join(f"{k} {v}" for k, v in c.most_common()) or "none"))
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
