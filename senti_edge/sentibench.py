"""The 12 SentiBench datasets and the one reader of their files; the bench scores them, distill
trains on their train splits.

Each dataset is a `DatasetSpec` in `DATASETS` (a dict, in the paper's table order): its folder
under the SentiBench root, its category, the runtime task it measures (a key of
`runtime.tasks.TASKS`, by name: this module imports nothing but the base layer), its gold label
order and, for the fine-grained sets, its tuple fields. A split is `<root>/<dir>/<split>.json`,
a JSON list of records; some files start with a UTF-8 BOM, so they are read as `utf-8-sig`.
`load_split` checks every record and names the file and the record index of the first bad one.
Texts are never copied: results and teacher records refer to them by dataset and index.

Classification items carry a canonical label (one of the spec's labels, matched
case-insensitively: the files mix casings, pstance's `AGAINST` is `against`, intimacy's
`Not Intimate` is `not intimate`). Fine-grained items carry their gold tuples, cleaned by
`clean_tuple` (folded whitespace, NULL for absent, polarity lower-case).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, NamedTuple

from .errors import SentiEdgeError

CATEGORIES: dict[str, str] = {
    "basic": "basic (BSA)",
    "multifaceted": "multifaceted (MSA)",
    "fine-grained": "fine-grained (FSA)",
}


@dataclass(frozen=True)
class DatasetSpec:
    """Dataset facts only: where the files are, the gold label order, the runtime task, the tuple fields."""

    name: str
    category: str
    dir: str  # the folder under the SentiBench root; distill's refs are "<dir>:<index>"
    labels: tuple[str, ...]  # gold labels, in the dataset's order
    task: str  # runtime task: classification sets score it; fine-grained sets extract with "aspects"
    kind: str = "classification"  # or "tuples"
    fields: tuple[str, ...] = ()  # tuple fields, for kind == "tuples"
    keys: tuple[str | None, ...] = ()  # the runtime `aspects` key of each field (None: the runtime has none)
    needs_target: bool = False  # each record names a target (stance)
    polarity: bool = False  # a plain polarity set: VADER applies

    @property
    def generative(self) -> bool:
        return self.kind == "tuples"

    def path(self, data_dir: str | Path, split: str) -> Path:
        return Path(data_dir) / self.dir / f"{split}.json"


_POL = ("negative", "neutral", "positive")


def _tuples(name: str, dir: str, labels: tuple[str, ...], fields: tuple[str, ...],
            keys: tuple[str | None, ...]) -> DatasetSpec:
    return DatasetSpec(name, "fine-grained", dir, labels, "aspects", kind="tuples", fields=fields, keys=keys)


DATASETS: dict[str, DatasetSpec] = {s.name: s for s in (
    DatasetSpec("imdb", "basic", "sc/imdb", ("negative", "positive"), "binary", polarity=True),
    DatasetSpec("yelp2", "basic", "sc/yelp2", ("negative", "positive"), "binary", polarity=True),
    DatasetSpec("sst2", "basic", "sc/sst2", ("negative", "positive"), "binary", polarity=True),
    DatasetSpec("twitter", "basic", "sc/twitter", ("negative", "positive", "neutral"), "polarity", polarity=True),
    DatasetSpec("irony18", "multifaceted", "multifaced/irony18", ("non-irony", "irony"), "irony"),
    DatasetSpec("tweeteval", "multifaceted", "multifaced/tweeteval", ("anger", "joy", "sadness", "optimism"), "emotion"),
    DatasetSpec("pstance", "multifaceted", "multifaced/pstance", ("against", "favor"), "stance", needs_target=True),
    DatasetSpec("intimacy", "multifaceted", "multifaced/intimacy",
                ("not intimate", "moderately intimate", "highly intimate"), "intimacy"),
    _tuples("atsa_rest16", "absa/atsa_rest16", _POL, ("aspect", "polarity"), ("aspect", "polarity")),
    _tuples("acsa_rest16", "absa/acsa_rest16", _POL, ("category", "polarity"), ("category", "polarity")),
    _tuples("asqp_rest16", "absa/asqp_rest16", _POL, ("category", "aspect", "opinion", "polarity"),
            ("category", "aspect", "opinion", "polarity")),
    # the runtime's objects have no holder: under the `shipped` protocol it is NULL
    _tuples("opener", "absa/opener", ("positive", "negative", "neutral"), ("holder", "target", "expression", "polarity"),
            (None, "aspect", "opinion", "polarity")),
)}


class Item(NamedTuple):
    """One record of a split: `gold` is a label string (classification) or a tuple list."""

    index: int
    text: str
    gold: object
    target: str | None = None


# -- gold tuples -----------------------------------------------------------------------------

NULL = "NULL"
_NULLS = {"", "null", "none", "nil", "n/a"}
_WS = re.compile(r"\s+")


def clean_field(value: object) -> str:
    """Whitespace folded; None and NULL spellings become "NULL". Case is kept (for display)."""
    if value is None:
        return NULL
    text = _WS.sub(" ", str(value)).strip()
    return NULL if text.lower() in _NULLS else text


def clean_tuple(fields: Iterable[object]) -> tuple[str, ...]:
    """A tuple as stored and shown: cleaned fields, polarity (the last field) lower-cased."""
    out = [clean_field(f) for f in fields]
    out[-1] = out[-1].lower()
    return tuple(out)


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
