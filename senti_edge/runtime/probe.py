"""The probe child `runtime/cpu.py` starts: `python -m senti_edge.runtime.probe MODEL --extra-bufts 0|1`.

It loads the model and decodes what `analyze` decodes (a shared prefix, 4 sequences, then single
tokens), then exits 0. A crash here is the answer the parent is looking for. It lives apart from
`cpu.py` because it drives the `Engine`, which itself reads `cpu.decide`: the parent starts it by
module name, so the two never import each other.
"""

from __future__ import annotations

import argparse
import sys

from .engine import Engine
from .prompts import Segment


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m senti_edge.runtime.probe")
    ap.add_argument("model")
    ap.add_argument("--adapter")
    ap.add_argument("--extra-bufts", type=int, choices=(0, 1), required=True)
    args = ap.parse_args(argv)
    with Engine(args.model, adapter=args.adapter, n_ctx=512, n_seq=4, n_threads=1,
                extra_bufts=bool(args.extra_bufts)) as eng:
        ids = eng.label_token_ids(["negative", "positive"])
        prefix = [Segment("Classify the sentiment of each sentence as one of: negative, positive.\n", True)]
        queries = [[Segment(f"Sentence: probe text number {i} is fine\nLabel:", True)] for i in range(8)]
        eng.score(prefix, queries, ids)
        eng.generate(prefix + queries[0], max_tokens=4)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
