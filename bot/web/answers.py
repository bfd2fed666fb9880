"""The core's answers as the web page draws them: the text, each digit with its box, and the choices.

The core's buttons carry action strings (`ok:42`, `sv:42:7`, `no:42`); here each one becomes
what pressing it means on the page: a verdict to send, or the digit pad to open.
"""

from __future__ import annotations

from typing import Any

from bot.core.reading import Answer
from bot.core.replies import Action, Button, parse_action
from bot.core.texts import say
from mnist_engine.photo import MAX_DIGITS


def answer_json(answer: Answer) -> dict[str, Any]:
    """What the page shows of an answer: text, digits with boxes, choices (no id when nothing was read)."""
    recognition = answer.recognition
    digits = (
        []
        if recognition is None
        else [
            {
                "digit": digit.digit,
                "confidence": round(digit.confidence, 4),
                "runner_up": digit.runner_up,
                "runner_up_confidence": round(digit.runner_up_confidence, 4),
                "box": list(digit.crop.box),
                "sure": say("web.sure", confidence=digit.confidence),
            }
            for digit in recognition.digits
        ]
    )
    return {
        "text": answer.reply.text,
        "prediction_id": answer.prediction_id,
        "read": None if recognition is None else recognition.text,
        "confidence": None if recognition is None else round(recognition.confidence, 4),
        "sure": None if recognition is None else say("web.sure", confidence=recognition.confidence),
        "digits": digits,
        "choices": [choice(button) for row in answer.reply.buttons for button in row],
        "max_digits": MAX_DIGITS,
    }


def choice(button: Button) -> dict[str, Any]:
    """One button: `{"label", "verdict": {"right": true} | {"digits": "7"}}`, or `"pad": true` for ❌."""
    pressed = parse_action(button.action)
    if pressed is None:
        raise ValueError(f"the core made a button with an action the web cannot parse: {button.action!r}")
    if pressed.action is Action.RIGHT:
        return {"label": button.label, "verdict": {"right": True}}
    if pressed.action is Action.SAVE:
        return {"label": button.label, "verdict": {"digits": pressed.typed}}
    return {"label": button.label, "pad": True}
