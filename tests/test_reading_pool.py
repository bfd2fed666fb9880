"""The reading workers: each loads the model as it starts, and the pool survives a worker's death."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest
from bot_support import model_loaded_in_worker, read_or_die

from bot.core.reading_pool import ReaderCrashed, ReadingPool
from mnist_engine.photo import Recognition
from mnist_engine.registry import ModelRegistry
from mnist_engine.training.dataset import Mnist
from mnist_engine.training.store import save_version
from mnist_engine.training.train import TrainingConfig, train


async def test_a_picture_that_kills_its_worker_gets_an_error_and_the_others_their_answers(
    tmp_path: Path,
) -> None:
    pool = ReadingPool(tmp_path / "models", workers=2, read_function=read_or_die)
    try:
        await asyncio.gather(*(pool.read(b"warm") for _ in range(2)))  # both workers running
        broken = pool._pool
        workers = list(broken._processes.values())  # type: ignore[union-attr]
        results = await asyncio.gather(
            pool.read(b"innocent-1"),
            pool.read(b"poison"),
            pool.read(b"innocent-2"),
            pool.read(b"innocent-3"),
            return_exceptions=True,
        )
        # The killer is answered with an error, once; the pictures in flight beside it are read.
        assert isinstance(results[1], ReaderCrashed)
        nothing_read = (Recognition(digits=[], text=""), "test-model")
        assert [results[0], results[2], results[3]] == [nothing_read] * 3
        # One restart, not one per picture, and the broken pool's processes are gone.
        assert pool.restarts == 1 and pool._pool is not broken
        deadline = time.monotonic() + 20
        while any(worker.is_alive() for worker in workers) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not any(worker.is_alive() for worker in workers)
        # The new pool reads on.
        assert (await pool.read(b"after"))[1] == "test-model"
    finally:
        pool.close()


@pytest.mark.slow
async def test_every_worker_loads_the_model_before_its_first_picture(tmp_path: Path, mnist: Mnist) -> None:
    registry = ModelRegistry(tmp_path / "models")
    config = TrainingConfig(
        architecture="dense", epochs=1, train_limit=3000, validation_size=1000, test_limit=500
    )
    registry.set_current(save_version(registry, train(mnist, config)))
    pool = ReadingPool(registry.root, workers=2)
    try:
        await pool.warm_up()
        loop = asyncio.get_running_loop()
        first_seen: dict[int, bool] = {}
        for pid, loaded in await asyncio.gather(
            *(loop.run_in_executor(pool._pool, model_loaded_in_worker) for _ in range(20))
        ):
            first_seen.setdefault(pid, loaded)
        assert len(first_seen) == 2 and all(first_seen.values())
    finally:
        pool.close()
    shutil.rmtree(registry.root)
