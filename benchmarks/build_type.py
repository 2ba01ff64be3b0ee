"""Build a registry distilled model at another quantization type, to compare types.

    python benchmarks/build_type.py senti-smollm2-135m --type Q4_0 --out /tmp/senti-q4_0.gguf
    python benchmarks/build_type.py senti-smollm2-135m --type Q8_0 --adapter runs/v5/v5.lora.gguf --out runs/v5/v5.Q8_0.gguf

The registry's `build` type is the one `models pull` makes and ships; this makes the same merge
(`senti_edge.runtime.build.build_merged`, deterministic) at any type in `build.FTYPES`, and prints
the file's size and sha256. With `--adapter`, a candidate adapter takes the shipped one's place
(a new distillation stage, say), with the calibration stamped into that adapter, if any. It lives outside the package: the registry calls `build_merged`,
so a command that reads the registry cannot sit in `build.py` without a circular import.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from senti_edge.files import sha256_file
from senti_edge.runtime.build import FTYPES, build_merged, senti_metadata
from senti_edge.runtime.fetch import materialise, shipped_adapter
from senti_edge.runtime.registry import get_entry


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", help="a distilled registry entry (base + adapter)")
    ap.add_argument("--type", required=True, choices=sorted(FTYPES))
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--adapter", type=Path, help="a candidate GGUF LoRA for the entry's base, instead of the shipped one")
    args = ap.parse_args(argv)
    entry = get_entry(args.name)
    if not entry.base:
        raise SystemExit(f"Error: {args.name} is not a distilled model (no base + adapter)")
    if args.adapter and not args.adapter.is_file():
        raise SystemExit(f"Error: {args.adapter} does not exist")
    adapter = args.adapter or shipped_adapter(entry)
    build_merged(materialise(get_entry(entry.base)), adapter, args.out, args.type, senti_metadata(adapter))
    print(f"{args.out} {args.out.stat().st_size} bytes sha256 {sha256_file(args.out)}")


if __name__ == "__main__":
    main()
