"""Find the digits in an ink mask and put them in reading order.

Connected components are the candidates. Ruled lines, specks, frames and small pieces are
filtered out or attached to the digit they belong to (the detached top bar of a 5, a broken
pencil stroke), touching digits are cut apart, and the digits are grouped into text lines,
top to bottom, each read left to right.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from mnist_engine.photo.mnist_style import stroke_width

# A frame crosses the whole image thinly: as an outline (little ink in its box) or as a band.
_FRAME_MAX_FILL = 0.12
_FRAME_MAX_THICKNESS = 0.04
# Texture: a component over 5% of the image, 15% full, with strokes under 1% of its size.
_TEXTURE_MIN_AREA = 0.05
_TEXTURE_MIN_FILL = 0.15
_TEXTURE_MAX_STROKE = 0.01
# Components shorter than this share of the tallest digit are pieces or specks, not digits.
_MIN_DIGIT_HEIGHT_RATIO = 0.4
# Specks: smaller than this share of the image's area, or of the largest component's area.
_MIN_AREA_RATIO = 0.00003
_MIN_AREA_OF_LARGEST = 0.02
# A digit's box is at most this much wider than tall; wider shapes are several touching digits.
_MAX_DIGIT_ASPECT = 1.25
_MAX_LONE_ASPECT = 1.6
_TYPICAL_DIGIT_ASPECT = 0.7
# Each part of a cut must be at least this share of the region's height, or it is a flourish.
_MIN_PART_HEIGHT = 0.5
# A line holding a shape this much wider than tall is text (a word, an arrow), not a number.
_MAX_GROUP_ASPECT = 3.2
# Among several digits, a shape whose strokes are this much heavier than the others' is crossed out.
_SCRIBBLE = 2.5
# A word is wider than this many digit heights (a minus sign or a short dash is not).
_MIN_WORD_WIDTH = 1.5
# A loose piece at least this share of the height of a digit beside it is a digit written smaller.
_SMALL_DIGIT_RATIO = 0.5
# A cut between touching digits crosses at most this share of a typical column's ink.
_MAX_CUT_INK = 0.5
# A small piece belongs to a digit at most this share of the digit's height away.
_PIECE_REACH = 0.25
# A shape touching the border is a digit of the row beside it when its height is within these
# shares of the row's digits' and it is at most this much wider than tall.
_BORDER_DIGIT_MIN = 0.6
_BORDER_DIGIT_MAX = 1.5
_BORDER_DIGIT_MAX_ASPECT = 1.2


@dataclass(frozen=True)
class Box:
    """An axis-aligned box: left and top inclusive, right and bottom exclusive."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def union(self, other: Box) -> Box:
        """Return the smallest box holding both."""
        return Box(
            min(self.left, other.left),
            min(self.top, other.top),
            max(self.right, other.right),
            max(self.bottom, other.bottom),
        )

    def touches_border(self, height: int, width: int) -> bool:
        """Return whether the box reaches the edge of a `height` × `width` image."""
        return self.left <= 0 or self.top <= 0 or self.right >= width or self.bottom >= height

    def horizontal_overlap(self, other: Box) -> int:
        """Return how many columns both boxes share (negative: the gap between them)."""
        return min(self.right, other.right) - max(self.left, other.left)

    def vertical_overlap(self, other: Box) -> int:
        """Return how many rows both boxes share (negative: the gap between them)."""
        return min(self.bottom, other.bottom) - max(self.top, other.top)


@dataclass(frozen=True)
class DigitRegion:
    """One digit found in the mask: its box, its own pixels within the box, and its text line."""

    box: Box
    mask: np.ndarray
    line: int = 0


def label_components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Return (count, labels, stats) of the 8-connected components of a mask (label 0: background)."""
    # The block-based algorithm (Grana's BBDT) computes the statistics 3x faster than the default here.
    count, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(
        mask.astype(np.uint8), 8, cv2.CV_32S, cv2.CCL_GRANA
    )
    return count, labels, stats


def find_digits(mask: np.ndarray) -> list[DigitRegion]:
    """Return the digit regions of an ink mask in reading order, lines top to bottom."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    count, labels, stats = label_components(mask)
    components = [_component(labels, stats, label) for label in range(1, count)]
    components = [
        region
        for region in components
        if not _is_frame(region, mask.shape) and not _is_texture(region, mask.shape)
    ]
    components = _drop_specks(components, mask.shape)
    components = _drop_cut_by_border(components, mask.shape)
    if not components:
        return []
    digits, pieces = _split_by_height(components)
    digits = _merge_overlapping(digits)
    digits, loose = _attach_pieces(digits, pieces)
    digits = _drop_scribbles(digits + _small_digits(loose, digits))
    words = _wide_shapes(components, digits)
    lines = [line for line in _group_lines(digits) if not _crosses(line, words)]
    if not lines:
        return []
    typical_height = float(np.median([region.box.height for line in lines for region in line]))
    return [
        replace(part, line=number)
        for number, line in enumerate(lines)
        for region in sorted(line, key=lambda region: region.box.left)
        for part in _split_touching(region, typical_height, alone=len(line) == 1)
    ]


def _component(labels: np.ndarray, stats: np.ndarray, label: int) -> DigitRegion:
    left, top, width, height = (int(value) for value in stats[label, :4])
    box = Box(left, top, left + width, top + height)
    return DigitRegion(box=box, mask=labels[box.top : box.bottom, box.left : box.right] == label)


def _is_frame(region: DigitRegion, shape: tuple[int, int]) -> bool:
    """Return whether a component is the edge of the paper, a shadow or a border, not writing."""
    height, width = shape
    box = region.box
    across = (box.left == 0 and box.right == width) or (box.top == 0 and box.bottom == height)
    # A digit cropped tightly touches opposite borders too, but it is drawn with ink, not outlined.
    if across and region.mask.mean() < _FRAME_MAX_FILL:
        return True
    long_side, short_side = max(box.width, box.height), min(box.width, box.height)
    along_border = long_side >= 0.9 * (width if box.width >= box.height else height)
    return along_border and short_side <= _FRAME_MAX_THICKNESS * long_side


def _is_texture(region: DigitRegion, shape: tuple[int, int]) -> bool:
    """Return whether a large component is a web of noise or texture rather than strokes.

    Writing either leaves most of its box empty (a pen's lines) or has strokes a fair share of
    its size (a marker's); a dense web of hair-thin threads is neither.
    """
    box = region.box
    if (
        box.width * box.height < _TEXTURE_MIN_AREA * shape[0] * shape[1]
        or region.mask.mean() < _TEXTURE_MIN_FILL
    ):
        return False
    return stroke_width(region.mask) < _TEXTURE_MAX_STROKE * max(box.width, box.height)


def _drop_specks(components: list[DigitRegion], shape: tuple[int, int]) -> list[DigitRegion]:
    if not components:
        return []
    largest = max(int(region.mask.sum()) for region in components)
    minimum = max(4.0, _MIN_AREA_RATIO * shape[0] * shape[1], _MIN_AREA_OF_LARGEST * largest)
    return [region for region in components if region.mask.sum() >= minimum]


def _split_by_height(components: list[DigitRegion]) -> tuple[list[DigitRegion], list[DigitRegion]]:
    """Separate digit-sized components from the smaller pieces (bars, dots, broken-off strokes)."""
    tallest = max(region.box.height for region in components)
    digits = [region for region in components if region.box.height >= _MIN_DIGIT_HEIGHT_RATIO * tallest]
    pieces = [region for region in components if region.box.height < _MIN_DIGIT_HEIGHT_RATIO * tallest]
    return digits, pieces


def merge_regions(first: DigitRegion, second: DigitRegion) -> DigitRegion:
    """Return one region holding the pixels of both."""
    box = first.box.union(second.box)
    mask = np.zeros((box.height, box.width), dtype=bool)
    for region in (first, second):
        top, left = region.box.top - box.top, region.box.left - box.left
        mask[top : top + region.box.height, left : left + region.box.width] |= region.mask
    return DigitRegion(box=box, mask=mask)


def _belongs_together(first: Box, second: Box) -> bool:
    """Return whether two digit-sized components are one digit drawn in broken strokes."""
    narrower = min(first.width, second.width)
    taller = max(first.height, second.height)
    # Stacked in one column and touching or interleaved: pieces of one digit. Digits of adjacent
    # lines are stacked too, but with a gap between them.
    return (
        first.horizontal_overlap(second) >= 0.5 * narrower
        and first.vertical_overlap(second) >= -0.05 * taller
    )


def _merge_overlapping(digits: list[DigitRegion]) -> list[DigitRegion]:
    merged = list(digits)
    changed = True
    while changed:
        changed = False
        for i in range(len(merged)):
            for j in range(i + 1, len(merged)):
                if _belongs_together(merged[i].box, merged[j].box):
                    merged[i] = merge_regions(merged[i], merged[j])
                    del merged[j]
                    changed = True
                    break
            if changed:
                break
    return merged


def _attach_pieces(
    digits: list[DigitRegion], pieces: list[DigitRegion]
) -> tuple[list[DigitRegion], list[DigitRegion]]:
    """Attach each small piece to the nearest digit within reach; return the digits and the loose pieces."""
    result = list(digits)
    loose = []
    for piece in pieces:
        best, best_distance = None, None
        for index, digit in enumerate(result):
            gap_x = max(0, -piece.box.horizontal_overlap(digit.box))
            gap_y = max(0, -piece.box.vertical_overlap(digit.box))
            # A 5's detached bar or the end of a broken stroke lies within a quarter digit of it.
            distance = max(gap_x, gap_y)
            if distance <= _PIECE_REACH * digit.box.height and (
                best_distance is None or distance < best_distance
            ):
                best, best_distance = index, distance
        if best is None:
            loose.append(piece)
        else:
            result[best] = merge_regions(result[best], piece)
    return result, loose


def _small_digits(loose: list[DigitRegion], digits: list[DigitRegion]) -> list[DigitRegion]:
    """Return the loose pieces that are digits written smaller, at least half as tall as one beside them."""
    return [
        piece
        for piece in loose
        if any(
            piece.box.vertical_overlap(digit.box) > 0.5 * piece.box.height
            and piece.box.height >= _SMALL_DIGIT_RATIO * digit.box.height
            for digit in digits
        )
    ]


def _wide_shapes(components: list[DigitRegion], digits: list[DigitRegion]) -> list[Box]:
    """Return the boxes of shapes far wider than tall and than a digit: words, arrows, underlines."""
    if not digits:
        return []
    typical_height = float(np.median([digit.box.height for digit in digits]))
    return [
        region.box
        for region in components
        if region.box.width > _MAX_GROUP_ASPECT * region.box.height
        and region.box.width > _MIN_WORD_WIDTH * typical_height
    ]


def _crosses(line: list[DigitRegion], words: list[Box]) -> bool:
    """Return whether a wide shape sits in this line (a line of text), rather than under or over it."""
    top = min(region.box.top for region in line)
    bottom = max(region.box.bottom for region in line)
    return any(top <= (word.top + word.bottom) / 2 <= bottom for word in words)


def _split_touching(region: DigitRegion, typical_height: float, *, alone: bool) -> list[DigitRegion]:
    """Cut a region that is much wider than a digit into digits at the thinnest columns.

    A shape alone on its line must be wider still: a wide 2 or 6 is more likely than a pair.
    """
    box = region.box
    height = max(box.height, typical_height)
    if box.width <= (_MAX_LONE_ASPECT if alone else _MAX_DIGIT_ASPECT) * height:
        return [region]
    count = max(2, round(box.width / (_TYPICAL_DIGIT_ASPECT * height)))
    profile = region.mask.sum(axis=0).astype(np.float32)
    # Touching digits meet in a single stroke; a wide digit has two or three strokes in every column.
    valley = _MAX_CUT_INK * float(np.median(profile[profile > 0]))
    cuts = []
    for index in range(1, count):
        expected = index * box.width / count
        low = int(max(1, expected - 0.3 * box.width / count))
        high = int(min(box.width - 1, expected + 0.3 * box.width / count))
        if high <= low:
            continue
        cut = low + int(np.argmin(profile[low:high]))
        if profile[cut] <= valley:
            cuts.append(cut)
    if not cuts:
        return [region]
    parts = []
    for start, stop in zip([0, *cuts], [*cuts, box.width], strict=True):
        part_mask = region.mask[:, start:stop]
        rows = np.flatnonzero(part_mask.any(axis=1))
        if rows.size == 0:
            continue
        part_box = Box(box.left + start, box.top + rows[0], box.left + stop, box.top + rows[-1] + 1)
        parts.append(DigitRegion(box=part_box, mask=part_mask[rows[0] : rows[-1] + 1]))
    # A long tail or underline is no digit: then the shape was one digit with a flourish.
    if any(part.box.height < _MIN_PART_HEIGHT * box.height for part in parts):
        return [region]
    return parts


def _group_lines(digits: list[DigitRegion]) -> list[list[DigitRegion]]:
    """Group digits into text lines by vertical position, lines top to bottom."""
    lines: list[list[DigitRegion]] = []
    for digit in sorted(digits, key=lambda region: (region.box.top + region.box.bottom) / 2):
        centre = (digit.box.top + digit.box.bottom) / 2
        for line in lines:
            top = min(region.box.top for region in line)
            bottom = max(region.box.bottom for region in line)
            if top <= centre <= bottom:
                line.append(digit)
                break
        else:
            lines.append([digit])
    return sorted(lines, key=lambda line: min(region.box.top for region in line))


def _drop_scribbles(digits: list[DigitRegion]) -> list[DigitRegion]:
    """Drop crossed-out marks: among several digits, shapes of far heavier strokes than the rest."""
    if len(digits) < 3:
        return digits
    widths = [stroke_width(region.mask) for region in digits]
    typical = float(np.median(widths))
    return [region for region, width in zip(digits, widths, strict=True) if width <= _SCRIBBLE * typical]


def _drop_cut_by_border(components: list[DigitRegion], shape: tuple[int, int]) -> list[DigitRegion]:
    """Where several digits lie inside the image, drop shapes cut by its border (a pen, a finger).

    A single close-up digit may touch the border; then it is kept.
    """
    height, width = shape
    inside = [region for region in components if not region.box.touches_border(height, width)]
    if not inside:
        return components
    tallest = max(region.box.height for region in inside)
    digits_inside = [region for region in inside if region.box.height >= _MIN_DIGIT_HEIGHT_RATIO * tallest]
    if len(digits_inside) < 2:
        return components
    # A digit at the start or end of a row that just touches the border is kept: it has a digit's
    # size and sits on a row of digits; a pen or a finger is far larger, or lies across them.
    typical = float(np.median([region.box.height for region in digits_inside]))
    return [
        region
        for region in components
        if region in inside or _is_digit_of_row(region.box, typical, digits_inside)
    ]


def _is_digit_of_row(box: Box, typical_height: float, digits: list[DigitRegion]) -> bool:
    """Return whether a shape has a digit's size and shares a row with one of `digits`."""
    sized = _BORDER_DIGIT_MIN <= box.height / typical_height <= _BORDER_DIGIT_MAX
    upright = box.width <= _BORDER_DIGIT_MAX_ASPECT * box.height
    return sized and upright and any(box.vertical_overlap(digit.box) > 0.5 * box.height for digit in digits)
