"""The synthetic photos, the training material the photo pipeline cuts out of them, and calibration."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_engine.serving.calibration import apply_temperature
from mnist_engine.synthetic.photos import MAX_NUMBER_LENGTH, make_photo_set, render_photo
from mnist_engine.synthetic.pipeline_crops import CropsCancelled, load_pipeline_crops, make_pipeline_crops
from mnist_engine.training.calibration import temperature_for
from mnist_engine.training.dataset import Mnist


def test_photo_sets_are_seeded_and_hold_numbers_up_to_the_longest(mnist: Mnist) -> None:
    first = list(make_photo_set(mnist.x_test, mnist.y_test, 12, seed=5, multi_fraction=1.0))
    again = list(make_photo_set(mnist.x_test, mnist.y_test, 12, seed=5, multi_fraction=1.0))

    assert [photo.data for photo in first] == [photo.data for photo in again]
    assert all(2 <= len(photo.label) <= MAX_NUMBER_LENGTH for photo in first)
    assert Image.open(io.BytesIO(first[0].data)).format == "JPEG"
    with pytest.raises(ValueError):
        render_photo([], np.random.default_rng(0))
    with pytest.raises(ValueError):
        next(make_photo_set(mnist.x_test, mnist.y_test, 1, seed=0, multi_fraction=1.5))


def test_pipeline_crops_are_labelled_mnist_style_digits_and_seeded(mnist: Mnist) -> None:
    images, labels = mnist.x_train[:2000], mnist.y_train[:2000]

    crops, crop_labels = make_pipeline_crops(images, labels, count=60, seed=3, workers=1)
    again, again_labels = make_pipeline_crops(images, labels, count=60, seed=3, workers=1)

    assert crops.shape == (60, 28, 28) and crops.dtype == np.uint8
    assert np.array_equal(crops, again) and np.array_equal(crop_labels, again_labels)
    assert set(crop_labels.tolist()) <= set(range(10))
    # MNIST style: the digit fills a 20-pixel box, nothing in the outer frame's corners.
    assert crops[:, :2, :2].max() == 0 and (crops.max(axis=(1, 2)) > 200).all()


@pytest.mark.slow
def test_pipeline_crops_are_made_once_and_cached(mnist: Mnist, tmp_path: Path) -> None:
    fit = mnist.x_train[:1500], mnist.y_train[:1500]
    validation = mnist.x_train[1500:2000], mnist.y_train[1500:2000]

    made = load_pipeline_crops(tmp_path, *fit, *validation, count=100, workers=1)
    cached = list(tmp_path.glob("pipeline-crops-*.npz"))
    loaded = load_pipeline_crops(tmp_path, *fit, *validation, count=100, workers=1)

    assert len(cached) == 1
    assert (len(made.y_fit), len(made.y_val)) == (90, 10)
    assert np.array_equal(made.x_fit, loaded.x_fit) and np.array_equal(made.y_val, loaded.y_val)
    with pytest.raises(ValueError, match="at least"):
        load_pipeline_crops(tmp_path, *fit, *validation, count=5)


def test_temperature_softens_an_over_confident_model_and_never_changes_the_answer() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 1000)
    # A model that says 99.9% every time but is right only 80% of the time.
    predicted = np.where(rng.random(1000) < 0.8, labels, (labels + 1) % 10)
    probabilities = np.full((1000, 10), 0.001 / 9)
    probabilities[np.arange(1000), predicted] = 0.999

    temperature = temperature_for(probabilities, labels)
    calibrated = apply_temperature(probabilities, temperature)

    assert temperature > 1.5
    assert np.array_equal(calibrated.argmax(axis=1), predicted)
    assert calibrated.max(axis=1).mean() == pytest.approx(0.8, abs=0.02)
    assert apply_temperature(probabilities, 1.0) is probabilities
    with pytest.raises(ValueError):
        apply_temperature(probabilities, 0.0)


def test_making_crops_stops_when_the_run_is_cancelled(mnist: Mnist) -> None:
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(CropsCancelled):
        make_pipeline_crops(
            mnist.x_train[:100], mnist.y_train[:100], 50, seed=0, workers=1, cancel_event=cancelled
        )
