"""Join GGUF LoRAs trained one on top of the other into one adapter:
`python -m senti_edge.quantize.stack OUT.gguf FIRST.lora.gguf SECOND.lora.gguf ...`.

Stage 3 (`distill.consistency`) trains a new LoRA on the student with the shipped LoRA merged
in, so the model it makes is base + s1 B1 A1 + s2 B2 A2. The same sum is one LoRA of rank
r1 + r2: A = [A1; A2] (rows), B = [s1 B1, s2 B2] (columns), alpha = r1 + r2 (scale 1). The
registry keeps shipping a single adapter, both for the merged build and for load-time use. With
the usual alpha = 2r the scales are powers of two, so the join is exact even in float16.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import SentiEdgeError
from ..runtime.build import lora_pairs


def stack(adapters: Sequence[Path], out: Path) -> int:
    """Write the rank-sum adapter of `adapters` (applied in any order: LoRAs add) to `out`; returns its rank."""
    import gguf

    if len(adapters) < 2:
        raise SentiEdgeError("give two or more adapters to join")
    parts = [lora_pairs(Path(p)) for p in adapters]
    first = gguf.GGUFReader(adapters[0])
    arch = first.fields["general.architecture"].contents()
    names = sorted(set().union(*(pairs for pairs, _ in parts)))
    ranks = [next(iter(pairs.values()))[0].shape[0] for pairs, _ in parts]
    shapes = {}
    for pairs, _ in parts:
        for name, (a, b) in pairs.items():
            if shapes.setdefault(name, (b.shape[0], a.shape[1])) != (b.shape[0], a.shape[1]):
                raise SentiEdgeError(f"the adapters disagree on the shape of {name}; are they for the same base model?")
    total = sum(ranks)
    writer = gguf.GGUFWriter(out, arch)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(total))
    for name in names:
        n_out, n_in = shapes[name]
        a_rows, b_cols = [], []
        for (pairs, alpha), r in zip(parts, ranks):
            a, b = pairs.get(name, (np.zeros((r, n_in)), np.zeros((n_out, r))))
            a_rows.append(a)
            b_cols.append(b * (alpha / r if alpha else 1.0))
        writer.add_tensor(f"{name}.lora_a", np.concatenate(a_rows, 0).astype(np.float16))
        writer.add_tensor(f"{name}.lora_b", np.concatenate(b_cols, 1).astype(np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return total


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("adapters", type=Path, nargs="+")
    args = ap.parse_args(argv)
    try:
        rank = stack(args.adapters, args.out)
    except (SentiEdgeError, OSError, KeyError) as exc:
        sys.exit(f"Error: {exc}")
    print(f"{args.out}: rank {rank} from {len(args.adapters)} adapters")


if __name__ == "__main__":
    main()
