"""Chat templates, held once: which template a model uses, and how a prompt is wrapped in it.

A prompt is a list of `Segment`s: text we wrote (instructions, chat markers) may contain special
tokens; text a user supplied is tokenized with special-token parsing off. Every stage that talks
to a model (the runtime engine, distillation's teachers and training, quantize's merge and
registration) detects the template here from the model's own chat template (the GGUF
`tokenizer.chat_template`, or a Hugging Face tokenizer's `chat_template`) and wraps prompts here,
so a student is trained on exactly the bytes the runtime sends it.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

TEMPLATES = ("chatml",)  # the templates senti-edge writes itself; any other model gets plain completion
CHATML = ("<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n")  # the user turn's opening, its end + the reply's opening


class Segment(NamedTuple):
    text: str
    trusted: bool  # True: ours, special tokens allowed; False: user text, parsed as plain characters


def detect_template(chat_template: str | None) -> str | None:
    """"chatml" when a model's chat template uses ChatML's markers, else None (plain completion)."""
    return "chatml" if "<|im_start|>" in (chat_template or "") else None


def known_template(name: str | None) -> str | None:
    """A template name read from a file (a report, the registry), kept only if senti-edge knows it."""
    return name if name in TEMPLATES else None


def chatml(segments: Sequence[Segment], reply: str = "") -> list[Segment]:
    """`segments` as one ChatML user turn, then the assistant's opening (followed by `reply`)."""
    return [Segment(CHATML[0], True), *segments, Segment(CHATML[1] + reply, True)]


def wrap_chat(segments: Sequence[Segment], template: str | None, reply: str = "") -> list[Segment]:
    """One user turn and the assistant's opening for a ChatML model; a plain `Answer:` otherwise.
    With `reply` (e.g. "Opinions:"), the answer's opening: after the assistant's turn opens, or
    on a new line for a plain model."""
    if template == "chatml":
        return chatml(segments, reply)
    return [*segments, Segment("\n" + reply if reply else "\n\nAnswer:\n", True)]
