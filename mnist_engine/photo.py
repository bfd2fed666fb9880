"""Read the digits in a photo: image bytes in, MNIST-normalised digit images in reading order out.

crops = read_digits(photo_bytes)
labels = classifier.predict_proba(np.stack([crop.image for crop in crops])).argmax(axis=1)
text = digits_to_text(labels, crops)  # "2026", or "12 34" for two lines

`read_digits_upright(photo_bytes, classifier.predict_proba)` also reads a photo taken sideways
(digits on their side and no EXIF orientation to say so) the right way up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mnist_engine.imaging import ImageError, decode_image_and_size
from mnist_engine.preprocess import WORK_LONG_SIDE, find_ink, to_mnist, to_working_gray
from mnist_engine.segmentation import Box, DigitRegion, find_digits


@dataclass(frozen=True)
class DigitCrop:
    """One digit read from a photo."""

    image: np.ndarray
    """(28, 28) uint8, white ink on black, MNIST-normalised."""
    box: tuple[int, int, int, int]
    """(left, top, right, bottom) in the pixel coordinates of the upright, full-size original."""
    line: int
    """0-based text line, top to bottom."""


class TooManyDigitsError(ImageError):
    """The image holds more digit-like shapes than the caller allows (a page of text, a texture)."""


def read_digits(data: bytes, *, max_digits: int = 12) -> list[DigitCrop]:
    """Return the digits in the image `data` in reading order; an empty list means no digit was found.

    Raises ImageError for bytes that are not a readable image and TooManyDigitsError when more
    than `max_digits` digit-like shapes are found.
    """
    gray, original_size = _decode(data, max_digits)
    return _read(gray, original_size, max_digits, quarter_turns=0)


def read_digits_upright(
    data: bytes, predict_proba: Callable[[np.ndarray], np.ndarray], *, max_digits: int = 12
) -> list[DigitCrop]:
    """Like `read_digits`, but a photo taken sideways, with no EXIF orientation, is read upright.

    Digits stand taller than wide; when three or more are found and are mostly wider than tall,
    the image is also read turned a quarter each way, and the reading `predict_proba` (uint8
    (N, 28, 28) to (N, 10)) is clearly the most confident of wins. Boxes stay in the original's
    coordinates.
    """
    gray, original_size = _decode(data, max_digits)
    crops = _read(gray, original_size, max_digits, quarter_turns=0)
    if not _looks_sideways(crops):
        return crops
    best, best_score = crops, _confidence(crops, predict_proba) + _TURN_MARGIN
    for quarter_turns in (1, 3):
        try:
            turned = _read(gray, original_size, max_digits, quarter_turns)
        except TooManyDigitsError:
            continue
        score = _confidence(turned, predict_proba)
        if turned and score > best_score:
            best, best_score = turned, score
    return best


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


# A turned reading must be this much more confident (mean log-probability) to replace the upright one.
_TURN_MARGIN = 0.1
_MIN_DIGITS_TO_TURN = 3


def _decode(data: bytes, max_digits: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Return the working gray image and the upright original's (width, height)."""
    if max_digits < 1:
        raise ValueError(f"max_digits must be at least 1, got {max_digits}")
    # Decoded straight to gray near the working size: a 12 MP JPEG decodes several times faster.
    image, original_size = decode_image_and_size(
        data, target_long_side=WORK_LONG_SIDE, exact=False, grayscale=True
    )
    return to_working_gray(image), original_size


def _read(
    gray: np.ndarray, original_size: tuple[int, int], max_digits: int, quarter_turns: int
) -> list[DigitCrop]:
    """Find and render the digits of the working image turned `quarter_turns` times anticlockwise."""
    turned = np.ascontiguousarray(np.rot90(gray, quarter_turns))
    ink_map = find_ink(turned)
    regions = find_digits(ink_map.mask)
    if len(regions) > max_digits:
        raise TooManyDigitsError(
            f"I found {len(regions)} shapes that could be digits; I read at most {max_digits} at a time. "
            "Send a photo of just the number, cropped close."
        )
    return [
        DigitCrop(
            image=_render(ink_map.ink, region),
            box=_original_box(region.box, quarter_turns, gray.shape, original_size),
            line=region.line,
        )
        for region in regions
    ]


def _looks_sideways(crops: Sequence[DigitCrop]) -> bool:
    """Return whether several digits were found and are mostly wider than tall, as if on their side.

    One digit alone is never turned: a 6 on its side is as plausible a 9 as a 6.
    """
    if len(crops) < _MIN_DIGITS_TO_TURN:
        return False
    aspects = [(crop.box[2] - crop.box[0]) / max(crop.box[3] - crop.box[1], 1) for crop in crops]
    return float(np.median(aspects)) > 1.0


def _confidence(crops: Sequence[DigitCrop], predict_proba: Callable[[np.ndarray], np.ndarray]) -> float:
    """Return the mean log-probability of the most likely digit of each crop."""
    if not crops:
        return -np.inf
    probabilities = predict_proba(np.stack([crop.image for crop in crops]))
    return float(np.mean(np.log(np.maximum(probabilities.max(axis=1), 1e-9))))


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
