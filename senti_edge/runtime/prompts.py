"""Few-shot prompts, as plain strings; nothing here knows about llama.cpp. The tasks (labels,
instructions) are in `tasks.py`.

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

import itertools
import json
import random
import re
from typing import Iterable, NamedTuple, Sequence

from ..errors import SentiEdgeError
from .chat import Segment, wrap_chat  # noqa: F401  (Segment, wrap_chat: also read from here)
from .tasks import TASKS, Task, render_instruction


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


def explanation_lead(focus: str, label: str, target: str | None = None) -> str:
    """The opening the explanation is forced to start with: it states the label the classifier
    gave, so the model's analysis gives reasons for that label instead of reaching its own."""
    if focus == "stance":
        about = one_line(target or "the target")
        side = {"favor": f"in favour of {about}", "against": f"against {about}"}.get(label, f"neither for nor against {about}")
        return f"Analysis: The writer is {side} because"
    if focus == "irony":
        return f"Analysis: The text is {'not ironic' if label == 'non-irony' else 'ironic'} because"
    if focus == "emotion":
        return f"Analysis: The text expresses {label} because"
    return f"Analysis: The sentiment is {label} because"


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


ASPECTS_REPLY = "Opinions:"  # the answer's opening; training examples end their prompt before it


def build_aspects_prompt(text: str, template: str | None = None) -> list[Segment]:
    """A prompt asking for the JSON list of opinion tuples; wrapped in ChatML for chat models."""
    segs = [Segment(render_instruction(TASKS["aspects"]) + "\n\n", True)]
    segs += [Segment("Sentence:", True), Segment(" " + one_line(text), False)]
    return wrap_chat(segs, template, reply=ASPECTS_REPLY)


_TOKEN = re.compile(r"\w+(?:['’-]\w+)*|[^\w\s]")
SPAN_WORDS = 6  # the longest aspect or opinion span the grounded grammar offers, in words


def _words(line: str) -> list[re.Match]:
    """The words of a line (punctuation is not a word, but may stand between two)."""
    return [m for m in _TOKEN.finditer(line) if m.group()[0].isalnum() or m.group()[0] == "_"]


def text_spans(text: str, max_words: int = SPAN_WORDS) -> list[str]:
    """Every run of 1..max_words consecutive words of `text` (as the prompt shows it, on one line),
    cut at word boundaries and keeping what stands between the words (spaces, commas, hyphens)."""
    line = one_line(text)
    words = _words(line)
    return list(dict.fromkeys(line[words[i].start():words[j].end()]
                              for i in range(len(words)) for j in range(i, min(i + max_words, len(words)))))


def _gbnf(s: str) -> str:
    """A GBNF literal matching `s` as it appears inside a JSON string."""
    return json.dumps(json.dumps(s, ensure_ascii=False)[1:-1], ensure_ascii=False)


def _span_rules(text: str, max_words: int) -> list[str]:
    """GBNF rules `span ::= ...` matching exactly the quoted JSON strings of `text_spans`, as a
    word-level trie (a rule per word that more words may follow), so that the sampler follows a
    few words at a time instead of every span at once."""
    line = one_line(text)
    words = _words(line)
    trie: dict = {}  # piece (a word with what stands before it) -> the pieces that may follow it
    for i in range(len(words)):
        node, prev = trie, words[i].start()
        for j in range(i, min(i + max_words, len(words))):
            node = node.setdefault(line[prev:words[j].end()], {})
            prev = words[j].end()
    rules: list[str] = []
    names = itertools.count()

    def body(node: dict) -> str:
        alts = []
        for piece, rest in node.items():
            if rest:  # a rule for the words that may follow, optional: a span may end at any word
                name = f"s{next(names)}"
                rules.append(f"{name} ::= ( {body(rest)} )?")
                alts.append(f"{_gbnf(piece)} {name}")
            else:
                alts.append(_gbnf(piece))
        return " | ".join(alts)

    root = body(trie)
    return [f'span ::= "\\"" ( {root} ) "\\""' if root else 'span ::= "\\"\\""', *rules]


def aspects_grammar(labels: Sequence[str] = ("negative", "neutral", "positive"), max_items: int = 8,
                    text: str | None = None, max_words: int = SPAN_WORDS) -> str:
    """GBNF for a JSON list of opinion objects with a fixed key order and a closed polarity set.

    With `text`, "aspect" and "opinion" can only be spans of that text (up to `max_words` words):
    the task defines them as the text's own words, and small students otherwise fill them with
    words the text never had ("food quality" for a phone). "category" stays free: it names a
    class, not a span. A text without words allows only `[]`."""
    pol = " | ".join(json.dumps(json.dumps(label)) for label in labels)
    items = 'obj ( ", " obj )' + "{0," + str(max_items - 1) + "}"
    grounded = text is not None
    span = "span" if grounded else "str"
    lines = [
        f'root ::= " "? "[" ( {items} )? "]"',
        f'obj ::= "{{" "\\"aspect\\": " nstr ", \\"category\\": " str ", \\"opinion\\": " {span} '
        '", \\"polarity\\": " pol "}"',
        f"pol ::= {pol}",
        f'nstr ::= {span} | "null"',
        'str ::= "\\"" char{1,60} "\\""',
        'char ::= [^"\\\\\\x00-\\x1f] | "\\\\" ["\\\\/bfnrt]',
    ]
    if grounded:
        spans = _span_rules(text, max_words)
        if spans[0] == 'span ::= "\\"\\""':  # no words: no opinion can be named
            return 'root ::= " "? "[]"'
        lines += spans
    return "\n".join(lines)


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
    out = [_opinion(obj, labels) for obj in data]
    return None if None in out else out


def aspects_so_far(output: str, labels: Sequence[str] = ("negative", "neutral", "positive")) -> list[dict]:
    """The well-formed opinion objects at the head of a list that may be unfinished (cut off by
    the token budget, or stopped early): what a grammar-constrained answer had completed."""
    start = output.find("[")
    out: list[dict] = []
    if start < 0:
        return out
    decoder, i = json.JSONDecoder(), start + 1
    while True:
        while i < len(output) and output[i] in " ,\n":
            i += 1
        try:
            obj, i = decoder.raw_decode(output, i)
        except json.JSONDecodeError:
            return out
        opinion = _opinion(obj, labels)
        if opinion is None:
            return out
        out.append(opinion)


def repeats_an_opinion(output: str, labels: Sequence[str] = ("negative", "neutral", "positive")) -> bool:
    """True once the last finished object of a generated list repeats an earlier one word for
    word: small students loop on one tuple until the budget runs out, and the copies are dropped."""
    objs = aspects_so_far(output, labels)
    return len(objs) > 1 and objs[-1] in objs[:-1]


def _opinion(obj, labels: Sequence[str]) -> dict | None:
    if not isinstance(obj, dict) or obj.get("polarity") not in labels:
        return None
    return {k: obj.get(k) for k in ("aspect", "category", "opinion", "polarity")}
