"""Does the order of the labels change the answer?

    python benchmarks/label_order.py [-m MODEL ...] [--texts FILE] [--threads 1]

For two label sets (`urgent,routine,spam` and `negative,neutral,positive`) and each of their six
orders, the same texts are labelled with two prompts on one loaded model:
- now: what `senti-edge analyze --labels A,B,C` does (`Analyzer(labels=...)`): the instruction
  lists the labels in one canonical order, so the order given cannot matter;
- before: the prompt senti-edge used until then, which listed the labels in the order given
  ("Classify the sentiment of each sentence as one of: A, B, C.").
For each it prints how many labels differ from those of the first order (texts x 5 other orders)
and the largest probability difference. Defaults: smollm2-135m and senti-smollm2-135m, the 14
texts README's Usage section quotes (examples/reviews.txt and six office messages), 1 thread.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from senti_edge import Analyzer, Engine
from senti_edge.runtime import prompts
from senti_edge.runtime.tasks import Task

OFFICE = ["URGENT: the server room is flooding, come now", "Team lunch is moved to Thursday as usual",
          "WIN a FREE iPhone!!! Click here to claim your prize", "Cheap meds online, no prescription, best prices",
          "Please sign the monthly timesheet by Friday", "The production database is down and customers cannot pay"]
LABEL_SETS = [("urgent", "routine", "spam"), ("negative", "neutral", "positive")]
BEFORE = "Classify the sentiment of each sentence as one of: {labels}."


def analyzer(engine: Engine, labels: tuple[str, ...], prompt: str) -> Analyzer:
    az = Analyzer(engine=engine, task="polarity", labels=labels)
    if prompt == "before":  # the retired prompt is no option any more: set its task and recalibrate
        az.task = Task("polarity", labels, BEFORE)
        az.prefix = prompts.build_prefix(az.task, [], None)
        az.label_ids = engine.label_token_ids(labels)
        az.calibration = az._calibrate()
    return az


def compare(engine: Engine, texts: list[str], labels: tuple[str, ...], prompt: str) -> dict:
    """Labels differing from the first order's, over the other orders, and the largest probability change."""
    runs = [analyzer(engine, order, prompt).classify(texts) for order in itertools.permutations(labels)]
    flips = sum(a["label"] != b["label"] for run in runs[1:] for a, b in zip(runs[0], run))
    diff = max(abs(a["probs"][k] - b["probs"][k]) for run in runs[1:] for a, b in zip(runs[0], run) for k in a["probs"])
    return {"labels": ",".join(labels), "prompt": prompt, "differ": flips, "of": len(texts) * (len(runs) - 1),
            "max_prob_diff": round(diff, 3)}


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", action="append", help="registry name or .gguf path (repeatable)")
    ap.add_argument("--texts", type=Path, help="a text per line  [default: examples/reviews.txt + six office messages]")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if args.texts:
        texts = [t.strip() for t in args.texts.read_text("utf-8").splitlines() if t.strip()]
    else:
        reviews = Path(__file__).resolve().parents[1] / "examples" / "reviews.txt"
        texts = [t.strip() for t in reviews.read_text("utf-8").splitlines() if t.strip()] + OFFICE
    rows = []
    for model in args.model or ["smollm2-135m", "senti-smollm2-135m"]:
        with Engine(model, n_threads=args.threads) as engine:
            for labels, prompt in itertools.product(LABEL_SETS, ("before", "now")):
                row = {"model": model, **compare(engine, texts, labels, prompt)}
                print(f"{model}  {row['labels']:<26} {prompt:<6}  {row['differ']}/{row['of']} labels differ from the "
                      f"first order; largest probability difference {row['max_prob_diff']:.3f}", flush=True)
                rows.append(row)
    return rows


if __name__ == "__main__":
    main()
