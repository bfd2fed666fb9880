"""From a photo to an ink map: polarity, lighting and threshold.

A photo of paper has shadows, paper of any shade, ink of any colour and either polarity; this
module removes all of that and leaves "how much ink is here" per pixel, and where ink was found.

OpenCV does the image operations: its morphology and connected components run in well under
a millisecond on the working image, which keeps a photo's whole preparation near 10 ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from mnist_engine.photo.mnist_style import stroke_width
from mnist_engine.photo.ruled_lines import remove_ruled_lines

# The working image holds at most 640×480 pixels: enough for digits, and the time per photo does
# not grow with the camera. An area, not a long side: a long strip of digits keeps its height
# (shrunk to 640 px wide, a 1060×134 strip's pen strokes broke into pieces).
WORK_PIXELS = 640 * 480
MAX_WORK_LONG_SIDE = 1600
MIN_WORK_LONG_SIDE = 224

# The paper's brightness is estimated with a closing wider than the strokes: three stroke widths,
# between these shares of the short side (narrow follows shadows closely, wide keeps marker strokes).
_FINE_KERNEL_RATIO = 0.06
_COARSE_KERNEL_RATIO = 0.5
_STROKE_TO_KERNEL = 3.0
_BACKGROUND_DOWNSCALE = 4
# Polarity: the paper is the median of a window half the image wide; ink lies 4 noise levels out.
_POLARITY_WINDOW_RATIO = 0.5
_POLARITY_NOISE_FACTOR = 4.0
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
    """Return the image as uint8 gray at the working resolution (at most 640×480 pixels' area)."""
    array = np.asarray(image)
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2GRAY)
    height, width = array.shape
    long_side = max(height, width)
    ratio = min(1.0, np.sqrt(WORK_PIXELS / (width * height)), MAX_WORK_LONG_SIDE / long_side)
    if ratio < 1.0:
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
