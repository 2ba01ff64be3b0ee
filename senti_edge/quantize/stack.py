"""Join GGUF LoRAs trained one on top of the other into one adapter:
`python -m senti_edge.quantize.stack OUT.gguf FIRST.lora.gguf SECOND.lora.gguf ...`, or, for a
distill run's stage 3, `python -m senti_edge.quantize.stack OUT.gguf --run RUN_DIR`: the adapter
its student was made with (kept in the student folder) joined with the stage's LoRA.

Stage 3 (`distill.consistency`) trains a new LoRA on the student with the shipped LoRA merged
in, so the model it makes is base + s1 B1 A1 + s2 B2 A2. The same sum is one LoRA of rank
r1 + r2: A = [A1; A2] (rows), B = [s1 B1, s2 B2] (columns), alpha = r1 + r2 (scale 1). The
registry keeps shipping a single adapter, both for the merged build and for load-time use. With
the usual alpha = 2r the scales are powers of two, so the join is exact even in float16.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
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


def stack_run(run: Path, out: Path, stage: str = "consistency") -> int:
    """The one adapter a distill run's `stage` ships: the stage's LoRA (converted to GGUF) joined
    with the adapter its student was made with. Joining with whatever the registry ships today
    would be wrong once that has changed: the LoRA is a change to the student it was trained on."""
    from ..distill.train import STUDENT_ADAPTER
    from .convert import convert_lora, ensure_converter

    student, lora = run / "student", run / stage / "adapter"
    first = student / STUDENT_ADAPTER
    if not (lora / "adapter_config.json").is_file():
        raise SentiEdgeError(f"{lora} not found; train the stage first (`senti-edge distill train CONFIG {stage}`)")
    if not first.is_file():
        raise SentiEdgeError(f"{first} not found: the student was made without an adapter, or before its copy was "
                             "kept; join by hand: OUT FIRST.lora.gguf SECOND.lora.gguf")
    with tempfile.TemporaryDirectory(prefix="senti-edge-stack.") as td:
        second = Path(td) / f"{stage}.lora.gguf"
        convert_lora(ensure_converter(download=False), lora, student, second)
        return stack([first, second], out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("adapters", type=Path, nargs="*")
    ap.add_argument("--run", type=Path, help="a distill run folder: join its student's adapter with its stage-3 LoRA")
    args = ap.parse_args(argv)
    if bool(args.run) == bool(args.adapters):
        ap.error("give either two or more adapters or --run RUN_DIR")
    try:
        rank = stack_run(args.run, args.out) if args.run else stack(args.adapters, args.out)
    except (SentiEdgeError, OSError, KeyError) as exc:
        sys.exit(f"Error: {exc}")
    print(f"{args.out}: rank {rank} from {'the run ' + str(args.run) if args.run else f'{len(args.adapters)} adapters'}")


if __name__ == "__main__":
    main()
