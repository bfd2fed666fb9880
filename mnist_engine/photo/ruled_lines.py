"""Ruled lines: thin straight lines across most of the page, tilted or broken, found and removed.

Ruled lines are parallel: the thin pixels are projected along each candidate tilt, and an offset
whose pixels reach across half the width (and far beyond a typical offset's) is a line.
"""

from __future__ import annotations

import cv2
import numpy as np

# A ruled line's thin pixels (vertical run of at most 6 px) reach across half the width, at a tilt
# of up to 12 degrees (found on a sample of 3000 pixels), and 3 times as far as a typical offset's.
_LINE_MIN_SPAN = 0.5
_LINE_MAX_THICKNESS = 6
_LINE_MAX_TILT = np.radians(12.0)
_LINE_ANGLE_SAMPLE = 3000
_LINE_CONTRAST = 3.0
# On a page with two or more such lines, a line need only reach across 30% of the width.
_RULED_PAGE_MIN_SPAN = 0.3
# Across a long strip, half the short side is one digit's stroke, not a line: a line must also
# reach across half of three quarters of the other side. (In a 1060x134 strip of digits the
# upright strokes of a 0 and a 1 were taken for margins; a 4:3 photo is unchanged.)
_OTHER_SIDE_SHARE = 0.75


def remove_ruled_lines(mask: np.ndarray) -> np.ndarray:
    """Return the mask without ruled lines: thin straight lines across most of the image, tilted or broken.

    Only the thin parts of a line go: where a digit's stroke crosses it, the stroke stays whole.
    """
    cleaned = mask
    for horizontal in (True, False):
        oriented = cleaned if horizontal else cleaned.T
        line = _line_pixels(oriented, other_side=oriented.shape[0])
        if line is not None:
            cleaned = (oriented & ~line) if horizontal else (oriented & ~line).T
    return np.ascontiguousarray(cleaned)


def _line_pixels(mask: np.ndarray, other_side: int) -> np.ndarray | None:
    """Return the pixels of near-horizontal ruled lines in `mask`, or None if it has none.

    Ruled lines are parallel: project the thin pixels along each candidate tilt, and where
    one offset reaches across half the width, there is a line.
    """
    width = mask.shape[1]
    votes_needed = _LINE_MIN_SPAN * max(width, _OTHER_SIDE_SHARE * other_side)
    if votes_needed > width:
        return None
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
