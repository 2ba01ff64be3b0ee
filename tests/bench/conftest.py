"""Tiny SentiBench-shaped fixture data built in tmp_path (no real data needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SST2 = [{"sentence": f"{w} film number {i}", "label": lab}
        for i, (w, lab) in enumerate([("a great", "positive"), ("an awful", "negative")] * 6)]
PSTANCE = [{"sentence": f"vote for them {i}", "target": "Joe Biden", "label": lab}
           for i, lab in enumerate(["AGAINST", "FAVOR"] * 5)]
ATSA = [
    {"ID": "1", "sentence": "never a bad meal, never bad service",
     "aspects": [{"from": "0", "to": "0", "target": "NULL", "category": "RESTAURANT#GENERAL", "polarity": "positive"},
                 {"from": "12", "to": "16", "target": "meal", "category": "FOOD#QUALITY", "polarity": "positive"}]},
    {"ID": "2", "sentence": "nothing to say", "aspects": []},
]


def write(path: Path, records, bom: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records), encoding="utf-8-sig" if bom else "utf-8")
    return path


@pytest.fixture
def write_records():
    """write(path, records, bom=False): a JSON list file, optionally BOM-prefixed."""
    return write


@pytest.fixture
def tiny_bench(tmp_path) -> Path:
    """sst2 (BOM-prefixed), pstance and atsa_rest16 with train and val splits."""
    root = tmp_path / "sentibench"
    for split in ("train", "val"):
        write(root / "sc/sst2" / f"{split}.json", SST2, bom=True)
        write(root / "multifaced/pstance" / f"{split}.json", PSTANCE)
        write(root / "absa/atsa_rest16" / f"{split}.json", ATSA, bom=split == "val")
    return root
