"""Digit reading in worker processes, so image work never competes with the event loop for the GIL.

Each worker loads the serving model once (and again whenever `current` changes); the parent sends
it image bytes and gets back the recognition and the model version that produced it.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from mnist_engine.recognize import Recognition, recognize
from mnist_engine.serving import CurrentModel

_model: CurrentModel | None = None


def start_pool(model_dir: Path, workers: int) -> ProcessPoolExecutor:
    """A pool of reading workers; "spawn" because the parent runs threads, which fork does not copy safely."""
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_initialise,
        initargs=(str(model_dir),),
    )


def _initialise(model_dir: str) -> None:
    global _model
    _model = CurrentModel(Path(model_dir))


def read_in_worker(image_bytes: bytes) -> tuple[Recognition, str | None]:
    """Read the digits in an image with the worker's serving model; raises NoModelError or ImageError."""
    if _model is None:
        raise RuntimeError("read_in_worker runs only in a pool made by start_pool")
    classifier = _model.get()
    # One loaded classifier for the whole picture: a reload mid-picture cannot mix models.
    return recognize(image_bytes, classifier), classifier.version


def warm_up_worker() -> str | None:
    """Load the model in a worker before the first user waits for it; return its version."""
    if _model is None:
        raise RuntimeError("warm_up_worker runs only in a pool made by start_pool")
    return _model.get().version
