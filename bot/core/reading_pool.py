"""Reading pictures in worker processes, so image work never holds the event loop's interpreter lock.

Each worker loads the serving model as it starts (and again whenever `current` changes). When a
worker dies (a decoder crashing on a hostile file, the out-of-memory killer), the pool is
replaced once and the old one shut down; each picture that was in flight is read again once, on
its own in a one-worker pool, so an innocent picture still gets its answer and the picture that
kills that worker too is answered with an error instead of being tried again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from mnist_engine.photo import Recognition, recognize
from mnist_engine.registry import RegistryError
from mnist_engine.serving import CurrentModel, NoModelError

logger = logging.getLogger(__name__)

ReadFunction = Callable[[bytes], tuple[Recognition, str | None]]

_model: CurrentModel | None = None


class ReaderCrashed(RuntimeError):
    """A picture killed the process reading it, twice: it is not tried again."""


def _initialise(model_dir: str) -> None:
    """Load the serving model in a new worker, before the first person waits for it."""
    global _model
    _model = CurrentModel(Path(model_dir))
    # No model yet (it is loaded when one serves) or a broken one (reported per picture).
    with contextlib.suppress(NoModelError, RegistryError):
        _model.get()


def read_in_worker(image_bytes: bytes) -> tuple[Recognition, str | None]:
    """Read the digits in an image with the worker's serving model; raises NoModelError or ImageError."""
    if _model is None:
        raise RuntimeError("read_in_worker runs only in a ReadingPool's worker")
    classifier = _model.get()
    # One loaded classifier for the whole picture: a reload mid-picture cannot mix models.
    return recognize(image_bytes, classifier), classifier.version


def serving_version_in_worker() -> str | None:
    """The serving model's version as a worker sees it; raises NoModelError or RegistryError."""
    if _model is None:
        raise RuntimeError("serving_version_in_worker runs only in a ReadingPool's worker")
    return _model.get().version


class ReadingPool:
    """A pool of reading processes that survives the death of one of them."""

    def __init__(self, model_dir: Path, workers: int, read_function: ReadFunction = read_in_worker) -> None:
        self.model_dir = Path(model_dir)
        self.workers = workers
        self.restarts = 0
        self._read_function = read_function
        self._pool = self._start(workers)
        self._quarantine: ProcessPoolExecutor | None = None
        self._quarantine_lock = asyncio.Lock()

    async def warm_up(self) -> str | None:
        """Start every worker (each loads the model); raises NoModelError while none serves."""
        loop = asyncio.get_running_loop()
        versions = await asyncio.gather(
            *(loop.run_in_executor(self._pool, serving_version_in_worker) for _ in range(self.workers))
        )
        return versions[0]

    async def read(self, image_bytes: bytes) -> tuple[Recognition, str | None]:
        """Read a picture in a worker; raises ImageError, NoModelError, RegistryError or ReaderCrashed."""
        pool = self._pool
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, self._read_function, image_bytes)
        except BrokenProcessPool:
            self._replace(pool)
        return await self._read_alone(image_bytes)

    def close(self) -> None:
        """Stop the worker processes."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._quarantine is not None:
            self._quarantine.shutdown(wait=True, cancel_futures=True)

    def _start(self, workers: int) -> ProcessPoolExecutor:
        # "spawn": the service runs threads, which a forked child would inherit in whatever state.
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_initialise,
            initargs=(str(self.model_dir),),
        )

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        """Replace the pool once, whichever of the reads it broke notices first."""
        if broken is not self._pool:
            return
        logger.error("A reading worker died; starting a new pool and closing the broken one")
        broken.shutdown(wait=False, cancel_futures=True)
        self._pool = self._start(self.workers)
        self.restarts += 1

    async def _read_alone(self, image_bytes: bytes) -> tuple[Recognition, str | None]:
        """Read a picture that was in flight when a worker died, alone, once."""
        async with self._quarantine_lock:
            if self._quarantine is None:
                self._quarantine = self._start(1)
            try:
                return await asyncio.get_running_loop().run_in_executor(
                    self._quarantine, self._read_function, image_bytes
                )
            except BrokenProcessPool:
                logger.error("A picture killed its reading worker twice; it is answered with an error")
                self._quarantine.shutdown(wait=False, cancel_futures=True)
                self._quarantine = None
                raise ReaderCrashed("the picture killed the process reading it") from None
