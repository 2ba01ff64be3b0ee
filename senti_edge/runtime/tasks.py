"""The tasks: their names, labels and instructions, and custom tasks from --labels / --instruction.

This is the one table that `analyze`, `bench` and `distill` read a task's label words and
instruction from; `prompts.py` builds the prompt strings around it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

from ..errors import SentiEdgeError


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
