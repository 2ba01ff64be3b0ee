"""Build a registry distilled model at another quantization type, to compare types.

    python benchmarks/build_type.py senti-smollm2-135m --type Q4_0 --out /tmp/senti-q4_0.gguf

The registry's `build` type is the one `models pull` makes and ships; this makes the same merge
(`senti_edge.runtime.build.build_merged`, deterministic) at any type in `build.FTYPES`, and prints
the file's size and sha256. It lives outside the package: the registry calls `build_merged`,
so a command that reads the registry cannot sit in `build.py` without a circular import.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from senti_edge.files import sha256_file
from senti_edge.runtime.build import FTYPES, build_merged
from senti_edge.runtime.fetch import build_metadata, materialise, shipped_adapter
from senti_edge.runtime.registry import get_entry


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", help="a distilled registry entry (base + adapter)")
    ap.add_argument("--type", required=True, choices=sorted(FTYPES))
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    entry = get_entry(args.name)
    if not entry.base:
        raise SystemExit(f"Error: {args.name} is not a distilled model (no base + adapter)")
    build_merged(materialise(get_entry(entry.base)), shipped_adapter(entry), args.out, args.type, build_metadata(entry))
    print(f"{args.out} {args.out.stat().st_size} bytes sha256 {sha256_file(args.out)}")


if __name__ == "__main__":
    main()
