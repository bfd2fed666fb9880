"""From image bytes to the digits read, with confidences: the photo pipeline plus a classifier."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from mnist_engine.photo import DigitCrop, digits_to_text, read_digits_upright


class ProbabilityModel(Protocol):
    """Anything that maps uint8 (N, 28, 28) digits to (N, 10) class probabilities."""

    def predict_proba(self, images: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class ReadDigit:
    """One digit read from a photo, its confidence and the runner-up."""

    digit: int
    confidence: float
    runner_up: int
    runner_up_confidence: float
    crop: DigitCrop


@dataclass(frozen=True)
class Recognition:
    """Everything read from one image, in reading order."""

    digits: list[ReadDigit]
    text: str

    @property
    def confidence(self) -> float:
        """The probability that the whole string is right (product of the digits' confidences)."""
        return float(np.prod([digit.confidence for digit in self.digits])) if self.digits else 0.0

    @property
    def samples(self) -> list[bytes]:
        """Each digit's normalised 28×28 image as 784 bytes, for storage and retraining."""
        return [digit.crop.image.astype(np.uint8).tobytes() for digit in self.digits]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (the CLI's `predict --json` output)."""
        return {
            "digits": self.text,
            "confidence": round(self.confidence, 4),
            "per_digit": [
                {
                    "digit": digit.digit,
                    "confidence": round(digit.confidence, 4),
                    "runner_up": digit.runner_up,
                    "runner_up_confidence": round(digit.runner_up_confidence, 4),
                    "box": list(digit.crop.box),
                    "line": digit.crop.line,
                }
                for digit in self.digits
            ],
        }


MAX_DIGITS = 24  # a page of numbers, not a page of text


def recognize(image_bytes: bytes, model: ProbabilityModel, max_digits: int = MAX_DIGITS) -> Recognition:
    """Find the digits in an image and classify them; raises ImageError for unreadable input.

    A number photographed sideways (no EXIF orientation) is read upright: the model's confidence
    decides which quarter turn reads best.
    """
    crops = read_digits_upright(image_bytes, model.predict_proba, max_digits=max_digits)
    return classify_crops(crops, model)


def classify_crops(crops: list[DigitCrop], model: ProbabilityModel) -> Recognition:
    """Classify already-found digits in one batch."""
    if not crops:
        return Recognition(digits=[], text="")
    probabilities = model.predict_proba(np.stack([crop.image for crop in crops]))
    ranked = np.argsort(probabilities, axis=1)[:, ::-1]
    digits = [
        ReadDigit(
            digit=int(order[0]),
            confidence=float(row[order[0]]),
            runner_up=int(order[1]),
            runner_up_confidence=float(row[order[1]]),
            crop=crop,
        )
        for crop, row, order in zip(crops, probabilities, ranked, strict=True)
    ]
    return Recognition(digits=digits, text=digits_to_text([digit.digit for digit in digits], crops))
