"""The 12 SentiBench datasets: where they live, their labels, and how to read a split.

Each dataset is a `DatasetSpec` in `DATASETS` (a dict, in the paper's table order). A split is
`<data_dir>/<dir>/<split>.json`, a JSON list of records; some files start with a UTF-8 BOM, so
they are read as `utf-8-sig`. Loading checks every record and names the file and the record
index of the first bad one. Texts are never copied: results refer to items by dataset and index.

Classification items carry a canonical label (one of the spec's labels, matched
case-insensitively: pstance's `AGAINST` is `against`). Fine-grained items carry their gold
tuples, cleaned by `formats.clean_tuple` (folded whitespace, NULL for absent, polarity lower-case).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

from ..errors import SentiEdgeError
from ..runtime.tasks import Task, get_task
from .formats import clean_tuple

CATEGORIES: dict[str, str] = {
    "basic": "basic (BSA)",
    "multifaceted": "multifaceted (MSA)",
    "fine-grained": "fine-grained (FSA)",
}
CATEGORY_ALIASES = {"bsa": "basic", "msa": "multifaceted", "fsa": "fine-grained", "fine_grained": "fine-grained",
                    "finegrained": "fine-grained", "multifaced": "multifaceted", "sc": "basic", "absa": "fine-grained"}


class Item(NamedTuple):
    """One test or train record: `gold` is a label string (classification) or a tuple list."""

    index: int
    text: str
    gold: object
    target: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """Dataset-specific facts only: where the files are, the gold label order, the tuple fields.

    A classification set names the runtime task it measures (`task`, a key of
    `runtime.tasks.TASKS`); its instruction is read from that table when asked for, so
    `bench`, `analyze` and `distill` prompt with one text. A fine-grained set keeps its own
    tuple instruction (the dataset's tuple shape is a dataset fact) and says how the runtime's
    `aspects` objects map onto its tuples (`aspect_keys`, None for a field the runtime lacks).
    """

    name: str
    category: str
    dir: str
    labels: tuple[str, ...]  # gold labels, in the dataset's order
    task: str  # runtime task: classification sets score it; fine-grained sets extract with "aspects"
    kind: str = "classification"  # or "tuples"
    fields: tuple[str, ...] = ()  # tuple fields, for kind == "tuples"
    tuple_instruction: str = ""  # kind == "tuples": the bench's own prompt for this tuple shape
    aspect_keys: tuple[str | None, ...] = ()  # kind == "tuples": runtime `aspects` key per field
    polarity: bool = False  # a plain polarity set: VADER applies

    @property
    def generative(self) -> bool:
        return self.kind == "tuples"

    @property
    def runtime_task(self) -> Task:
        return get_task(self.task)

    @property
    def instruction(self) -> str:
        return self.tuple_instruction if self.generative else self.runtime_task.instruction

    @property
    def needs_target(self) -> bool:
        return self.runtime_task.needs_target

    def path(self, data_dir: str | Path, split: str) -> Path:
        return Path(data_dir) / self.dir / f"{split}.json"


_POL = ("negative", "neutral", "positive")


def _tuple_instruction(what: str, fields: Sequence[str], extra: str = "") -> str:
    shape = "[" + ", ".join(f'"{f}"' for f in fields) + "]"
    return (f"Extract every {what} in each sentence as a JSON list of {shape} lists, where polarity is one of: "
            "{labels}." + (" " + extra if extra else "") + " Answer [] if there is none.")


def _tuples(name: str, dir: str, labels, what: str, fields, keys, extra: str) -> DatasetSpec:
    return DatasetSpec(name, "fine-grained", dir, labels, "aspects", kind="tuples", fields=fields,
                       tuple_instruction=_tuple_instruction(what, fields, extra), aspect_keys=keys)


DATASETS: dict[str, DatasetSpec] = {s.name: s for s in (
    DatasetSpec("imdb", "basic", "sc/imdb", ("negative", "positive"), "binary", polarity=True),
    DatasetSpec("yelp2", "basic", "sc/yelp2", ("negative", "positive"), "binary", polarity=True),
    DatasetSpec("sst2", "basic", "sc/sst2", ("negative", "positive"), "binary", polarity=True),
    DatasetSpec("twitter", "basic", "sc/twitter", ("negative", "positive", "neutral"), "polarity", polarity=True),
    DatasetSpec("irony18", "multifaceted", "multifaced/irony18", ("non-irony", "irony"), "irony"),
    DatasetSpec("tweeteval", "multifaceted", "multifaced/tweeteval", ("anger", "joy", "sadness", "optimism"), "emotion"),
    DatasetSpec("pstance", "multifaceted", "multifaced/pstance", ("against", "favor"), "stance"),
    DatasetSpec("intimacy", "multifaceted", "multifaced/intimacy",
                ("not intimate", "moderately intimate", "highly intimate"), "intimacy"),
    _tuples("atsa_rest16", "absa/atsa_rest16", _POL, "aspect term and its sentiment", ("aspect", "polarity"),
            ("aspect", "polarity"), "Only aspect terms that appear in the sentence."),
    _tuples("acsa_rest16", "absa/acsa_rest16", _POL, "aspect category and its sentiment", ("category", "polarity"),
            ("category", "polarity"), 'Categories are lower-case "entity attribute", such as "food quality".'),
    _tuples("asqp_rest16", "absa/asqp_rest16", _POL, "opinion quad", ("category", "aspect", "opinion", "polarity"),
            ("category", "aspect", "opinion", "polarity"), 'Write "NULL" for an aspect that is not named.'),
    # the runtime's aspects objects have no holder: under `shipped` every holder is NULL
    _tuples("opener", "absa/opener", ("positive", "negative", "neutral"), "opinion",
            ("holder", "target", "expression", "polarity"), (None, "aspect", "opinion", "polarity"),
            'Write "NULL" for a holder or target that is not named.'),
)}


def from_aspects(spec: DatasetSpec, objects: Sequence[dict]) -> list[tuple[str, ...]]:
    """The runtime `aspects` objects as this dataset's tuples (the `shipped` protocol's answer).

    A field the runtime does not produce is NULL; on atsa_rest16 an object without an aspect
    term is dropped, as the gold drops implicit aspects."""
    out = []
    for obj in objects:
        if spec.name == "atsa_rest16" and clean_tuple((obj.get("aspect"), "x"))[0] == "NULL":
            continue
        out.append(clean_tuple(obj.get(k) if k else None for k in spec.aspect_keys))
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


# -- reading ---------------------------------------------------------------------------------

class _BadRecord(Exception):
    pass


def _field(rec: dict, key: str):
    if key not in rec:
        raise _BadRecord(f"missing field {key!r}")
    return rec[key]


def _text(rec: dict, key: str = "sentence") -> str:
    val = _field(rec, key)
    if not isinstance(val, str):
        raise _BadRecord(f"field {key!r} is not a string")
    return val


def _label(spec: DatasetSpec, rec: dict) -> str:
    raw = _field(rec, "label")
    canon = {lab.lower(): lab for lab in spec.labels}
    lab = canon.get(str(raw).strip().lower())
    if lab is None:
        raise _BadRecord(f"label {raw!r} is not one of {', '.join(spec.labels)}")
    return lab


def _list(rec: dict, key: str) -> list:
    val = _field(rec, key)
    if not isinstance(val, list):
        raise _BadRecord(f"field {key!r} is not a list")
    return val


def _aspects(rec: dict, key: str) -> list[dict]:
    out = _list(rec, "aspects")
    for a in out:
        if not isinstance(a, dict) or key not in a or "polarity" not in a:
            raise _BadRecord(f"an entry of 'aspects' lacks {key!r} or 'polarity'")
    return out


def _gold_atsa(rec: dict) -> list[tuple]:
    # an implicit aspect (target NULL) has no term to extract: skip it, as the README says
    return [clean_tuple((a["target"], a["polarity"])) for a in _aspects(rec, "target")
            if str(a["target"]).strip().upper() not in ("NULL", "")]


def _gold_acsa(rec: dict) -> list[tuple]:
    return [clean_tuple((str(a["category"]).replace("#", " ").lower(), a["polarity"])) for a in _aspects(rec, "category")]


def _gold_asqp(rec: dict) -> list[tuple]:
    out = []
    for q in _list(rec, "quards"):
        if not isinstance(q, dict) or any(k not in q for k in ("category", "aspect", "opinion", "sentiment")):
            raise _BadRecord("an entry of 'quards' lacks one of category, aspect, opinion, sentiment")
        out.append(clean_tuple((q["category"], q["aspect"], q["opinion"], q["sentiment"])))
    return out


def _span(part) -> str | None:
    """OpeNER spans are [[texts], [offsets]]; several texts (a split expression) join with a space."""
    if not isinstance(part, list) or not part or not isinstance(part[0], list):
        raise _BadRecord("an OpeNER span is not [[texts], [offsets]]")
    return " ".join(str(t) for t in part[0]) or None


def _gold_opener(rec: dict) -> list[tuple]:
    out = []
    for o in _list(rec, "opinions"):
        if not isinstance(o, dict) or any(k not in o for k in ("Source", "Target", "Polar_expression", "Polarity")):
            raise _BadRecord("an entry of 'opinions' lacks one of Source, Target, Polar_expression, Polarity")
        out.append(clean_tuple((_span(o["Source"]), _span(o["Target"]), _span(o["Polar_expression"]), o["Polarity"])))
    return out


_GOLD: dict[str, Callable[[dict], list[tuple]]] = {
    "atsa_rest16": _gold_atsa, "acsa_rest16": _gold_acsa, "asqp_rest16": _gold_asqp, "opener": _gold_opener,
}


def parse_record(spec: DatasetSpec, rec: object, index: int) -> Item:
    """One raw record as an `Item`; raises `_BadRecord` with the reason."""
    if not isinstance(rec, dict):
        raise _BadRecord("is not a JSON object")
    text = _text(rec)
    if spec.generative:
        return Item(index, text, _GOLD[spec.name](rec))
    target = None
    if spec.needs_target:
        target = _text(rec, "target")
    return Item(index, text, _label(spec, rec), target)


def load_split(data_dir: str | Path, spec: DatasetSpec, split: str, limit: int | None = None) -> list[Item]:
    """Read `<data_dir>/<spec.dir>/<split>.json` (BOM or not); the first `limit` items if given."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise SentiEdgeError(f"data directory {data_dir} does not exist; give --data-dir (the SentiBench root)")
    path = spec.path(data_dir, split)
    if not path.exists():
        have = sorted(p.stem for p in path.parent.glob("*.json")) if path.parent.is_dir() else []
        hint = f" (this dataset has: {', '.join(have)})" if have else f" ({path.parent} does not exist)"
        raise SentiEdgeError(f"{spec.name}: split file {path} not found{hint}; check --split and --data-dir")
    try:
        with open(path, encoding="utf-8-sig") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise SentiEdgeError(f"{path}: not valid JSON at line {exc.lineno} ({exc.msg})") from None
    except UnicodeDecodeError as exc:
        raise SentiEdgeError(f"{path}: not UTF-8 text ({exc.reason})") from None
    if not isinstance(data, list):
        raise SentiEdgeError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    if limit is not None:
        data = data[:limit]
    items = []
    for i, rec in enumerate(data):
        try:
            items.append(parse_record(spec, rec, i))
        except _BadRecord as exc:
            raise SentiEdgeError(f"{path}: record {i}: {exc} (dataset {spec.name})") from None
    if not items:
        raise SentiEdgeError(f"{path}: no records")
    return items
