"""From bytes to MNIST crops and readings; generated photos read right by a model trained here."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from mnist_engine.photo import (
    DigitCrop,
    TooManyDigitsError,
    digits_to_text,
    find_digit_crops,
    recognize,
)
from mnist_engine.photo.decode import ImageError
from mnist_engine.serving import CurrentModel
from mnist_engine.synthetic.photos import make_photo_set
from mnist_engine.training.dataset import Mnist


def photo(
    text: str,
    *,
    size: tuple[int, int] = (1280, 960),
    paper=(236, 228, 205),
    ink=(30, 45, 150),
    ruled: bool = False,
    exif_orientation: int | None = None,
) -> bytes:
    """A JPEG of `text` handwritten-ish in blue on beige paper, lit unevenly, maybe ruled."""
    width, height = size
    page = np.empty((height, width, 3), dtype=np.uint8)
    page[:] = paper
    if ruled:
        for row in range(60, height, 70):
            cv2.line(page, (0, row), (width, row + 25), (165, 190, 230), 2, cv2.LINE_AA)
        cv2.line(page, (110, 0), (118, height), (220, 120, 120), 2, cv2.LINE_AA)
    lines = text.split(" ")
    for number, line in enumerate(lines):
        baseline = int(height * (number + 1) / (len(lines) + 1)) + 80
        cv2.putText(page, line, (width // 5, baseline), cv2.FONT_HERSHEY_SIMPLEX, 6, ink, 14, cv2.LINE_AA)
    light = np.linspace(1.0, 0.7, width, dtype=np.float32)[None, :, None]  # a window on the left
    pixels = np.clip(page.astype(np.float32) * light, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    options = {}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        options["exif"] = exif.tobytes()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=85, **options)
    return buffer.getvalue()


def lefts(crops: list[DigitCrop]) -> list[int]:
    return [crop.box[0] for crop in crops]


def test_a_number_gives_one_mnist_crop_per_digit_left_to_right() -> None:
    crops = find_digit_crops(photo("2026"))

    assert len(crops) == 4
    assert lefts(crops) == sorted(lefts(crops))
    for crop in crops:
        assert crop.image.shape == (28, 28) and crop.image.dtype == np.uint8
        assert crop.image.max() == 255 and crop.image[0].max() == 0  # white ink on a black margin
        left, top, right, bottom = crop.box
        assert 0 <= left < right <= 1280 and 0 <= top < bottom <= 960  # original pixel coordinates
        assert crop.line == 0


def test_two_lines_are_numbered_top_to_bottom() -> None:
    crops = find_digit_crops(photo("12 34"))
    assert [crop.line for crop in crops] == [0, 0, 1, 1]
    assert digits_to_text([1, 2, 3, 4], crops) == "12 34"


def test_ruled_lines_and_a_margin_are_not_read_as_ones() -> None:
    crops = find_digit_crops(photo("7", ruled=True))
    assert len(crops) == 1
    left, top, right, bottom = crops[0].box
    assert right - left > 50 and bottom - top > 100  # the 7 itself, not a sliver of a line


def test_boxes_are_in_the_upright_original_even_when_exif_turns_the_photo() -> None:
    crops = find_digit_crops(photo("4", size=(1280, 960), exif_orientation=6))  # shown as 960x1280
    assert len(crops) == 1
    left, top, right, bottom = crops[0].box
    assert right <= 960 and bottom <= 1280
    assert right - left > bottom - top  # the upright 4, turned on its side, is wider than tall


class TallInkIsConfident:
    """A stand-in model: sure of a "1" when the ink stands taller than wide, unsure otherwise."""

    def __init__(self) -> None:
        self.calls = 0

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        self.calls += 1
        probabilities = np.full((len(images), 10), 0.01)
        for row, image in zip(probabilities, images, strict=True):
            rows, cols = np.flatnonzero(image.max(axis=1)), np.flatnonzero(image.max(axis=0))
            row[1] = 0.99 if rows.size and rows[-1] - rows[0] > cols[-1] - cols[0] else 0.3
        return probabilities


def test_a_photo_taken_sideways_is_read_upright_with_the_models_help() -> None:
    upright = Image.open(io.BytesIO(photo("1111", size=(1280, 720))))
    buffer = io.BytesIO()
    upright.rotate(90, expand=True).save(buffer, "JPEG")  # sideways, and no EXIF to say so
    sideways = buffer.getvalue()

    assert len(find_digit_crops(sideways)) == 4
    model = TallInkIsConfident()
    recognition = recognize(sideways, model)
    assert recognition.text == "1111"
    assert min(digit.confidence for digit in recognition.digits) == 0.99
    # The upright reading and the two turned ones, each classified once: no crop twice.
    assert model.calls == 3
    for left, top, right, bottom in (digit.crop.box for digit in recognition.digits):
        assert 0 <= left < right <= 720 and 0 <= top < bottom <= 1280  # the sideways original's pixels
        assert right - left > bottom - top  # each 1 lies on its side there
    upright_boxes = [crop.box for crop in find_digit_crops(photo("1111"))]
    model = TallInkIsConfident()
    assert [digit.crop.box for digit in recognize(photo("1111"), model).digits] == upright_boxes
    assert model.calls == 1  # upright digits are not turned


def test_a_blank_page_has_no_digit() -> None:
    assert find_digit_crops(photo("")) == []


def test_a_page_of_noise_yields_no_digits() -> None:
    noise = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "PNG")
    try:
        crops = find_digit_crops(buffer.getvalue())
    except TooManyDigitsError:
        crops = []
    assert crops == []


def test_more_digits_than_allowed_are_refused_with_a_clear_message() -> None:
    with pytest.raises(TooManyDigitsError, match="at most 3"):
        find_digit_crops(photo("1234", size=(1600, 900)), max_digits=3)
    assert issubclass(TooManyDigitsError, ImageError)


def test_unreadable_bytes_raise_image_error() -> None:
    with pytest.raises(ImageError):
        find_digit_crops(b"GIF89a-but-not-really")


def test_digits_to_text_checks_its_input() -> None:
    crop = DigitCrop(image=np.zeros((28, 28), np.uint8), box=(0, 0, 1, 1), line=0)
    assert digits_to_text([], []) == ""
    with pytest.raises(ValueError):
        digits_to_text([1, 2], [crop])
    with pytest.raises(ValueError):
        digits_to_text([10], [crop])


@pytest.mark.slow
def test_generated_photos_of_mnist_test_digits_are_read_by_a_small_model(mnist: Mnist) -> None:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(mnist.x_train[..., None] / 255.0, mnist.y_train, epochs=1, batch_size=64, verbose=0)  # ~98.5%

    class KerasModel:
        def predict_proba(self, images: np.ndarray) -> np.ndarray:
            return model.predict(images[..., None] / 255.0, verbose=0)

    predict_proba = KerasModel().predict_proba

    photos = list(make_photo_set(mnist.x_test, mnist.y_test, count=12, seed=3, multi_fraction=0.25))
    read = []
    for item in photos:
        crops = find_digit_crops(item.data)
        labels = predict_proba(np.stack([crop.image for crop in crops])).argmax(axis=1) if crops else []
        read.append(digits_to_text(list(labels), crops).replace(" ", ""))
    right = sum(text == item.label for text, item in zip(read, photos, strict=True))
    assert right >= 11, list(zip(read, [item.label for item in photos], strict=True))

    # Numbers photographed sideways (no EXIF): the model's confidence turns them upright.
    numbers = make_photo_set(mnist.x_test, mnist.y_test, count=6, seed=4, multi_fraction=1.0)
    long_numbers = [item for item in numbers if len(item.label) >= 3][:2]
    assert len(long_numbers) == 2
    for item in long_numbers:
        buffer = io.BytesIO()
        Image.open(io.BytesIO(item.data)).rotate(-90, expand=True).save(buffer, "JPEG", quality=95)
        assert recognize(buffer.getvalue(), KerasModel()).text.replace(" ", "") == item.label


def _digit_on_paper(digits: list[np.ndarray], gap_in_the_middle: bool = False, across: bool = False) -> bytes:
    """A PNG of MNIST digits enlarged side by side on light paper; optionally each cut in two.

    The cut runs down the middle, or `across` it (the two pieces then lie one above the other).
    """
    paper = np.full((480, 80 + 260 * len(digits)), 235, np.uint8)
    for index, digit in enumerate(digits):
        big = cv2.resize(digit, (240, 240), interpolation=cv2.INTER_CUBIC)
        if gap_in_the_middle and across:
            big[112:124, :] = 0  # a pen that skipped across the stroke: two pieces, one above the other
        elif gap_in_the_middle:
            big[:, 112:128] = 0  # a pen that skipped: two pieces side by side
        left = 40 + 260 * index
        paper[120:360, left : left + 240] = 235 - (big.astype(np.float32) * 0.8).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(paper).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.slow
def test_a_digit_cut_in_two_is_read_as_one_digit_when_the_model_is_surer(
    mnist: Mnist, trained_model_dir: Path
) -> None:
    model = CurrentModel(trained_model_dir)
    zero, eight, four = mnist.x_test[3], mnist.x_test[84], mnist.x_test[4]  # labels 0, 8, 4
    read = []
    for digit in (zero, eight, four):
        cut = _digit_on_paper([digit], gap_in_the_middle=True)
        assert len(find_digit_crops(cut)) == 2  # the pipeline alone sees two shapes
        read.append(recognize(cut, model).text)
    assert sum(text == label for text, label in zip(read, "084", strict=True)) >= 2, read
    # Cut across, the pieces are found on two lines; read together they are the digit again.
    read_across = []
    for zero_cut_across in (mnist.x_test[3], mnist.x_test[10], mnist.x_test[13]):  # three 0s
        cut = _digit_on_paper([zero_cut_across], gap_in_the_middle=True, across=True)
        assert len({crop.line for crop in find_digit_crops(cut)}) == 2
        read_across.append(recognize(cut, model).text)
    assert read_across.count("0") >= 2, read_across
    # Two whole digits side by side are wider than one digit: never read as one.
    assert len(recognize(_digit_on_paper([four, eight]), model).text) == 2


class ScriptedModel:
    """Reads the crops of a picture, in reading order, as `readings` says: (digit, confidence)."""

    def __init__(self, readings: list[tuple[int, float]]) -> None:
        self.readings = readings

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        probabilities = np.zeros((len(images), 10), np.float32)
        for row, (digit, confidence) in zip(probabilities, self.readings, strict=False):
            row[:] = (1 - confidence) / 9
            row[digit] = confidence
        return probabilities


def _digit_beside_a_shape_cut_by_the_border(mnist: Mnist) -> bytes:
    """A 7 in the middle of the paper and, at its left edge, a dark shape the framing cuts."""
    paper = np.full((480, 800), 235, np.uint8)
    seven = cv2.resize(mnist.x_test[0], (240, 240), interpolation=cv2.INTER_CUBIC)  # label 7
    paper[120:360, 380:620] = 235 - (seven.astype(np.float32) * 0.8).astype(np.uint8)
    cv2.ellipse(paper, (0, 240), (60, 110), 0, 0, 360, 60, thickness=18)  # half of it beyond the edge
    buffer = io.BytesIO()
    Image.fromarray(paper).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_shape_cut_by_the_border_is_read_only_when_the_model_is_sure_of_it(mnist: Mnist) -> None:
    picture = _digit_beside_a_shape_cut_by_the_border(mnist)
    crops = find_digit_crops(picture)
    assert len(crops) == 2 and crops[0].box[0] == 0  # the pipeline alone keeps the cut shape

    # The edge of a shadow, a fold, a digit cut off by the framing: the model cannot read it.
    assert recognize(picture, ScriptedModel([(0, 0.45), (7, 0.99)])).text == "7"
    # A digit that just touches the edge and is read surely is kept.
    assert recognize(picture, ScriptedModel([(1, 0.97), (7, 0.99)])).text == "17"
    # Alone, a shape cut by the border is a close-up digit: it is read however unsure.
    lone = io.BytesIO()
    Image.open(io.BytesIO(picture)).crop((0, 0, 300, 480)).save(lone, "PNG")
    assert recognize(lone.getvalue(), ScriptedModel([(0, 0.45)])).text == "0"
