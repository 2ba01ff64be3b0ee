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
from dataclasses import dataclass, replace
from typing import Iterable, NamedTuple, Sequence

from ..errors import SentiEdgeError
from .chat import Segment, chatml, wrap_chat  # noqa: F401  (Segment, wrap_chat: also read from here)


@dataclass(frozen=True)
class Task:
    name: str
    labels: tuple[str, ...]  # the order results are reported in
    instruction: str  # may use {labels} and {target}
    description: str = ""
    needs_target: bool = False
    generative: bool = False
    example: str = ""  # a command line for `senti-edge tasks`
    listed: tuple[str, ...] | None = None  # the order the instruction names the labels in (default: labels)

    @property
    def prompt_labels(self) -> tuple[str, ...]:
        return self.listed or self.labels


NEUTRAL_INSTRUCTION = "Classify each text as one of: {labels}."

TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("polarity", ("negative", "neutral", "positive"),
             "Classify the sentiment of each sentence as one of: {labels}.",
             "negative / neutral / positive (the default)",
             example='echo "The battery died after a day." | senti-edge analyze'),
        Task("binary", ("negative", "positive"),
             "Classify the sentiment of each sentence as one of: {labels}.",
             "negative / positive, as in SST-2, IMDb and Yelp (also called sst2)",
             example="senti-edge analyze reviews.txt -t binary"),
        Task("emotion", ("anger", "joy", "sadness", "optimism"),
             "Classify the emotion expressed in each sentence as one of: {labels}.",
             "anger / joy / sadness / optimism, as in TweetEval",
             example="senti-edge analyze tweets.jsonl -t emotion --field text"),
        Task("irony", ("non-irony", "irony"),
             "Decide whether each sentence is ironic. Answer with one of: {labels}.",
             "non-irony / irony, as in SemEval-2018 task 3",
             example='echo "Great, another Monday." | senti-edge analyze -t irony'),
        Task("stance", ("against", "favor", "none"),
             "Classify the stance of each sentence towards its target as one of: {labels}.",
             "against / favor / none towards --target (or a per-record --target-field)", needs_target=True,
             example='senti-edge analyze tweets.txt -t stance --target "climate action"'),
        Task("intimacy", ("not intimate", "moderately intimate", "highly intimate"),
             "Rate how intimate each sentence is, as one of: {labels}.",
             "not / moderately / highly intimate",
             example="senti-edge analyze posts.txt -t intimacy"),
        Task("aspects", ("negative", "neutral", "positive"),
             "Extract every opinion in the sentence as a JSON list of objects with the keys "
             '"aspect" (the words naming what is judged, or null), "category" (a short lower-case '
             'entity and attribute, such as "food quality"), "opinion" (the opinion words) and '
             '"polarity" (one of: {labels}). Answer [] if there is none.',
             "(aspect, category, opinion, polarity) tuples, grammar-constrained JSON", generative=True,
             example="senti-edge analyze reviews.txt -t aspects -o json"),
    )
}
TASKS["sst2"] = TASKS["binary"]
CUSTOM_EXAMPLE = "senti-edge analyze notes.txt --labels urgent,routine,spam"


def get_task(name: str | None, labels: Sequence[str] | None = None, instruction: str | None = None) -> Task:
    """A built-in task, or a custom one from `labels` and/or `instruction`.

    Custom labels get a neutral instruction (a sentiment instruction steers the model away from
    labels such as "spam"), except for a permutation of the task's own labels and for stance,
    whose instruction is about the target. The instruction lists the labels in one canonical
    order whatever order they were given in (the task's own order for a permutation of its
    labels, else sorted): the listed order moves a small model's scores, and the same model must
    give the same answer for the same label set. Results keep the order given.
    """
    name = name or "polarity"
    if name not in TASKS:
        raise SentiEdgeError(f"unknown task {name!r}; choose one of {', '.join(sorted(TASKS))} or give --labels")
    base = TASKS[name]
    if instruction is not None and not instruction.strip():
        raise SentiEdgeError("--instruction is empty; give the instruction text (it may use {labels} and {target})")
    if base.generative and (labels or instruction):
        raise SentiEdgeError(f"--labels and --instruction do not apply to the generative task {name!r}")
    own = _with_labels(instruction) if instruction is not None else None
    if not labels:
        return base if own is None else replace(base, instruction=own)
    labels = tuple(label.strip() for label in labels)
    if len(labels) < 2 or any(not label for label in labels) or len(set(labels)) != len(labels):
        raise SentiEdgeError(f"--labels needs two or more distinct, non-empty labels, got {','.join(labels)!r}")
    if set(labels) == set(base.labels):
        return replace(base, labels=labels, listed=base.labels, instruction=own or base.instruction)
    if base.needs_target:
        return replace(base, labels=labels, listed=tuple(sorted(labels)), instruction=own or base.instruction)
    return Task("custom", labels, own or NEUTRAL_INSTRUCTION, "your --labels", listed=tuple(sorted(labels)),
                example=CUSTOM_EXAMPLE)


def _with_labels(instruction: str) -> str:
    """A user's instruction, with the label list appended when it does not place `{labels}` itself."""
    instruction = instruction.strip()
    return instruction if "{labels}" in instruction else instruction + " Answer with one of: {labels}."


def render_instruction(task: Task, target: str | None = None) -> str:
    """The instruction as the model sees it (plain replacement, so other braces are kept)."""
    return task.instruction.replace("{labels}", ", ".join(task.prompt_labels)).replace("{target}", target or "the target")


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
    segs = [Segment(render_instruction(task, target) + "\n\n", True)]
    for ex in demos:
        if ex.label not in task.labels:
            raise SentiEdgeError(f"demonstration label {ex.label!r} is not one of {', '.join(task.labels)}")
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


EXPLAINED = {"polarity": "polarity", "binary": "polarity", "emotion": "emotion", "irony": "irony", "stance": "stance"}


def explain_focus(task: Task) -> str:
    """The analysis perspective that speaks in `task`'s terms; an error for tasks without one."""
    if task.name not in EXPLAINED:
        why = ("it extracts tuples, not a label" if task.generative else
               "custom labels have no analysis the model was trained to write" if task.name == "custom" else
               f"the model was not trained to analyse {task.name}")
        raise SentiEdgeError(f"--explain does not apply to -t {task.name}: {why}; "
                             f"it works with {', '.join(EXPLAINED)}")
    return EXPLAINED[task.name]


def build_analysis_prompt(text: str, perspective: str = "polarity", template: str | None = None,
                          target: str | None = None) -> list[Segment]:
    """The KnowDist analysis request for one text (and its stance target), as a chat turn for chat models."""
    instruction = ANALYSIS_INSTRUCTION.format(focus=FOCUS[perspective])
    if target is None:
        return wrap_chat([Segment(instruction, True), Segment(" " + one_line(text), False)], template)
    head, _, _ = instruction.rpartition("Text:")
    return wrap_chat([Segment(head + "Target:", True), Segment(" " + one_line(target), False),
                      Segment("\nText:", True), Segment(" " + one_line(text), False)], template)


_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")


def analysis_text(output: str) -> str:
    """The analysis on one line, in whole sentences: without its `Analysis:` head, without the
    sentences that state an overall verdict (the label column gives the task's own answer), and
    without a last sentence cut off by the token budget (unless it is all there is)."""
    body = re.split(r"(?im)^\W*overall sentiment\s*:", output)[0]
    body = one_line(re.sub(r"^\s*analysis\s*:\s*", "", body, flags=re.IGNORECASE))
    sentences = [x for x in _SENTENCE_END.split(body) if x.strip() and not _STATED.search(x)]
    if len(sentences) > 1 and not re.search(r"[.!?][\"')\]]*$", sentences[-1]):
        sentences.pop()
    return " ".join(sentences)


def build_aspects_prompt(text: str, template: str | None = None) -> list[Segment]:
    """A prompt asking for the JSON list of opinion tuples; wrapped in ChatML for chat models."""
    segs = [Segment(render_instruction(TASKS["aspects"]) + "\n\n", True)]
    segs += [Segment("Sentence:", True), Segment(" " + one_line(text), False), Segment("\nOpinions:", True)]
    if template == "chatml":
        segs = chatml(segs[:-1], reply="Opinions:")
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
