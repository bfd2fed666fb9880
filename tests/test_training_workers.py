"""Training on a worker through Redis Queue: a real Redis, a real `python -m bot.worker`, two instances."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from bot_support import TOKEN
from scaling_support import PrivateRedis, kill_tree
from sqlalchemy import select

from bot.core import admin
from bot.core.progress import RunProgress
from bot.core.services import Services, build_services, start_services, stop_services
from bot.core.texts import say
from bot.service import prepare_database
from bot.settings import load_settings
from db import repository
from db.models import RunStatus, TrainingRun
from db.session import make_engine, make_session_factory
from db.views import RunSummary
from mnist_engine.registry import ModelRegistry

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Recorder:
    """An admin channel that remembers what it was shown."""

    def __init__(self) -> None:
        self.states: list[int] = []
        self.ended: list[RunProgress] = []
        self.notes: list[str] = []

    async def progress(self, run: RunProgress) -> None:
        self.states.append(run.epoch)

    async def finished(self, run: RunProgress, curves_png: bytes | None) -> None:
        self.ended.append(run)

    async def notify(self, text: str) -> None:
        self.notes.append(text)


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A redis-server of the test's own: nothing shared with another test run on this machine."""
    if not PrivateRedis.available():
        pytest.skip("redis-server is not installed")
    redis = PrivateRedis(tmp_path / "redis")
    redis.start()
    yield redis.url
    redis.stop()


@pytest.fixture
def environment(tmp_path: Path, model_dir: Path, data_dir: Path, redis_url: str) -> dict[str, str]:
    """What the service instances and the worker share: the database, Redis, the models volume."""
    return {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
        "MNIST_MODEL_DIR": str(model_dir),
        "MNIST_DATA_DIR": str(data_dir),
        "REDIS_URL": redis_url,
        "TRAINING_BACKEND": "rq",
        "RUN_HEARTBEAT_TIMEOUT": "4",
        "TRAINING_TRAIN_LIMIT": "4000",
        "TRAINING_VALIDATION_SIZE": "1000",
        "TRAINING_TEST_LIMIT": "1000",
        "PROMOTION_TOLERANCE": "0.1",
        "READING_WORKERS": "1",
    }


@pytest.fixture
def worker(environment: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m bot.worker`, as a training machine runs it."""
    log = (tmp_path / "worker.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.worker"],
        env={**os.environ, **environment},
        cwd=PROJECT_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    yield process
    kill_tree(process.pid)
    process.wait(timeout=30)
    log.close()


async def instance(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Services:
    """One service instance (without a chat front end) on the shared database, Redis and models."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(_env_file=None)
    return build_services(settings, prepare_database(settings))


@pytest.fixture
async def two_instances(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[list[tuple[Services, Recorder]]]:
    """Two service instances, each with an admin channel that records what it is shown."""
    running = []
    for _ in range(2):
        services, recorder = await instance(environment, monkeypatch), Recorder()
        services.admins.add(recorder)
        services.admins.add(Recorder(), own=True)  # as each instance's web dashboard is
        await start_services(services)
        running.append((services, recorder))
    await until(lambda: any(services.leadership and services.leadership.is_leader for services, _ in running))
    yield running
    for services, _ in running:
        await stop_services(services)


async def until(condition, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    """Wait until `condition()` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{condition} did not hold within {timeout} s")
        await asyncio.sleep(0.1)


def run_in_database(environment: dict[str, str]) -> RunSummary:
    """The one training run in the shared database, with its epochs."""
    with make_session_factory(make_engine(environment["DATABASE_URL"]))() as session:
        [run_id] = session.scalars(select(TrainingRun.id)).all()
        summary = repository.get_run(session, run_id)
    assert summary is not None
    return summary


async def test_a_run_trains_on_the_worker_and_one_instance_relays_it(
    two_instances: list[tuple[Services, Recorder]],
    worker: subprocess.Popen[bytes],
    environment: dict[str, str],
    model_dir: Path,
) -> None:
    (first, first_seen), (second, second_seen) = two_instances
    before = ModelRegistry(model_dir).current_version()
    answer = await admin.start_training(second, "Ada", "dense", 2)
    assert answer.startswith("Started training run #")
    # The other instance follows the same run, and is told so when asked to start another.
    await until(lambda: first.trainer.active is not None)
    assert "already in progress" in await admin.start_training(first, "Grace", "dense", 2)

    await until(lambda: first.trainer.active is None and second.trainer.active is None, timeout=180)
    # Exactly one instance relayed the run to the admins, its progress and its end.
    relayed = [seen for seen in (first_seen, second_seen) if seen.states or seen.ended]
    assert len(relayed) == 1
    assert [run.status for run in relayed[0].ended] == [RunStatus.SUCCEEDED]
    # While every instance's own dashboards followed it all.
    for services in (first, second):
        [dashboard] = [sink for sink in services.admins._own if isinstance(sink, Recorder)]
        assert dashboard.states and [run.status for run in dashboard.ended] == [RunStatus.SUCCEEDED]
    run = run_in_database(environment)
    assert run.status is RunStatus.SUCCEEDED and run.promoted and [e.epoch for e in run.epochs] == [1, 2]
    # The new model is on the shared volume and serves.
    assert ModelRegistry(model_dir).current_version() == run.model_version != before


async def test_a_cancel_reaches_the_worker(
    two_instances: list[tuple[Services, Recorder]],
    worker: subprocess.Popen[bytes],
    environment: dict[str, str],
) -> None:
    (first, first_seen), (second, second_seen) = two_instances
    await admin.start_training(first, "Ada", "dense", 50)
    await until(lambda: second.trainer.active is not None and second.trainer.active.epoch >= 1, timeout=120)
    assert await admin.cancel_training(second) == say("admin.cancel_stopping")
    await until(lambda: first.trainer.active is None and second.trainer.active is None, timeout=60)
    assert [run.status for run in first_seen.ended + second_seen.ended] == [RunStatus.CANCELLED]
    assert run_in_database(environment).status == RunStatus.CANCELLED


async def test_a_worker_that_dies_mid_run_leaves_it_interrupted_and_the_model_unchanged(
    two_instances: list[tuple[Services, Recorder]],
    worker: subprocess.Popen[bytes],
    environment: dict[str, str],
    model_dir: Path,
) -> None:
    (first, first_seen), (second, second_seen) = two_instances
    before = ModelRegistry(model_dir).current_version()
    await admin.start_training(first, "Ada", "dense", 50)
    await until(lambda: first.trainer.active is not None and first.trainer.active.epoch >= 1, timeout=120)
    kill_tree(worker.pid)  # the training machine is gone
    # Its heartbeat runs out (RUN_HEARTBEAT_TIMEOUT=4 s): an instance marks it, the leader tells.
    await until(lambda: first.trainer.active is None and second.trainer.active is None, timeout=30)
    assert [run.status for run in first_seen.ended + second_seen.ended] == [RunStatus.INTERRUPTED]
    assert run_in_database(environment).status == RunStatus.INTERRUPTED
    assert ModelRegistry(model_dir).current_version() == before
