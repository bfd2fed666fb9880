"""Render MNIST digits as phone photos of paper: seeded, so the same seed gives the same photos.

Each photo is one digit (or a row of two to six: a number) written in ink on paper of some
shade, colour and texture, sometimes ruled or squared, sometimes white chalk on a dark board,
with a fine pen or a marker, the stroke sometimes broken, under a lighting gradient and a
shadow, seen in perspective, blurred, noisy and saved as a JPEG, the digit anywhere from small
in a large frame to filling it.

Rendered from MNIST's *test* digits it is the synthetic benchmark (scripts/make_synthetic_photos.py);
rendered from training digits and run through the photo pipeline it is training material
(mnist_engine.synthetic.pipeline_crops).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

FRAME_SIZES = ((1280, 960), (960, 1280), (1280, 720), (1024, 768), (800, 800))
PAPERS = (
    (246, 245, 240),  # white
    (236, 226, 200),  # cream
    (205, 205, 200),  # grey
    (222, 230, 240),  # pale blue
    (242, 236, 195),  # pale yellow
    (200, 228, 200),  # green
    (240, 210, 218),  # pink
    (196, 168, 128),  # kraft brown
)
INKS = (
    (25, 25, 30),  # black pen
    (30, 45, 150),  # blue ballpoint
    (20, 25, 85),  # dark blue
    (30, 100, 55),  # green
    (95, 45, 125),  # purple
    (150, 35, 35),  # red
    (95, 95, 100),  # pencil
)
BOARD = (45, 60, 50)
CHALK = (235, 235, 230)
RULE_BLUE = (165, 190, 230)
MARGIN_RED = (220, 120, 120)


@dataclass(frozen=True)
class SyntheticPhoto:
    """One rendered photo: JPEG bytes and the digits it shows, left to right."""

    data: bytes
    label: str


MAX_NUMBER_LENGTH = 6


def make_photo_set(
    images: np.ndarray,
    labels: np.ndarray,
    count: int,
    seed: int,
    multi_fraction: float = 0.15,
    frame_sizes: Sequence[tuple[int, int]] = FRAME_SIZES,
) -> Iterator[SyntheticPhoto]:
    """Yield `count` photos of digits drawn (seeded) from `images`; `multi_fraction` of them are numbers."""
    if not 0 <= multi_fraction <= 1:
        raise ValueError(f"multi_fraction must be in [0, 1], got {multi_fraction}")
    rng = np.random.default_rng(seed)
    for _ in range(count):
        length = int(rng.integers(2, MAX_NUMBER_LENGTH + 1)) if rng.random() < multi_fraction else 1
        chosen = rng.integers(0, len(images), size=length)
        size = frame_sizes[int(rng.integers(len(frame_sizes)))]
        data = render_photo([images[index] for index in chosen], rng, size=size)
        yield SyntheticPhoto(data=data, label="".join(str(int(labels[index])) for index in chosen))


def render_photo(
    digits: Sequence[np.ndarray], rng: np.random.Generator, size: tuple[int, int] | None = None
) -> bytes:
    """Return a JPEG photo of the 28x28 MNIST `digits` written in one row on paper.

    `size` (width, height) fixes the frame; by default it is one of Telegram's usual sizes.
    """
    if not digits:
        raise ValueError("a photo needs at least one digit")
    width, height = size or FRAME_SIZES[int(rng.integers(len(FRAME_SIZES)))]
    on_board = rng.random() < 0.1
    canvas = _board(width, height, rng) if on_board else _paper(width, height, rng)
    ink_colour = np.array(CHALK if on_board else INKS[int(rng.integers(len(INKS)))], dtype=np.float32)
    coverage = _ink_layout(digits, width, height, rng)
    canvas += (ink_colour - canvas) * coverage[..., None]
    canvas = _light(canvas, rng)
    if rng.random() < 0.5:
        canvas = _perspective(canvas, rng)
    sigma = rng.uniform(0.0, 1.5) * max(width, height) / 1000
    if sigma > 0.3:
        canvas = cv2.GaussianBlur(canvas, (0, 0), sigma)
    # Sensor noise: one gray field for all three channels (float32: this is the costly step).
    noise = rng.standard_normal((height, width), dtype=np.float32) * np.float32(rng.uniform(1.0, 6.0))
    canvas = canvas + noise[..., None]
    picture = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=int(rng.integers(50, 96)))
    return buffer.getvalue()


def _paper(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Return paper: a shade, blotchy texture, fine grain and maybe ruled lines, float32 RGB."""
    shade = np.array(PAPERS[int(rng.integers(len(PAPERS)))], dtype=np.float32) * rng.uniform(0.8, 1.03)
    blotches = cv2.resize(rng.normal(0, rng.uniform(2, 8), (12, 12)).astype(np.float32), (width, height))
    grain = rng.standard_normal((height, width), dtype=np.float32) * np.float32(rng.uniform(1, 5))
    paper = shade + (blotches + grain)[..., None]
    ruling = rng.random()
    if ruling < 0.3:
        _rule(paper, rng, squared=ruling < 0.1)
    return paper


def _rule(paper: np.ndarray, rng: np.random.Generator, *, squared: bool) -> None:
    """Draw ruled lines (or a squared grid, and sometimes a red margin) across the paper, in place."""
    height, width = paper.shape[:2]
    spacing = max(4, int(height * (rng.uniform(0.025, 0.05) if squared else rng.uniform(0.05, 0.09))))
    thickness = int(rng.integers(1, 3))
    for row in range(int(rng.integers(spacing // 2, spacing + 1)), height, spacing):
        cv2.line(paper, (0, row), (width, row), RULE_BLUE, thickness, cv2.LINE_AA)
    if squared:
        for column in range(int(rng.integers(spacing // 2, spacing + 1)), width, spacing):
            cv2.line(paper, (column, 0), (column, height), RULE_BLUE, thickness, cv2.LINE_AA)
    if rng.random() < 0.4:
        column = int(width * rng.uniform(0.05, 0.15))
        cv2.line(paper, (column, 0), (column, height), MARGIN_RED, thickness, cv2.LINE_AA)


def _board(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Return a dark board (for white writing) with smudges, float32 RGB."""
    smudges = cv2.resize(rng.normal(0, 6, (8, 8)).astype(np.float32), (width, height))
    return np.array(BOARD, dtype=np.float32) * rng.uniform(0.7, 1.3) + smudges[..., None]


def _ink_layout(
    digits: Sequence[np.ndarray], width: int, height: int, rng: np.random.Generator
) -> np.ndarray:
    """Return the ink coverage (0..1) of the digits written in a row somewhere in the frame."""
    short = min(width, height)
    # A row of n digits must fit across the frame: each takes about 1.3 digit heights.
    largest = 0.6 if len(digits) == 1 else min(0.3, 0.94 * width / (1.3 * len(digits)) / short)
    digit_height = short * rng.uniform(0.08, largest)
    # From a fine pen on a large photo (a third of MNIST's stroke) to a broad marker.
    thickness = rng.uniform(0.35, 2.4)
    pressure = rng.uniform(0.65, 1.0)
    glyphs = [_glyph(digit, digit_height, thickness, rng) for digit in digits]
    gap = digit_height * rng.uniform(-0.1, 0.2)
    row_width = sum(glyph.shape[1] for glyph in glyphs) + gap * (len(glyphs) - 1)
    row_height = max(glyph.shape[0] for glyph in glyphs)
    left = rng.uniform(0.03 * width, max(0.03 * width, width - row_width - 0.03 * width))
    top = rng.uniform(0.03 * height, max(0.03 * height, height - row_height - 0.03 * height))
    coverage = np.zeros((height, width), dtype=np.float32)
    for glyph in glyphs:
        glyph_top = int(top + rng.uniform(-0.05, 0.05) * digit_height)
        _paste_max(coverage, glyph * pressure, int(left), max(0, glyph_top))
        left += glyph.shape[1] + gap
    return coverage


def _glyph(digit: np.ndarray, digit_height: float, thickness: float, rng: np.random.Generator) -> np.ndarray:
    """Return one MNIST digit enlarged to `digit_height`, stroke scaled by `thickness`, tilted a little."""
    rows = np.flatnonzero(digit.max(axis=1) > 0)
    cols = np.flatnonzero(digit.max(axis=0) > 0)
    crop = digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32) / 255
    scale = digit_height / crop.shape[0]
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(digit_height)))
    pad = max(2, round(0.15 * digit_height))
    glyph = np.pad(cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC), pad)
    # MNIST strokes are ~2.2 px in a 20-px box; a marker doubles that, a fine pen halves it.
    radius = round((thickness - 1) * 1.1 * scale / 2)
    if radius:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(radius) + 1, 2 * abs(radius) + 1))
        glyph = cv2.dilate(glyph, kernel) if radius > 0 else cv2.erode(glyph, kernel)
    angle = rng.uniform(-10, 10)
    centre = (glyph.shape[1] / 2, glyph.shape[0] / 2)
    glyph = cv2.warpAffine(glyph, cv2.getRotationMatrix2D(centre, angle, 1.0), glyph.shape[::-1])
    if rng.random() < 0.15:
        _break_strokes(glyph, rng)
    return np.asarray(np.clip(glyph * 1.3, 0, 1), dtype=np.float32)


def _break_strokes(glyph: np.ndarray, rng: np.random.Generator) -> None:
    """Erase one or two short gaps across the strokes, as a pen that skips does, in place."""
    height, width = glyph.shape
    for _ in range(int(rng.integers(1, 3))):
        centre = (int(rng.uniform(0.25, 0.75) * width), int(rng.uniform(0.2, 0.8) * height))
        angle = rng.uniform(0, np.pi)
        reach = int(0.3 * max(height, width))
        offset = (int(np.cos(angle) * reach), int(np.sin(angle) * reach))
        gap = max(1, int(rng.uniform(0.02, 0.05) * height))
        start = (centre[0] - offset[0], centre[1] - offset[1])
        end = (centre[0] + offset[0], centre[1] + offset[1])
        cv2.line(glyph, start, end, 0.0, gap)


def _paste_max(target: np.ndarray, glyph: np.ndarray, left: int, top: int) -> None:
    """Write `glyph` into `target` at (left, top) keeping the darker ink, clipped to the frame."""
    height, width = target.shape
    bottom, right = min(height, top + glyph.shape[0]), min(width, left + glyph.shape[1])
    if bottom <= top or right <= left:
        return
    region = target[top:bottom, left:right]
    np.maximum(region, glyph[: bottom - top, : right - left], out=region)


def _light(canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Apply uneven light: a gradient across the frame, a vignette and sometimes a soft shadow."""
    # Light varies smoothly: computed at a quarter of the size and enlarged, four times faster.
    frame_height, frame_width = canvas.shape[:2]
    height, width = max(2, frame_height // 4), max(2, frame_width // 4)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * cols / width + np.sin(angle) * rows / height) / 1.5 + 0.5
    light = 1.0 - rng.uniform(0.0, 0.45) * np.clip(ramp, 0, 1)
    distance = ((cols / width - 0.5) ** 2 + (rows / height - 0.5) ** 2) * 2
    light *= 1.0 - rng.uniform(0.0, 0.3) * distance
    if rng.random() < 0.4:
        # A soft-edged shadow over one side of a random line, as from a hand or a phone.
        normal = rng.uniform(0, 2 * np.pi)
        offset = rng.uniform(0.3, 0.7)
        side = np.cos(normal) * (cols / width - offset) + np.sin(normal) * (rows / height - offset)
        softness = rng.uniform(0.01, 0.08)
        light *= 1.0 - rng.uniform(0.2, 0.5) * (1 / (1 + np.exp(-side / softness)))
    light = cv2.resize(light.astype(np.float32), (frame_width, frame_height), interpolation=cv2.INTER_LINEAR)
    return np.asarray(canvas * light[..., None], dtype=np.float32)


def _perspective(canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return the canvas as seen from slightly off-axis (corners moved by up to 6%)."""
    height, width = canvas.shape[:2]
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    jitter = rng.uniform(-0.06, 0.06, corners.shape).astype(np.float32) * np.array(
        [width, height], dtype=np.float32
    )
    matrix = cv2.getPerspectiveTransform(corners, corners + jitter)
    return cv2.warpPerspective(canvas, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
