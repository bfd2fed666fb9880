"""Finding digits in an ink mask: filters, merged pieces, split touching digits, reading order."""

from __future__ import annotations

import cv2
import numpy as np

from mnist_engine.photo.segmentation import DigitRegion, find_digits


def ink(
    text: str, origin: tuple[int, int], *, scale: float = 3.0, thickness: int = 6, size=(480, 640)
) -> np.ndarray:
    """A mask with `text` written at `origin` (its baseline's left end)."""
    mask = np.zeros(size, dtype=np.uint8)
    cv2.putText(mask, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, 1, thickness, cv2.LINE_8)
    return mask.astype(bool)


def lefts(regions: list[DigitRegion]) -> list[int]:
    return [region.box.left for region in regions]


def test_a_two_digit_number_is_two_regions_left_to_right() -> None:
    regions = find_digits(ink("47", (200, 300)))
    assert len(regions) == 2
    assert lefts(regions) == sorted(lefts(regions))
    assert {region.line for region in regions} == {0}


def test_a_four_digit_number_is_read_in_order_even_when_tilted() -> None:
    mask = ink("2026", (120, 280))
    rotation = cv2.getRotationMatrix2D((320, 240), 6, 1.0)  # baseline rising to the right
    mask = cv2.warpAffine(mask.astype(np.uint8), rotation, (640, 480)).astype(bool)
    regions = find_digits(mask)
    assert len(regions) == 4
    assert lefts(regions) == sorted(lefts(regions))


def test_two_lines_are_read_top_to_bottom() -> None:
    mask = ink("12", (250, 180)) | ink("34", (250, 380))
    regions = find_digits(mask)
    assert [region.line for region in regions] == [0, 0, 1, 1]
    assert regions[0].box.bottom < regions[2].box.top


def test_a_detached_top_bar_is_part_of_its_five() -> None:
    mask = ink("5", (280, 320), scale=5, thickness=10)
    rows = np.flatnonzero(mask.any(axis=1))
    gap_row = rows[0] + 14  # cut the bar off the body, as a hurried hand does
    mask[gap_row : gap_row + 4] = False
    regions = find_digits(mask)
    assert len(regions) == 1
    assert regions[0].box.top == rows[0]


def test_digits_joined_by_a_stroke_are_cut_apart() -> None:
    mask = ink("30", (160, 330), scale=5, thickness=10).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    three, zero = sorted(range(1, count), key=lambda label: stats[label, 0])
    join_from = stats[three, 0] + stats[three, 2] - 6, 330 - 40
    cv2.line(mask, join_from, (stats[zero, 0] + 6, 330 - 40), 1, 8)  # the pen never left the paper
    assert cv2.connectedComponents(mask)[0] == 2  # one component (plus background)

    regions = find_digits(mask.astype(bool))
    assert len(regions) == 2
    assert regions[0].box.right <= stats[zero, 0] + 12
    assert regions[1].box.left >= stats[three, 0] + stats[three, 2] - 12


def test_a_wide_digit_with_a_tail_is_not_cut() -> None:
    mask = ink("2", (200, 320), scale=5, thickness=10)
    rows, cols = np.nonzero(mask)
    mask[rows.max() - 9 : rows.max() + 1, cols.max() : cols.max() + 120] = True  # a long flourish
    assert len(find_digits(mask)) == 1


def test_specks_and_a_frame_around_the_image_are_ignored() -> None:
    mask = ink("8", (260, 330), scale=5, thickness=10)
    mask[:3, :] = mask[-3:, :] = mask[:, :3] = mask[:, -3:] = True  # the edge of the paper
    for row, col in [(40, 40), (400, 600), (100, 500)]:
        mask[row : row + 2, col : col + 2] = True
    regions = find_digits(mask)
    assert len(regions) == 1


def test_a_pen_cut_by_the_border_is_not_a_digit_when_the_number_is_whole() -> None:
    mask = ink("123", (150, 330))
    mask[0:120, 450:520] = True  # a pen lying across the top border
    regions = find_digits(mask)
    assert len(regions) == 3


def test_a_digit_that_just_touches_the_border_at_the_start_of_a_row_is_kept() -> None:
    mask = ink("0123", (-4, 300))  # the 0's left side touches the image's left border
    assert mask[:, 0].any()
    regions = find_digits(mask)
    assert len(regions) == 4 and regions[0].box.left == 0


def test_a_line_of_handwritten_words_is_not_read_as_digits() -> None:
    mask = ink("7", (260, 380)).astype(np.uint8)
    columns = np.arange(60, 460)
    cursive = np.stack([columns, 120 + (18 * np.sin(columns / 9)).astype(int)], axis=1)
    cv2.polylines(mask, [cursive.astype(np.int32)], False, 1, 4)  # joined-up writing above the number
    regions = find_digits(mask.astype(bool))
    assert len(regions) == 1
    assert regions[0].box.top > 250


def test_an_empty_mask_has_no_digits() -> None:
    assert find_digits(np.zeros((100, 100), dtype=bool)) == []


def test_each_region_holds_only_its_own_pixels() -> None:
    mask = ink("11", (250, 300))
    regions = find_digits(mask)
    for region in regions:
        box = region.box
        assert region.mask.shape == (box.height, box.width)
        assert region.mask.any(axis=0).all() or region.mask.any(axis=1).all()
        assert not (region.mask & ~mask[box.top : box.bottom, box.left : box.right]).any()
