"""Read the digits in a photo: image bytes in, MNIST-normalised digit images in reading order out.

crops = read_digits(photo_bytes)
labels = classifier.predict_proba(np.stack([crop.image for crop in crops])).argmax(axis=1)
text = digits_to_text(labels, crops)  # "2026", or "12 34" for two lines
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mnist_engine.imaging import ImageError, decode_image_and_size
from mnist_engine.preprocess import WORK_LONG_SIDE, find_ink, to_mnist, to_working_gray
from mnist_engine.segmentation import DigitRegion, find_digits


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
    if max_digits < 1:
        raise ValueError(f"max_digits must be at least 1, got {max_digits}")
    # Decoded straight to gray near the working size: a 12 MP JPEG decodes several times faster.
    image, (original_width, original_height) = decode_image_and_size(
        data, target_long_side=WORK_LONG_SIDE, exact=False, grayscale=True
    )
    gray = to_working_gray(image)
    ink_map = find_ink(gray)
    regions = find_digits(ink_map.mask)
    if len(regions) > max_digits:
        raise TooManyDigitsError(
            f"I found {len(regions)} shapes that could be digits; I read at most {max_digits} at a time. "
            "Send a photo of just the number, cropped close."
        )
    scale_x = original_width / gray.shape[1]
    scale_y = original_height / gray.shape[0]
    return [
        DigitCrop(
            image=_render(ink_map.ink, region),
            box=_scale_box(region, scale_x, scale_y, original_width, original_height),
            line=region.line,
        )
        for region in regions
    ]


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


def _render(ink: np.ndarray, region: DigitRegion) -> np.ndarray:
    """Return the region's ink, limited to its own pixels (not a neighbour's), as an MNIST image."""
    box = region.box
    own_ink = np.where(region.mask, ink[box.top : box.bottom, box.left : box.right], 0)
    return to_mnist(own_ink.astype(np.float32) / 255.0, region.mask)


def _scale_box(
    region: DigitRegion, scale_x: float, scale_y: float, width: int, height: int
) -> tuple[int, int, int, int]:
    box = region.box
    return (
        max(0, int(box.left * scale_x)),
        max(0, int(box.top * scale_y)),
        min(width, int(np.ceil(box.right * scale_x))),
        min(height, int(np.ceil(box.bottom * scale_y))),
    )
