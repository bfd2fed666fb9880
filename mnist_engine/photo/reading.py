"""Read a picture into digits: decode it, find the ink, cut it into digits, classify each one.

    recognition = recognize(image_bytes, classifier)   # anything with predict_proba
    recognition.text                                   # "2026"; lines joined by a space: "12 34"
    recognition.digits[0]                              # digit, confidence, runner-up, 28×28 image, box

A number photographed sideways (no EXIF orientation to say so) is read upright: when three or
more digits are found and are mostly wider than tall, the picture is also read turned a quarter
each way, and the model's clearly most confident reading wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from mnist_engine.photo.decode import ImageError, decode_image_and_size
from mnist_engine.photo.ink import MAX_WORK_LONG_SIDE, WORK_PIXELS, find_ink, to_working_gray
from mnist_engine.photo.mnist_style import to_mnist
from mnist_engine.photo.segmentation import Box, DigitRegion, find_digits, merge_regions

MAX_DIGITS = 24  # a page of numbers, not a page of text

# A turned reading must be this much more confident (mean log-probability) to replace the upright one.
_TURN_MARGIN = 0.1
_MIN_DIGITS_TO_TURN = 3
# Neighbours on a line whose union is still narrower than this (width / height) may be one digit
# the pipeline cut apart (a 4 whose strokes do not touch, a 0 broken by a skipping pen): the model
# reads them both ways, and the one digit wins when it is surer than both pieces together.
_MAX_ONE_DIGIT_ASPECT = 0.9
# Pieces of one digit lie close: the gap between them is at most this share of their joint height
# (a pen that skips leaves a few per cent; digits of a number and lines of writing lie further
# apart). Pieces on two successive lines must also overlap across half the narrower one.
_MAX_PIECES_GAP = 0.12
_MIN_JOINED_CONFIDENCE = 0.9
# A shape cut by the picture's border, beside digits that are whole, is read only when the model is
# this sure of it: the edge of a shadow or of the table, a fold, a digit cut off by the framing.
_MIN_CUT_SHAPE_CONFIDENCE = 0.9


class ProbabilityModel(Protocol):
    """Anything that maps uint8 (N, 28, 28) digits to (N, 10) class probabilities."""

    def predict_proba(self, images: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class DigitCrop:
    """One digit found in a picture."""

    image: np.ndarray
    """(28, 28) uint8, white ink on black, MNIST-normalised."""
    box: tuple[int, int, int, int]
    """(left, top, right, bottom) in the pixel coordinates of the upright, full-size original."""
    line: int
    """0-based text line, top to bottom."""


@dataclass(frozen=True)
class ReadDigit:
    """One digit read from a picture, its confidence and the runner-up."""

    digit: int
    confidence: float
    runner_up: int
    runner_up_confidence: float
    crop: DigitCrop


@dataclass(frozen=True)
class Recognition:
    """Everything read from one picture, in reading order."""

    digits: list[ReadDigit]
    text: str

    @classmethod
    def of(cls, digits: list[ReadDigit]) -> Recognition:
        """The reading of these digits, their text written out line by line."""
        return cls(
            digits=digits,
            text=digits_to_text([digit.digit for digit in digits], [digit.crop for digit in digits]),
        )

    @property
    def confidence(self) -> float:
        """The probability that the whole string is right (product of the digits' confidences)."""
        return float(np.prod([digit.confidence for digit in self.digits])) if self.digits else 0.0

    @property
    def mean_log_confidence(self) -> float:
        """The mean log-probability of each digit's reading: how sure the model is, whatever the length."""
        if not self.digits:
            return -np.inf
        return float(np.mean(np.log(np.maximum([digit.confidence for digit in self.digits], 1e-9))))

    def second_reading(self) -> str | None:
        """The next most likely reading: the least sure digit replaced by its runner-up (digits only)."""
        if not self.digits:
            return None
        least_sure = min(range(len(self.digits)), key=lambda index: self.digits[index].confidence)
        digits = [str(digit.digit) for digit in self.digits]
        digits[least_sure] = str(self.digits[least_sure].runner_up)
        return "".join(digits)

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


class TooManyDigitsError(ImageError):
    """The picture holds more digit-like shapes than the caller allows (a page of text, a texture)."""


def recognize(image_bytes: bytes, model: ProbabilityModel, max_digits: int = MAX_DIGITS) -> Recognition:
    """Find the digits in a picture and classify them; raises ImageError for unreadable input."""
    gray, original_size = _decode(image_bytes, max_digits)
    found = _find(gray, original_size, max_digits, quarter_turns=0)
    crops = found.crops()
    reading = classify_crops(crops, model)
    if _looks_sideways(crops):
        # The way up is chosen on the shapes as found, before any are joined into one digit.
        best_score = reading.mean_log_confidence + _TURN_MARGIN
        for quarter_turns in (1, 3):
            try:
                turned = _find(gray, original_size, max_digits, quarter_turns)
            except TooManyDigitsError:
                continue
            turned_reading = classify_crops(turned.crops(), model)
            if turned_reading.digits and turned_reading.mean_log_confidence > best_score:
                found, reading = turned, turned_reading
                best_score = turned_reading.mean_log_confidence
    found, reading = _drop_unsure_cut_shapes(found, reading)
    return _join_pieces(found, reading, model)


def find_digit_crops(image_bytes: bytes, *, max_digits: int = MAX_DIGITS) -> list[DigitCrop]:
    """Return the digits in a picture, upright as stored, in reading order; [] means none was found.

    Raises ImageError for bytes that are not a readable image and TooManyDigitsError when more
    than `max_digits` digit-like shapes are found.
    """
    gray, original_size = _decode(image_bytes, max_digits)
    return _find(gray, original_size, max_digits, quarter_turns=0).crops()


def classify_crops(crops: Sequence[DigitCrop], model: ProbabilityModel) -> Recognition:
    """Classify already-found digits in one batch."""
    if not crops:
        return Recognition.of([])
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
    return Recognition.of(digits)


def digits_to_text(labels: Sequence[int], crops: Sequence[DigitCrop]) -> str:
    """Return the digits as one string, left to right, text lines joined by one space: "12 34"."""
    if len(labels) != len(crops):
        raise ValueError(f"got {len(labels)} labels for {len(crops)} crops")
    lines: dict[int, list[str]] = {}
    for label, crop in zip(labels, crops, strict=True):
        if not 0 <= int(label) <= 9:
            raise ValueError(f"a digit label must be in 0..9, got {label}")
        lines.setdefault(crop.line, []).append(str(int(label)))
    return " ".join("".join(lines[line]) for line in sorted(lines))


def _decode(data: bytes, max_digits: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Return the working gray image and the upright original's (width, height)."""
    if max_digits < 1:
        raise ValueError(f"max_digits must be at least 1, got {max_digits}")
    # Decoded straight to gray near the working size: a 12 MP JPEG decodes several times faster.
    image, original_size = decode_image_and_size(
        data, target_long_side=MAX_WORK_LONG_SIDE, target_pixels=WORK_PIXELS, exact=False, grayscale=True
    )
    return to_working_gray(image), original_size


@dataclass(frozen=True)
class _Found:
    """The digits found in the working image turned `quarter_turns` times: their ink and regions."""

    ink: np.ndarray
    regions: list[DigitRegion]
    quarter_turns: int
    working_shape: tuple[int, int]
    original_size: tuple[int, int]

    def crop(self, region: DigitRegion) -> DigitCrop:
        """Render one region as an MNIST digit, its box mapped back to the original's pixels."""
        return DigitCrop(
            image=_render(self.ink, region),
            box=_original_box(region.box, self.quarter_turns, self.working_shape, self.original_size),
            line=region.line,
        )

    def crops(self) -> list[DigitCrop]:
        return [self.crop(region) for region in self.regions]


def _find(gray: np.ndarray, original_size: tuple[int, int], max_digits: int, quarter_turns: int) -> _Found:
    """Find the digits of the working image turned `quarter_turns` times anticlockwise."""
    turned = np.ascontiguousarray(np.rot90(gray, quarter_turns))
    ink_map = find_ink(turned)
    regions = find_digits(ink_map.mask)
    if len(regions) > max_digits:
        raise TooManyDigitsError(
            f"I found {len(regions)} shapes that could be digits; I read at most {max_digits} at a time. "
            "Send a photo of just the number, cropped close.",
            "too_many_digits",
            found=len(regions),
            limit=max_digits,
        )
    return _Found(ink_map.ink, regions, quarter_turns, (gray.shape[0], gray.shape[1]), original_size)


def _drop_unsure_cut_shapes(found: _Found, reading: Recognition) -> tuple[_Found, Recognition]:
    """Drop the shapes cut by the border that the model cannot read, when whole digits remain."""
    height, width = found.ink.shape
    cut = [region.box.touches_border(height, width) for region in found.regions]
    keep = [
        not is_cut or digit.confidence >= _MIN_CUT_SHAPE_CONFIDENCE
        for is_cut, digit in zip(cut, reading.digits, strict=True)
    ]
    if all(keep) or all(cut):
        return found, reading
    regions = [region for region, kept in zip(found.regions, keep, strict=True) if kept]
    digits = [digit for digit, kept in zip(reading.digits, keep, strict=True) if kept]
    return replace(found, regions=regions), Recognition.of(digits)


def _join_pieces(found: _Found, reading: Recognition, model: ProbabilityModel) -> Recognition:
    """Join neighbours that the model reads better as one digit than as two."""
    regions = list(found.regions)
    digits = list(reading.digits)
    index = 0
    while index < len(digits) - 1:
        joined = _joined(regions[index], regions[index + 1])
        if joined is not None:
            candidate = classify_crops([found.crop(joined)], model).digits[0]
            # The one digit must be sure, and surer than both pieces together (the product of their
            # confidences): a weak model unsure of two real digits must not merge them.
            both = digits[index].confidence * digits[index + 1].confidence
            if candidate.confidence >= _MIN_JOINED_CONFIDENCE and candidate.confidence > both:
                regions[index : index + 2] = [joined]
                digits[index : index + 2] = [candidate]
                continue  # the joined digit may take in its next neighbour too
        index += 1
    if len(digits) == len(reading.digits):
        return reading
    return Recognition.of(digits)


def _joined(first: DigitRegion, second: DigitRegion) -> DigitRegion | None:
    """The two shapes as one digit, when they could be the pieces of one.

    Side by side on a line, together no wider than a digit; or one just above the other on two
    successive lines (a stroke broken across, which segmentation puts on two lines).
    """
    box = first.box.union(second.box)
    side_by_side = (
        first.line == second.line
        and box.width <= _MAX_ONE_DIGIT_ASPECT * box.height
        and -first.box.horizontal_overlap(second.box) <= _MAX_PIECES_GAP * box.height
    )
    narrower = min(first.box.width, second.box.width)
    stacked = (
        second.line == first.line + 1
        and first.box.horizontal_overlap(second.box) >= 0.5 * narrower
        and -first.box.vertical_overlap(second.box) <= _MAX_PIECES_GAP * box.height
    )
    if not (side_by_side or stacked):
        return None
    return replace(merge_regions(first, second), line=first.line)


def _looks_sideways(crops: Sequence[DigitCrop]) -> bool:
    """Return whether several digits were found and are mostly wider than tall, as if on their side.

    One digit alone is never turned: a 6 on its side is as plausible a 9 as a 6.
    """
    if len(crops) < _MIN_DIGITS_TO_TURN:
        return False
    aspects = [(crop.box[2] - crop.box[0]) / max(crop.box[3] - crop.box[1], 1) for crop in crops]
    return float(np.median(aspects)) > 1.0


def _render(ink: np.ndarray, region: DigitRegion) -> np.ndarray:
    """Return the region's ink, limited to its own pixels (not a neighbour's), as an MNIST image."""
    box = region.box
    own_ink = np.where(region.mask, ink[box.top : box.bottom, box.left : box.right], 0)
    return to_mnist(own_ink.astype(np.float32) / 255.0, region.mask)


def _original_box(
    box: Box, quarter_turns: int, shape: tuple[int, int], original_size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Map a box found in the turned working image back to the upright original's pixels."""
    height, width = shape
    if quarter_turns == 1:  # turned[i, j] = gray[j, width - 1 - i]
        left, top, right, bottom = width - box.bottom, box.left, width - box.top, box.right
    elif quarter_turns == 3:  # turned[i, j] = gray[height - 1 - j, i]
        left, top, right, bottom = box.top, height - box.right, box.bottom, height - box.left
    else:
        left, top, right, bottom = box.left, box.top, box.right, box.bottom
    original_width, original_height = original_size
    scale_x, scale_y = original_width / width, original_height / height
    return (
        max(0, int(left * scale_x)),
        max(0, int(top * scale_y)),
        min(original_width, int(np.ceil(right * scale_x))),
        min(original_height, int(np.ceil(bottom * scale_y))),
    )
