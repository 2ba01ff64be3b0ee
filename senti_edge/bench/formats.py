"""Fine-grained output format: tuples as a JSON list of lists, their prompt, parser and grammar.

A fine-grained answer is one line, `[["meal", "positive"], ["service", "negative"]]`, with the
fields of the dataset in order (polarity last) and `"NULL"` for an absent aspect, holder or
target; `[]` means no opinion. `parse_tuples` is forgiving about the wrapping (code fences, text
before or after the list, single quotes, tuples, `null`/`None` for NULL, one bare tuple) and
strict about the content (right arity, strings, a known polarity); anything else is a format
error (`None`), which the runner scores as an empty prediction. `tuples_grammar` gives GBNF that
only admits well-formed answers; an answer cut off by the token limit is closed after its last
complete tuple (`close_truncated`), so with `--grammar` format errors are zero.

Comparison is exact after `norm_tuple`: whitespace folded, lower-cased, NULL spellings unified.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Iterable, Sequence

from ..runtime.prompts import Segment, one_line
from ..sentibench import NULL, clean_tuple

_FENCE = re.compile(r"```[a-zA-Z]*")


def norm_tuple(fields: Iterable[object]) -> tuple[str, ...]:
    """The comparison key of a tuple: `clean_tuple`, lower-cased throughout."""
    return tuple(f if f == NULL else f.lower() for f in clean_tuple(fields))


def render_tuples(tuples: Sequence[Sequence[str]]) -> str:
    """The answer line for a demonstration."""
    return json.dumps([list(t) for t in tuples], ensure_ascii=False)


def _candidates(text: str) -> Iterable[str]:
    """Substrings from the first "[" to each later "]", shortest first."""
    start = text.find("[")
    if start < 0:
        return
    end = text.find("]", start)
    while end >= 0:
        yield text[start:end + 1]
        end = text.find("]", end + 1)


def _load(chunk: str):
    try:
        return json.loads(chunk)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(chunk)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def parse_tuples(output: str, arity: int, labels: Sequence[str]) -> list[tuple[str, ...]] | None:
    """The tuples in a generated answer (cleaned, duplicates kept), or None when it is malformed."""
    text = _FENCE.sub("", output)
    data = None
    for chunk in _candidates(text):
        data = _load(chunk)
        if isinstance(data, (list, tuple)):
            break
        data = None
    if data is None:
        return None
    data = list(data)
    if len(data) == arity and all(isinstance(x, str) or x is None for x in data):
        data = [data]  # one bare tuple, not wrapped in a list
    known = {label.lower() for label in labels}
    out = []
    for tup in data:
        if not isinstance(tup, (list, tuple)) or len(tup) != arity:
            return None
        if not all(isinstance(x, str) or x is None for x in tup):
            return None
        cleaned = clean_tuple(tup)
        if cleaned[-1] not in known:
            return None
        out.append(cleaned)
    return out


def close_truncated(output: str) -> str:
    """A grammar-constrained answer cut off by max_tokens, closed after its last complete tuple."""
    end = output.rfind('"]')
    start = output.find("[")
    if start < 0 or end < start:
        return " []"
    return output[:end + 2] + "]"


def tuples_grammar(arity: int, labels: Sequence[str], max_items: int = 8) -> str:
    """GBNF admitting exactly the answers `parse_tuples` accepts in canonical form."""
    pol = " | ".join(json.dumps(json.dumps(label.lower())) for label in labels)
    fields = ' ", " '.join(["str"] * (arity - 1) + ["pol"])
    items = 'tup ( ", " tup )' + "{0," + str(max_items - 1) + "}"
    return "\n".join([
        f'root ::= " "? "[" ( {items} )? "]"',
        f'tup ::= "[" {fields} "]"',
        f"pol ::= {pol}",
        'str ::= "\\"" char{1,60} "\\""',
        'char ::= [^"\\\\\\x00-\\x1f] | "\\\\" ["\\\\/bfnrt]',
    ])


# -- prompts -----------------------------------------------------------------------------------

def _sentence(text: str) -> list[Segment]:
    return [Segment("Sentence:", True), Segment(" " + one_line(text), False), Segment("\nLabel:", True)]


def build_tuple_prefix(instruction: str, labels: Sequence[str],
                       demos: Iterable[tuple[str, Sequence[Sequence[str]]]] = ()) -> list[Segment]:
    """Instruction and `Sentence:` / `Label: [[...]]` demonstrations (the shared part)."""
    segs = [Segment(instruction.format(labels=", ".join(labels)) + "\n\n", True)]
    for text, tuples in demos:
        segs += _sentence(text)
        segs += [Segment(" " + render_tuples(tuples), False), Segment("\n\n", True)]
    return segs


def build_tuple_query(text: str) -> list[Segment]:
    return _sentence(text)
