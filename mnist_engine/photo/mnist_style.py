"""Render one digit's ink the MNIST way: 20x20 box, MNIST's stroke width, centred by mass in 28x28.

MNIST digits are white ink on black, fitted into a 20x20 box keeping their aspect ratio,
anti-aliased, and centred in 28x28 by their centre of mass.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

MNIST_SIZE = 28
MNIST_BOX = 20
# The mean centre of mass of the MNIST test digits, in (row, column) pixel indices.
MNIST_CENTRE = 14.0
# MNIST strokes are about 2.2 px wide in the 20-px box (measured on the test set): 1/9 of the box.
TARGET_STROKE_RATIO = 2.2 / MNIST_BOX


def stroke_width(mask: np.ndarray) -> float:
    """Return the mean stroke width of a binary shape: twice its area over its perimeter."""
    shape = mask.astype(np.uint8)
    area = int(shape.sum())
    if area == 0:
        return 0.0
    padded = np.pad(shape, 1)
    inner = cv2.erode(padded, np.ones((3, 3), np.uint8))
    perimeter = int((padded - inner).sum())
    return 2.0 * area / max(perimeter, 1)


def normalize_stroke(ink: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Thicken hair-thin strokes and thin heavy marker strokes towards MNIST's proportions."""
    target = TARGET_STROKE_RATIO * max(ink.shape)
    width = stroke_width(mask)
    if width <= 0:
        return ink
    steps = round((target - width) / 2)
    if steps == 0:
        return ink
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(steps) + 1, 2 * abs(steps) + 1))
    padded = np.pad(ink, abs(steps) + 1)
    changed = cv2.dilate(padded, kernel) if steps > 0 else cv2.erode(padded, kernel)
    inner = changed[abs(steps) + 1 : -abs(steps) - 1, abs(steps) + 1 : -abs(steps) - 1]
    # Thinning never erases a stroke entirely: keep at least a faint trace of the original.
    return np.maximum(inner, ink * 0.5) if steps < 0 else inner


def to_mnist(ink: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Render a digit's ink (float, 1 = ink, any size) as MNIST: 20x20 box, centred by mass, 28x28 uint8."""
    if ink.ndim != 2 or ink.size == 0:
        raise ValueError(f"ink must be a non-empty 2-D array, got shape {ink.shape}")
    mask = ink > 0.25 if mask is None else mask
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return np.zeros((MNIST_SIZE, MNIST_SIZE), dtype=np.uint8)
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    mask = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    ink = normalize_stroke(ink.astype(np.float32), mask)

    height, width = ink.shape
    ratio = MNIST_BOX / max(height, width)
    size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
    interpolation = cv2.INTER_AREA if ratio < 1 else cv2.INTER_LINEAR
    small = np.clip(cv2.resize(ink, size, interpolation=interpolation), 0.0, 1.0)
    peak = float(small.max())
    if peak > 0:
        small = np.clip(small / peak, 0.0, 1.0)

    canvas = np.zeros((MNIST_SIZE, MNIST_SIZE), dtype=np.float32)
    top, left = (MNIST_SIZE - size[1]) // 2, (MNIST_SIZE - size[0]) // 2
    canvas[top : top + size[1], left : left + size[0]] = small
    return _centre_by_mass(canvas)


def _centre_by_mass(canvas: np.ndarray) -> np.ndarray:
    """Shift the image by whole pixels so that its centre of mass lies at (14, 14), as in MNIST."""
    if float(canvas.sum()) <= 0:
        return np.zeros(canvas.shape, dtype=np.uint8)
    centre_row, centre_col = ndimage.center_of_mass(canvas)
    shift_row, shift_col = round(MNIST_CENTRE - centre_row), round(MNIST_CENTRE - centre_col)
    # Whole-pixel shifts keep the strokes as sharp as MNIST's; any sub-pixel shift would blur them.
    shifted = np.roll(np.pad(canvas, MNIST_SIZE), (shift_row, shift_col), axis=(0, 1))
    shifted = shifted[MNIST_SIZE:-MNIST_SIZE, MNIST_SIZE:-MNIST_SIZE]
    return np.clip(np.rint(shifted * 255.0), 0, 255).astype(np.uint8)
