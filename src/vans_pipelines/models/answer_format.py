"""The paper's answer format, ``[Think] reasoning [/Think] [Ans] caption [/Ans]``: how a training target is
written and how a VLM's output is read back (:func:`parse_answer`, the one parser). Rewards and metrics
need only this, not the model."""

from __future__ import annotations

import re
from dataclasses import dataclass

from vans_pipelines.models.tokenizer import ANS_CLOSE, ANS_OPEN, THINK_CLOSE, THINK_OPEN


@dataclass(frozen=True)
class Answer:
    reasoning: str
    caption: str
    well_formed: bool


_ANSWER = re.compile(
    rf"^\s*{re.escape(THINK_OPEN)}(.*?){re.escape(THINK_CLOSE)}\s*{re.escape(ANS_OPEN)}(.*?){re.escape(ANS_CLOSE)}\s*$",
    re.DOTALL,
)


def format_answer(reasoning: str, caption: str) -> str:
    """The training target for one sample.

    >>> format_answer("Two steps are done.", "Paint the red square blue.")
    '[Think] Two steps are done. [/Think] [Ans] Paint the red square blue. [/Ans]'
    """
    return f"{THINK_OPEN} {reasoning.strip()} {THINK_CLOSE} {ANS_OPEN} {caption.strip()} {ANS_CLOSE}"


def parse_answer(text: str) -> Answer:
    """Split a VLM output into reasoning and caption; ``well_formed`` says whether it kept the format.

    A malformed output still yields its best caption guess (the text after ``[Ans]``, or the whole text
    without markers), so text metrics stay defined; the format reward reads ``well_formed``.

    >>> parse_answer("[Think] it moves left [/Think] [Ans] The ball bounces. [/Ans]")
    Answer(reasoning='it moves left', caption='The ball bounces.', well_formed=True)
    >>> parse_answer("The ball [Ans] bounces").well_formed
    False
    """
    match = _ANSWER.match(text)
    if match:
        return Answer(match.group(1).strip(), match.group(2).strip(), True)
    caption = text.split(ANS_OPEN, 1)[1] if ANS_OPEN in text else text
    for marker in (THINK_OPEN, THINK_CLOSE, ANS_OPEN, ANS_CLOSE):
        caption = caption.replace(marker, " ")
    return Answer("", " ".join(caption.split()), False)
