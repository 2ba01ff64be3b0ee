"""The bench's side of the SentiBench table (`senti_edge.sentibench`): choosing datasets by name
or category, the paper protocol's tuple instruction for each fine-grained set, and how the
runtime's `aspects` objects map onto each dataset's tuples.

A classification set's instruction is its runtime task's (`runtime.tasks.TASKS`), read when
asked for, so `bench`, `analyze` and `distill` prompt with one text. A fine-grained set keeps its
own tuple instruction (the dataset's tuple shape is a dataset fact) and says how the runtime's
`aspects` objects map onto its tuples (`DatasetSpec.keys`, None for a field the runtime lacks).
"""

from __future__ import annotations

from typing import Sequence

from ..errors import SentiEdgeError
from ..runtime.tasks import get_task
from ..sentibench import CATEGORIES, DATASETS, DatasetSpec, clean_tuple

CATEGORY_ALIASES = {"bsa": "basic", "msa": "multifaceted", "fsa": "fine-grained", "fine_grained": "fine-grained",
                    "finegrained": "fine-grained", "multifaced": "multifaceted", "sc": "basic", "absa": "fine-grained"}


def _tuple_instruction(name: str, what: str, extra: str = "") -> str:
    shape = "[" + ", ".join(f'"{f}"' for f in DATASETS[name].fields) + "]"
    return (f"Extract every {what} in each sentence as a JSON list of {shape} lists, where polarity is one of: "
            "{labels}." + (" " + extra if extra else "") + " Answer [] if there is none.")


# fine-grained set -> the bench's own prompt for its tuple shape (the `paper` protocol)
TUPLE_INSTRUCTIONS: dict[str, str] = {
    "atsa_rest16": _tuple_instruction("atsa_rest16", "aspect term and its sentiment",
                                      "Only aspect terms that appear in the sentence."),
    "acsa_rest16": _tuple_instruction("acsa_rest16", "aspect category and its sentiment",
                                      'Categories are lower-case "entity attribute", such as "food quality".'),
    "asqp_rest16": _tuple_instruction("asqp_rest16", "opinion quad", 'Write "NULL" for an aspect that is not named.'),
    "opener": _tuple_instruction("opener", "opinion", 'Write "NULL" for a holder or target that is not named.'),
}


def instruction(spec: DatasetSpec) -> str:
    """The instruction a dataset is prompted with: its runtime task's, or its own tuple instruction."""
    return TUPLE_INSTRUCTIONS[spec.name] if spec.generative else get_task(spec.task).instruction


def from_aspects(spec: DatasetSpec, objects: Sequence[dict]) -> list[tuple[str, ...]]:
    """The runtime `aspects` objects as this dataset's tuples (the `shipped` protocol's answer).

    A field the runtime does not produce is NULL; on atsa_rest16 an object without an aspect
    term is dropped, as the gold drops implicit aspects."""
    out = []
    for obj in objects:
        if spec.name == "atsa_rest16" and clean_tuple((obj.get("aspect"), "x"))[0] == "NULL":
            continue
        out.append(clean_tuple(obj.get(k) if k else None for k in spec.keys))
    return out


def select_datasets(spec: str | Sequence[str] | None) -> list[DatasetSpec]:
    """Datasets from a comma list of names and categories (`all` or None: every dataset), in table order."""
    if spec is None:
        return list(DATASETS.values())
    parts = [spec] if isinstance(spec, str) else list(spec)
    words = [w.strip().lower() for part in parts for w in part.split(",")]
    chosen: set[str] = set()
    for w in filter(None, words):
        cat = CATEGORY_ALIASES.get(w, w)
        if w == "all":
            chosen |= set(DATASETS)
        elif cat in CATEGORIES:
            chosen |= {d.name for d in DATASETS.values() if d.category == cat}
        elif w in DATASETS:
            chosen.add(w)
        else:
            raise SentiEdgeError(
                f"unknown dataset or category {w!r}; choose from {', '.join(DATASETS)} "
                f"or a category ({', '.join(CATEGORIES)}) or all")
    if not chosen:
        raise SentiEdgeError("no datasets selected; give names or categories, e.g. --datasets sst2,fine-grained")
    return [d for name, d in DATASETS.items() if name in chosen]
