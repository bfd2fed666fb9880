"""Training material shaped by the photo pipeline: MNIST training digits, photographed and cut out again.

A model trained on MNIST alone has only seen MNIST's own clean strokes. The digits it is asked
to read come out of the photo pipeline: thinned or thickened to MNIST's width, broken where a
pen skipped, slightly cut by a shadow or by a neighbour. Rendering training digits as synthetic
photos and running them through the real pipeline gives 28×28 digits with exactly those faults,
each still labelled (a photo counts only when the pipeline found as many digits as were drawn).

The crops are made once per data folder and cached
(`pipeline-crops-v1-<count>-<seed>-<fitting digits>-<validation digits>.npz`): making 30,000
takes about five minutes on two cores. Crops of the validation digits (the training set's tail)
are kept apart, so validation and calibration never see a digit the model fit on; another split
(TRAINING_VALIDATION_SIZE, TRAINING_TRAIN_LIMIT) makes its own crops.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_engine.photo import ImageError, find_digit_crops
from mnist_engine.synthetic.photos import make_photo_set

logger = logging.getLogger(__name__)

CACHE_VERSION = 1  # raise when the generator or the pipeline changes what the crops look like
MIN_PHOTO_CROPS = 100  # a tenth of them validate: fewer would not say anything
# Small frames: the pipeline works at 640 px anyway, and rendering a small frame is 7x faster.
TRAINING_FRAME_SIZES = ((640, 480), (480, 640), (560, 560), (400, 300))
NUMBER_FRACTION = 0.3  # numbers give touching, cut and crowded digits
PHOTOS_PER_CHUNK = 100  # a few seconds of work: a cancelled run stops within that


class CropsCancelled(RuntimeError):
    """The crops were being made when the run was cancelled."""


@dataclass(frozen=True)
class PipelineCrops:
    """Labelled 28×28 uint8 digits as the pipeline produced them, split for fitting and validating."""

    x_fit: np.ndarray
    y_fit: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def load_pipeline_crops(
    data_dir: Path,
    fit_images: np.ndarray,
    fit_labels: np.ndarray,
    val_images: np.ndarray,
    val_labels: np.ndarray,
    *,
    count: int,
    seed: int = 0,
    workers: int | None = None,
    cancel_event: threading.Event | None = None,
) -> PipelineCrops:
    """Return `count` crops (a tenth from the validation digits), made once and cached in `data_dir`."""
    if count < MIN_PHOTO_CROPS:
        raise ValueError(f"count must be at least {MIN_PHOTO_CROPS}, got {count}")
    # The digits' split is part of the name: crops of another split could hold validation digits.
    name = f"pipeline-crops-v{CACHE_VERSION}-{count}-{seed}-{len(fit_labels)}-{len(val_labels)}.npz"
    path = Path(data_dir) / name
    if path.exists():
        with np.load(path) as archive:
            return PipelineCrops(*(archive[name] for name in ("x_fit", "y_fit", "x_val", "y_val")))
    logger.info("Making %d pipeline crops (once; cached in %s)", count, path)
    x_fit, y_fit = make_pipeline_crops(
        fit_images, fit_labels, count - count // 10, seed, workers, cancel_event
    )
    x_val, y_val = make_pipeline_crops(val_images, val_labels, count // 10, seed + 1, workers, cancel_event)
    crops = PipelineCrops(x_fit, y_fit, x_val, y_val)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".partial.npz")
    np.savez_compressed(temporary, x_fit=x_fit, y_fit=y_fit, x_val=x_val, y_val=y_val)
    temporary.replace(path)  # a crash never leaves a half-written cache behind
    return crops


def make_pipeline_crops(
    images: np.ndarray,
    labels: np.ndarray,
    count: int,
    seed: int,
    workers: int | None = None,
    cancel_event: threading.Event | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Photograph digits drawn from `images` and cut them out with the pipeline until `count` are made.

    Raises CropsCancelled soon after `cancel_event` is set.
    """
    workers = max(1, workers or os.cpu_count() or 1)
    chunks: list[tuple[np.ndarray, np.ndarray]] = []
    made, chunk_seed = 0, seed * 1_000_003
    # Spawned, not forked: the caller may be a training process with TensorFlow's threads running.
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_receive_digits,
        initargs=(images, labels),
    ) as pool:
        while made < count:
            if cancel_event is not None and cancel_event.is_set():
                pool.shutdown(cancel_futures=True)
                raise CropsCancelled("the run was cancelled while its pipeline crops were being made")
            seeds = range(chunk_seed, chunk_seed + workers)
            chunk_seed += workers
            for crops, crop_labels in pool.map(_crops_of_chunk, seeds):
                chunks.append((crops, crop_labels))
                made += len(crop_labels)
    x = np.concatenate([crops for crops, _ in chunks])[:count]
    y = np.concatenate([crop_labels for _, crop_labels in chunks])[:count]
    return x, y


_worker_digits: tuple[np.ndarray, np.ndarray] | None = None


def _receive_digits(images: np.ndarray, labels: np.ndarray) -> None:
    """Keep the digits in the worker process: sent once, not with every chunk."""
    global _worker_digits
    _worker_digits = (images, labels)


def _crops_of_chunk(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Render one seeded chunk of photos and keep the digits of each photo the pipeline cut right."""
    if _worker_digits is None:
        raise RuntimeError("the worker received no digits")
    images, labels = _worker_digits
    kept_images: list[np.ndarray] = []
    kept_labels: list[int] = []
    photos = make_photo_set(
        images, labels, PHOTOS_PER_CHUNK, seed, NUMBER_FRACTION, frame_sizes=TRAINING_FRAME_SIZES
    )
    for photo in photos:
        try:
            crops = find_digit_crops(photo.data)
        except ImageError:
            continue
        # Only when the count matches is each crop's label known; the rest are segmentation's failures.
        if len(crops) == len(photo.label):
            kept_images += [crop.image for crop in crops]
            kept_labels += [int(digit) for digit in photo.label]
    return (
        np.array(kept_images, dtype=np.uint8).reshape(-1, 28, 28),
        np.array(kept_labels, dtype=np.uint8),
    )
