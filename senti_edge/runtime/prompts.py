"""Tasks and few-shot prompts, as plain strings; nothing here knows about llama.cpp.

A prompt is a list of `Segment`s. Text we write (instructions, field names, chat-template
markers) may contain special tokens; text a user supplied (the input, the demonstrations) never
does: the engine tokenizes it with special-token parsing off, so `<|im_start|>` or `</s>` inside
a review is just characters. User text is also folded onto one line, so it cannot end its own
field and start a fake `Label:` line.

The format follows the paper's protocol: an instruction naming the task and its labels, then
`Sentence: ...` / `Label: ...` demonstrations, then the text and `Label:`. The label words are
scored as the next token after `Label:` (with a leading space).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from typing import Iterable, NamedTuple, Sequence

from ..errors import SentiEdgeError


class Segment(NamedTuple):
    text: str
    trusted: bool  # True: ours, special tokens allowed; False: user text, parsed as plain characters


@dataclass(frozen=True)
class Task:
    name: str
    labels: tuple[str, ...]
    instruction: str  # may use {labels} and {target}
    description: str = ""
    needs_target: bool = False
    generative: bool = False


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("polarity", ("negative", "neutral", "positive"),
             "Classify the sentiment of each sentence as one of: {labels}.",
             "negative / neutral / positive (the default)"),
        Task("binary", ("negative", "positive"),
             "Classify the sentiment of each sentence as one of: {labels}.",
             "negative / positive, as in SST-2, IMDb and Yelp"),
        Task("emotion", ("anger", "joy", "sadness", "optimism"),
             "Classify the emotion expressed in each sentence as one of: {labels}.",
             "anger / joy / sadness / optimism, as in TweetEval"),
        Task("irony", ("non-irony", "irony"),
             "Decide whether each sentence is ironic. Answer with one of: {labels}.",
             "non-irony / irony, as in SemEval-2018 task 3"),
        Task("stance", ("against", "favor"),
             "Classify the stance of each sentence towards its target as one of: {labels}.",
             "against / favor towards --target", needs_target=True),
        Task("intimacy", ("not intimate", "moderately intimate", "highly intimate"),
             "Rate how intimate each sentence is, as one of: {labels}.",
             "not / moderately / highly intimate"),
        Task("aspects", ("negative", "neutral", "positive"),
             "Extract every opinion in the sentence as a JSON list of objects with the keys "
             '"aspect" (the words naming what is judged, or null), "category" (a short lower-case '
             'entity and attribute, such as "food quality"), "opinion" (the opinion words) and '
             '"polarity" (one of: {labels}). Answer [] if there is none.',
             "(aspect, category, opinion, polarity) tuples, grammar-constrained JSON", generative=True),
    )
}
TASKS["sst2"] = TASKS["binary"]


def get_task(name: str, labels: Sequence[str] | None = None) -> Task:
    """A built-in task, or a custom one from `labels` (any label set, polarity-style instruction)."""
    if labels:
        labels = tuple(label.strip() for label in labels)
        if len(labels) < 2 or any(not label for label in labels) or len(set(labels)) != len(labels):
            raise SentiEdgeError(f"--labels needs two or more distinct, non-empty labels, got {','.join(labels)!r}")
        base = TASKS.get(name) if name else None
        if base is not None and base.generative:
            raise SentiEdgeError(f"--labels does not apply to the generative task {name!r}")
        instruction = base.instruction if base else "Classify each sentence as one of: {labels}."
        return Task(name or "custom", labels, instruction, needs_target=bool(base and base.needs_target))
    if name not in TASKS:
        raise SentiEdgeError(f"unknown task {name!r}; choose one of {', '.join(sorted(TASKS))} or give --labels")
    return TASKS[name]


_WS = re.compile(r"\s+")


def one_line(text: str) -> str:
    """Fold whitespace (newlines included) so user text stays inside its field."""
    return _WS.sub(" ", text).strip()


class Example(NamedTuple):
    text: str
    label: str | None = None
    target: str | None = None


def _item_segments(ex: Example, task: Task) -> list[Segment]:
    segs = [Segment("Sentence:", True), Segment(" " + one_line(ex.text), False)]
    if task.needs_target:
        segs += [Segment("\nTarget:", True), Segment(" " + one_line(ex.target or ""), False)]
    segs.append(Segment("\nLabel:", True))
    return segs


def build_prefix(task: Task, demos: Iterable[Example] = (), target: str | None = None) -> list[Segment]:
    """Instruction and demonstrations: the part shared by every text, evaluated once."""
    labels = ", ".join(task.labels)
    segs = [Segment(task.instruction.format(labels=labels, target=target or "the target") + "\n\n", True)]
    for ex in demos:
        if ex.label not in task.labels:
            raise SentiEdgeError(f"demonstration label {ex.label!r} is not one of {labels}")
        segs += _item_segments(ex, task)
        segs.append(Segment(" " + ex.label + "\n\n", True))
    return segs


def build_query(task: Task, text: str, target: str | None = None) -> list[Segment]:
    """The per-text part: `Sentence: <text>` (and `Target:`), then `Label:`."""
    return _item_segments(Example(text, None, target), task)


def sample_demos(pool: Sequence[Example], k: int, seed: int, labels: Sequence[str] | None = None) -> list[Example]:
    """k demonstrations drawn from `pool` with `random.Random(seed)`, as the paper does."""
    if k <= 0 or not pool:
        return []
    rng = random.Random(seed)
    if labels is not None:
        pool = [ex for ex in pool if ex.label in labels]
    return rng.sample(list(pool), min(k, len(pool)))


# --- generation tasks -----------------------------------------------------------------------

# Short analyses from a sentiment perspective: what KnowDist teaches the student to write, and
# what `analyze --explain` asks it for. The reply format comes before the text: asked to "end
# with" a label line, the 1.5B teacher often wrote only that line (47 of 99 replies in a first
# run); with this layout it analyses first.
FOCUS = {
    "polarity": "the overall polarity of the text and the reasons for it",
    "emotion": "the emotions the writer expresses (such as anger, joy, sadness, fear, optimism) and how they show",
    "aspects": "the opinion targets and aspects the text evaluates, and the sentiment towards each",
    "stance": "the writer's stance: what they are for or against, and how strongly they hold it",
    "irony": "cues of irony or sarcasm, and whether the literal meaning differs from the intended one",
    "intensity": "how intense the sentiment is (mild, moderate, strong) and the words that set its strength",
}
ANALYSIS_INSTRUCTION = (
    "Analyse the sentiment of the text below, focusing on {focus}.\n"
    "Reply in exactly this format:\n"
    "Analysis: <two to four sentences>\n"
    "Overall sentiment: <positive, negative or neutral>\n\n"
    "Text:"
)
_STATED = re.compile(r"overall sentiment(?: of the text)?\s*(?:[:\-]|\bis\b)\s*\**\s*"
                     r"(?:(?:very|strongly|mostly|clearly|slightly)\s+)?(positive|negative|neutral)", re.IGNORECASE)


def stated_label(analysis: str) -> str | None:
    """The polarity an analysis states last (`Overall sentiment: negative`), if any."""
    found = _STATED.findall(analysis)
    return found[-1].lower() if found else None


def build_analysis_prompt(text: str, perspective: str = "polarity", template: str | None = None) -> list[Segment]:
    """The KnowDist analysis request for one text, as a chat turn for chat models."""
    return wrap_chat([Segment(ANALYSIS_INSTRUCTION.format(focus=FOCUS[perspective]), True),
                      Segment(" " + one_line(text), False)], template)


def analysis_text(output: str) -> str:
    """The analysis without its `Analysis:` head and `Overall sentiment` line, on one line."""
    body = _STATED.split(output)[0] if _STATED.search(output) else output
    body = re.sub(r"^\s*analysis\s*:\s*", "", body, flags=re.IGNORECASE)
    return one_line(body.replace("Overall sentiment:", ""))

CHATML = ("<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n")


def wrap_chat(segments: Sequence[Segment], template: str | None) -> list[Segment]:
    """One user turn and the assistant's opening for a ChatML model; a plain `Answer:` otherwise."""
    if template == "chatml":
        return [Segment(CHATML[0], True), *segments, Segment(CHATML[1], True)]
    return [*segments, Segment("\n\nAnswer:\n", True)]


def build_aspects_prompt(text: str, demos: Sequence[tuple[str, list[dict]]] = (), template: str | None = None) -> list[Segment]:
    """A prompt asking for the JSON list of opinion tuples; wrapped in ChatML for chat models."""
    task = TASKS["aspects"]
    segs = [Segment(task.instruction.format(labels=", ".join(task.labels)) + "\n\n", True)]
    for demo_text, tuples in demos:
        segs += [Segment("Sentence:", True), Segment(" " + one_line(demo_text), False),
                 Segment("\nOpinions: " + json.dumps(tuples, ensure_ascii=False) + "\n\n", True)]
    segs += [Segment("Sentence:", True), Segment(" " + one_line(text), False), Segment("\nOpinions:", True)]
    if template == "chatml":
        segs = [Segment(CHATML[0], True), *segs[:-1], Segment(CHATML[1] + "Opinions:", True)]
    return segs


def aspects_grammar(labels: Sequence[str] = ("negative", "neutral", "positive"), max_items: int = 8) -> str:
    """GBNF for a JSON list of opinion objects with a fixed key order and a closed polarity set."""
    pol = " | ".join(json.dumps(json.dumps(label)) for label in labels)
    items = 'obj ( ", " obj )' + "{0," + str(max_items - 1) + "}"
    return "\n".join([
        f'root ::= " "? "[" ( {items} )? "]"',
        'obj ::= "{" "\\"aspect\\": " nstr ", \\"category\\": " str ", \\"opinion\\": " str '
        '", \\"polarity\\": " pol "}"',
        f"pol ::= {pol}",
        'nstr ::= str | "null"',
        'str ::= "\\"" char{1,60} "\\""',
        'char ::= [^"\\\\\\x00-\\x1f] | "\\\\" ["\\\\/bfnrt]',
    ])


def parse_aspects(output: str, labels: Sequence[str] = ("negative", "neutral", "positive")) -> list[dict] | None:
    """Parse a generated opinion list; None when it is not a list of well-formed objects."""
    start, end = output.find("["), output.rfind("]")
    if start < 0 or end < start:
        return None
    try:
        data = json.loads(output[start:end + 1])
    except json.JSONDecodeError:
        return None
    if not isinstance(data, list):
        return None
    out = []
    for obj in data:
        if not isinstance(obj, dict) or obj.get("polarity") not in labels:
            return None
        out.append({k: obj.get(k) for k in ("aspect", "category", "opinion", "polarity")})
    return out
