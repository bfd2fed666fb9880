"""Lighting, polarity, thresholding, ruled lines and MNIST normalisation, on small generated images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mnist_engine.photo.ink import find_ink, to_working_gray
from mnist_engine.photo.mnist_style import MNIST_BOX, stroke_width, to_mnist
from mnist_engine.photo.ruled_lines import remove_ruled_lines


def written(
    text: str, *, paper: int = 225, ink: int = 40, thickness: int = 10, size=(480, 640)
) -> np.ndarray:
    """A gray page with `text` written across its middle in a plain stroke font."""
    page = np.full(size, paper, dtype=np.uint8)
    cv2.putText(page, text, (100, 320), cv2.FONT_HERSHEY_SIMPLEX, 7, int(ink), thickness, cv2.LINE_AA)
    return page


def strokes_of(text: str, thickness: int = 10) -> np.ndarray:
    """Where the ink of `written(text)` is, as a boolean mask."""
    return written(text, paper=0, ink=255, thickness=thickness) > 128


def overlap(found: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two masks."""
    return float((found & truth).sum() / max((found | truth).sum(), 1))


def test_dark_ink_on_light_paper() -> None:
    ink = find_ink(written("37"))
    assert ink.dark_ink
    assert overlap(ink.mask, strokes_of("37")) > 0.8


def test_light_ink_on_a_dark_board() -> None:
    ink = find_ink(written("37", paper=30, ink=230))
    assert not ink.dark_ink
    assert overlap(ink.mask, strokes_of("37")) > 0.8


def test_a_shadow_over_half_the_page_is_neither_ink_nor_a_polarity_flip() -> None:
    page = written("5").astype(np.float32)
    columns = np.arange(page.shape[1], dtype=np.float32)
    shade = 1.0 - 0.45 / (1.0 + np.exp(-(columns - 300) / 12))  # soft-edged shadow over the right half
    ink = find_ink((page * shade).astype(np.uint8))

    assert ink.dark_ink
    assert overlap(ink.mask, strokes_of("5")) > 0.8


def test_pale_pencil_on_grey_paper_is_found_at_full_strength() -> None:
    ink = find_ink(written("4", paper=170, ink=125, thickness=4))
    assert overlap(ink.mask, strokes_of("4", thickness=4)) > 0.6
    assert np.percentile(ink.ink[ink.mask], 90) > 200  # full ink, however pale the pencil


def test_a_blank_page_has_no_ink() -> None:
    noise = np.random.default_rng(0).normal(0, 3, (480, 640))
    assert find_ink(np.clip(215 + noise, 0, 255).astype(np.uint8)).mask.sum() < 50


def test_ruled_lines_are_removed_but_a_digit_across_them_stays_whole() -> None:
    mask = np.zeros((480, 640), dtype=np.uint8)
    for row in range(40, 440, 48):
        cv2.line(mask, (0, row), (639, row + 30), 1, 2)  # tilted, as in a photo
    cv2.line(mask, (300, 100), (300, 330), 1, 8)  # a "1" written across four lines
    cleaned = remove_ruled_lines(mask.astype(bool))

    assert cleaned[:, :250].sum() == 0  # lines gone
    assert cleaned[100:331, 297:304].all()  # the digit's stroke intact, also where it crosses


def test_a_thick_digit_is_not_a_ruled_line() -> None:
    mask = np.zeros((480, 640), dtype=bool)
    mask[200:240, 50:600] = True  # a bar 40 px thick: a stroke, not a rule
    assert remove_ruled_lines(mask).sum() == mask.sum()


def test_upright_strokes_across_a_strip_of_digits_are_not_margins() -> None:
    mask = np.zeros((134, 1060), dtype=bool)
    for left in range(40, 1000, 100):
        mask[30:110, left : left + 2] = True  # ten thin 1s, each across 60% of the strip's height
    assert remove_ruled_lines(mask).sum() == mask.sum()


def test_tiny_drawings_are_enlarged_and_large_photos_reduced() -> None:
    assert max(to_working_gray(np.zeros((28, 28), np.uint8)).shape) >= 224
    assert to_working_gray(np.zeros((1200, 1600, 3), np.uint8)).shape == (480, 640)
    # A long strip of digits keeps its height: shrunk to 640 px wide, its pen strokes broke apart.
    assert to_working_gray(np.zeros((134, 1060), np.uint8)).shape == (134, 1060)
    assert to_working_gray(np.zeros((300, 4000), np.uint8)).shape == (120, 1600)


def test_to_mnist_fits_the_20_pixel_box_keeping_aspect_and_centres_the_mass() -> None:
    ink = np.zeros((300, 100), dtype=np.float32)
    ink[20:280, 40:60] = 1.0  # a tall bar
    digit = to_mnist(ink)

    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    rows = np.flatnonzero(digit.max(axis=1) > 0)
    cols = np.flatnonzero(digit.max(axis=0) > 0)
    assert rows[-1] - rows[0] + 1 <= MNIST_BOX + 1
    assert rows[-1] - rows[0] > 3 * (cols[-1] - cols[0])  # still tall and thin
    centre = np.array(np.nonzero(digit)).T.mean(axis=0)
    assert np.allclose(centre, 13.5, atol=1.0)
    assert digit.max() == 255


def test_hair_thin_and_marker_strokes_come_out_like_mnist() -> None:
    thin = to_mnist(strokes_of("8", thickness=2).astype(np.float32))
    heavy = to_mnist(strokes_of("8", thickness=40).astype(np.float32))

    for digit in (thin, heavy):
        width = stroke_width(digit > 127)
        assert 1.5 <= width <= 4.0  # MNIST strokes are about 2 px wide
    assert 0.5 < thin.sum() / heavy.sum() < 2.0


def test_empty_ink_gives_an_empty_digit_and_bad_shapes_are_refused() -> None:
    assert to_mnist(np.zeros((10, 10), np.float32)).sum() == 0
    with pytest.raises(ValueError):
        to_mnist(np.zeros((0, 5), np.float32))
