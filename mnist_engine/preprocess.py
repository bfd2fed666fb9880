"""From a photo to an ink map, and from a digit's ink to an MNIST image.

MNIST digits are white ink on black, fitted into a 20x20 box keeping their aspect ratio,
anti-aliased, and centred in 28x28 by their centre of mass. A photo of paper has shadows,
paper of any shade, ink of any colour and either polarity; this module removes all of that
and leaves "how much ink is here" per pixel, then renders single digits the MNIST way.

OpenCV does the image operations: its morphology and connected components run in well under
a millisecond on the working image, which keeps a photo's whole preparation near 10 ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

WORK_LONG_SIDE = 640
MIN_WORK_LONG_SIDE = 224
MNIST_SIZE = 28
MNIST_BOX = 20
# The mean centre of mass of the MNIST test digits, in (row, column) pixel indices.
MNIST_CENTRE = 14.0
# MNIST strokes are about 2.2 px wide in the 20-px box (measured on the test set): 1/9 of the box.
TARGET_STROKE_RATIO = 2.2 / MNIST_BOX

# The paper's brightness is estimated with a closing wider than the strokes: three stroke widths,
# between these shares of the short side (narrow follows shadows closely, wide keeps marker strokes).
_FINE_KERNEL_RATIO = 0.06
_COARSE_KERNEL_RATIO = 0.5
_STROKE_TO_KERNEL = 3.0
_BACKGROUND_DOWNSCALE = 4
# Polarity: the paper is the median of a window half the image wide; ink lies 4 noise levels out.
_POLARITY_WINDOW_RATIO = 0.5
_POLARITY_NOISE_FACTOR = 4.0
# A ruled line's thin pixels (vertical run of at most 6 px) reach across half the width, at a tilt
# of up to 12 degrees (found on a sample of 3000 pixels), and 3 times as far as a typical offset's.
_LINE_MIN_SPAN = 0.5
_LINE_MAX_THICKNESS = 6
_LINE_MAX_TILT = np.radians(12.0)
_LINE_ANGLE_SAMPLE = 3000
_LINE_CONTRAST = 3.0
# On a page with two or more such lines, a line need only reach across 30% of the width.
_RULED_PAGE_MIN_SPAN = 0.3
# Ink must stand this far above the paper (0..1 of the paper's brightness) at the least...
_MIN_CONTRAST = 0.12
# ...and this many times the paper's own noise (its median absolute deviation).
_NOISE_FACTOR = 6.0
# Hysteresis adds faint pixels at most this far (working pixels) from clearly dark ones.
_HYSTERESIS_REACH = 4


@dataclass(frozen=True)
class InkMap:
    """A photo reduced to ink: `ink` uint8 (255 = full ink), `mask` where ink was found."""

    ink: np.ndarray
    mask: np.ndarray
    dark_ink: bool


def to_working_gray(image: Image.Image) -> np.ndarray:
    """Return the image as uint8 gray at the working resolution (long side 224..640 px)."""
    array = np.asarray(image)
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2GRAY)
    height, width = array.shape
    long_side = max(height, width)
    if long_side > WORK_LONG_SIDE:
        ratio = WORK_LONG_SIDE / long_side
        size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
        return cv2.resize(array, size, interpolation=cv2.INTER_AREA)
    if long_side < MIN_WORK_LONG_SIDE:
        # Tiny drawings (28x28 canvases) are enlarged so that morphology has pixels to work with.
        factor = int(np.ceil(MIN_WORK_LONG_SIDE / long_side))
        return cv2.resize(array, (width * factor, height * factor), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(array)


def find_ink(gray: np.ndarray) -> InkMap:
    """Decide the ink's polarity, flatten the lighting and threshold the ink."""
    small = _downscale(gray)
    short_side = min(small.shape)
    dark_ink = _is_dark_ink(small)
    if not dark_ink:
        # From here on ink is dark on light paper, whichever way it was written.
        gray, small = cv2.bitwise_not(gray), cv2.bitwise_not(small)

    # A closing as wide as the strokes are thick would erase them from the ink: size it on
    # a first estimate of the stroke width, made on the small image with the widest closing.
    coarse = _closing_radius(short_side * _COARSE_KERNEL_RATIO)
    stroke = stroke_width(_threshold(_darkness(small, _background(small, coarse))))
    diameter = np.clip(
        _STROKE_TO_KERNEL * stroke, short_side * _FINE_KERNEL_RATIO, short_side * _COARSE_KERNEL_RATIO
    )
    background = cv2.resize(
        _background(small, _closing_radius(diameter)), gray.shape[::-1], interpolation=cv2.INTER_LINEAR
    )
    darkness = _darkness(gray, background)
    mask = _threshold(darkness, remove_lines=True)
    # Full ink is the darkness of the strokes' cores, however pale the pen.
    level = _percentile_within(darkness, mask, 90) if mask.any() else 255.0
    ink = cv2.convertScaleAbs(darkness, alpha=255.0 / max(level, _MIN_CONTRAST * 255))
    return InkMap(ink=ink, mask=mask, dark_ink=dark_ink)


def _downscale(gray: np.ndarray) -> np.ndarray:
    """Return the image at 1/4 size: the background is smooth, so it is estimated there, 16x faster."""
    height, width = gray.shape
    size = (max(1, width // _BACKGROUND_DOWNSCALE), max(1, height // _BACKGROUND_DOWNSCALE))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


def _closing_radius(diameter: float) -> int:
    return max(1, round(diameter / 2))


def _background(small: np.ndarray, radius: int) -> np.ndarray:
    """Return the paper's brightness at 1/4 size, with dark strokes narrower than 2*radius+1 erased."""
    size = 2 * radius + 1
    padded = _pad_with_paper(small, radius)
    # A closing erases dark strokes narrower than the kernel and keeps larger dark areas (shadows,
    # the table around a sheet) with their edges.
    closed = cv2.morphologyEx(
        padded, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    )
    background = closed[radius:-radius, radius:-radius]
    # Enlarged 4x, a sharp edge (paper against table) becomes a ramp, and the table beside the
    # paper would look darker than "its" background: ink. Taking the darker side of every edge
    # (an erosion) before enlarging leaves no such band.
    return cv2.erode(background, np.ones((5, 5), np.uint8), borderType=cv2.BORDER_REPLICATE)


def _pad_with_paper(small: np.ndarray, radius: int) -> np.ndarray:
    """Pad by `radius` with the brightest border pixel within reach along the border.

    Beyond a stroke that touches the border (a tightly cropped drawing) lies paper, not more
    stroke; a shadow along a whole side stays a shadow.
    """
    padded = cv2.copyMakeBorder(small, radius, radius, radius, radius, cv2.BORDER_REPLICATE)
    along_rows = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * radius + 1, 1))
    along_columns = cv2.getStructuringElement(cv2.MORPH_RECT, (1, 2 * radius + 1))
    for strip, kernel in (
        (np.s_[:radius, :], along_rows),
        (np.s_[-radius:, :], along_rows),
        (np.s_[:, :radius], along_columns),
        (np.s_[:, -radius:], along_columns),
    ):
        padded[strip] = cv2.dilate(
            np.ascontiguousarray(padded[strip]), kernel, borderType=cv2.BORDER_REPLICATE
        )
    return padded


def _is_dark_ink(small: np.ndarray) -> bool:
    """Return whether the ink is darker than the paper.

    The paper is the local median (ink is the minority of any large window, and a median keeps
    the straight edge of a shadow where it is). Ink stands far out of it, on its own side:
    sum how far the pixels beyond a few noise levels lie below the paper, and above it.
    """
    # The median is taken at half this size again: it is smooth, and 4x cheaper there.
    height, width = small.shape
    half = cv2.resize(small, (max(1, width // 2), max(1, height // 2)), interpolation=cv2.INTER_AREA)
    window = max(3, int(min(half.shape) * _POLARITY_WINDOW_RATIO)) | 1
    pad = window // 2
    padded = cv2.copyMakeBorder(half, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    paper = cv2.medianBlur(padded, window)[pad:-pad, pad:-pad]
    paper = cv2.resize(paper, (width, height), interpolation=cv2.INTER_LINEAR)
    deviation = small.astype(np.float32) - paper.astype(np.float32)
    noise = 1.4826 * float(np.median(np.abs(deviation))) + 1.0
    darker = float(np.maximum(-deviation - _POLARITY_NOISE_FACTOR * noise, 0).sum())
    lighter = float(np.maximum(deviation - _POLARITY_NOISE_FACTOR * noise, 0).sum())
    return darker >= lighter


def _darkness(pixels: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Return how much darker than the paper each pixel is, 0..255 for 0..100% of the paper's brightness.

    Relative to the paper, so that a stroke in shadow counts like one in full light.
    """
    paper = np.maximum(background, 32).astype(np.uint8)
    return cv2.divide(cv2.subtract(background, pixels), paper, scale=255)


def _threshold(darkness: np.ndarray, *, remove_lines: bool = False) -> np.ndarray:
    """Return the ink mask: Otsu's threshold on darkness, floored above the paper's noise.

    A hysteresis keeps fainter pixels next to clearly dark ones (the soft edges and faint ends of
    a stroke), but not the ruled lines a digit touches: with `remove_lines` they go first.
    """
    otsu, _ = cv2.threshold(darkness, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # The paper's noise, measured on the paper side of Otsu's split (a sample is plenty).
    histogram = np.bincount(darkness[::3, ::3].ravel(), minlength=256)[: int(otsu) + 1]
    noise = 0.0
    if histogram.sum():
        centre = _histogram_median(histogram)
        spread = np.bincount(np.abs(np.arange(histogram.size) - round(centre)), weights=histogram)
        noise = centre + 1.4826 * _histogram_median(spread)
    high = max(otsu, _MIN_CONTRAST * 255, _NOISE_FACTOR * noise)
    low = max(high / 2.0, _MIN_CONTRAST * 255 * 0.75, _NOISE_FACTOR * noise * 0.75)
    weak = darkness > low
    if remove_lines:
        # Found in the weak mask, where even a faint ruled line is whole.
        weak = remove_ruled_lines(weak)
    _, strong = cv2.threshold(darkness, high, 1, cv2.THRESH_BINARY)
    # Only within a few pixels of strong ink: a faint shadow touching a digit must not grow into it.
    near = cv2.dilate(strong, np.ones((2 * _HYSTERESIS_REACH + 1,) * 2, np.uint8))
    return weak & (near > 0)


def _histogram_median(histogram: np.ndarray) -> float:
    """Return the median value of the samples a histogram counts."""
    return _histogram_percentile(histogram, 50)


def _histogram_percentile(histogram: np.ndarray, percent: float) -> float:
    cumulative = np.cumsum(histogram)
    return float(np.searchsorted(cumulative, cumulative[-1] * percent / 100))


def _percentile_within(image: np.ndarray, mask: np.ndarray, percent: float) -> float:
    """Return a percentile of a uint8 image's values under a mask (a histogram: no copying)."""
    histogram = cv2.calcHist([image], [0], mask.astype(np.uint8), [256], [0, 256]).ravel()
    return _histogram_percentile(histogram, percent)


def remove_ruled_lines(mask: np.ndarray) -> np.ndarray:
    """Return the mask without ruled lines: thin straight lines across most of the image, tilted or broken.

    Only the thin parts of a line go: where a digit's stroke crosses it, the stroke stays whole.
    """
    cleaned = mask
    for horizontal in (True, False):
        oriented = cleaned if horizontal else cleaned.T
        line = _line_pixels(oriented)
        if line is not None:
            cleaned = (oriented & ~line) if horizontal else (oriented & ~line).T
    return np.ascontiguousarray(cleaned)


def _line_pixels(mask: np.ndarray) -> np.ndarray | None:
    """Return the pixels of near-horizontal ruled lines in `mask`, or None if it has none.

    Ruled lines are parallel: project the thin pixels along each candidate tilt, and where
    one offset reaches across half the width, there is a line.
    """
    width = mask.shape[1]
    votes_needed = _LINE_MIN_SPAN * width
    if np.count_nonzero(mask) < votes_needed:
        return None
    # Thin pixels: their vertical run is short. A line is thin everywhere; a digit only in places.
    binary = mask.astype(np.uint8)
    # An odd kernel is centred, so the opening does not shave a row off thick strokes.
    thick = cv2.morphologyEx(binary, cv2.MORPH_OPEN, np.ones((_LINE_MAX_THICKNESS + 1, 1), np.uint8))
    points = cv2.findNonZero(cv2.subtract(binary, thick))
    if points is None or len(points) < votes_needed:
        return None
    columns, rows = points.reshape(-1, 2).T.astype(np.int64)
    # The tilt is found on a sample of the pixels: a line keeps its share of any sample.
    step = max(1, rows.size // _LINE_ANGLE_SAMPLE)
    angle = _line_angle(rows[::step], columns[::step], width)
    offsets = np.rint(rows - np.tan(angle) * columns).astype(np.int64)
    offsets -= offsets.min() - 1
    # How many columns each line (an offset and its two neighbours: its thickness) reaches.
    reached = np.zeros((int(offsets.max()) + 2, width), dtype=bool)
    reached[offsets, columns] = True
    span = (reached[:-2] | reached[1:-1] | reached[2:]).sum(axis=1)
    # On a texture every offset reaches far; a line must reach far beyond the typical offset.
    typical = _LINE_CONTRAST * float(np.median(span))
    lines = np.flatnonzero(span >= max(votes_needed, typical))
    if lines.size >= 2:
        # A ruled page: its fainter or interrupted lines are lines too.
        lines = np.flatnonzero(span >= max(_RULED_PAGE_MIN_SPAN * width, typical))
    if lines.size == 0:
        return None
    selected = np.zeros(span.size + 2, dtype=bool)
    for shift in (0, 1, 2):
        selected[lines + shift] = True
    on_line = selected[offsets]
    pixels = np.zeros(mask.shape, dtype=bool)
    pixels[rows[on_line], columns[on_line]] = True
    return pixels


def _line_angle(rows: np.ndarray, columns: np.ndarray, width: int) -> float:
    """Return the tilt (radians) along which the thin pixels line up best: coarse, then fine."""
    best = 0.0
    for step, span in ((np.radians(2.0), _LINE_MAX_TILT), (np.radians(0.25), np.radians(2.0))):
        angles = best + np.arange(-span, span + step / 2, step)
        peaks = [
            np.bincount(np.rint(rows - np.tan(angle) * columns + width).astype(np.int64)).max()
            for angle in angles
        ]
        best = float(angles[int(np.argmax(peaks))])
    return best


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
    total = float(canvas.sum())
    if total <= 0:
        return np.zeros(canvas.shape, dtype=np.uint8)
    rows, cols = np.indices(canvas.shape)
    shift_row = round(MNIST_CENTRE - float((rows * canvas).sum()) / total)
    shift_col = round(MNIST_CENTRE - float((cols * canvas).sum()) / total)
    # Whole-pixel shifts keep the strokes as sharp as MNIST's; any sub-pixel shift would blur them.
    shifted = np.roll(np.pad(canvas, MNIST_SIZE), (shift_row, shift_col), axis=(0, 1))
    shifted = shifted[MNIST_SIZE:-MNIST_SIZE, MNIST_SIZE:-MNIST_SIZE]
    return np.clip(np.rint(shifted * 255.0), 0, 255).astype(np.uint8)
