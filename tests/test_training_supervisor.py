"""One training run at a time, in this process and across processes; cancelling before the trainer starts."""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.core.progress import ProgressHub, RunProgress
from bot.core.training import TrainingBusyError, TrainingPlan, TrainingRequest, TrainingSupervisor
from bot.core.training_job import TrainingJob, child_environment
from db.models import RunStatus, RunTrigger, TrainingRun
from db.session import make_engine, make_session_factory, upgrade
from mnist_engine.settings import EngineSettings

pytestmark = pytest.mark.slow


class Recorder:
    """An admin channel that remembers how runs ended."""

    def __init__(self) -> None:
        self.ended: list[RunProgress] = []

    async def progress(self, run: RunProgress) -> None:
        """Nothing to show in these tests."""

    async def finished(self, run: RunProgress, curves_png: bytes | None) -> None:
        self.ended.append(run)

    async def notify(self, text: str) -> None:
        """Nothing to show in these tests."""


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    upgrade(url)
    return make_session_factory(make_engine(url))


@pytest.fixture
def plan(tmp_path: Path, data_dir: Path) -> TrainingPlan:
    engine = EngineSettings(  # type: ignore[call-arg]
        _env_file=None,
        MNIST_DATA_DIR=data_dir,
        MNIST_MODEL_DIR=tmp_path / "models",
        TRAINING_TRAIN_LIMIT=4000,
        TRAINING_VALIDATION_SIZE=1000,
        TRAINING_TEST_LIMIT=1000,
    )
    return TrainingPlan(engine=engine, architecture="dense", epochs=50)


def supervisor(plan: TrainingPlan, sessions: sessionmaker[Session]) -> tuple[TrainingSupervisor, Recorder]:
    hub, recorder = ProgressHub(), Recorder()
    hub.add(recorder)
    return TrainingSupervisor(plan, sessions, hub), recorder


async def test_two_admins_starting_at_once_get_one_run(
    plan: TrainingPlan, sessions: sessionmaker[Session]
) -> None:
    trainer, recorder = supervisor(plan, sessions)
    request = TrainingRequest(trigger=RunTrigger.MANUAL, requested_by="Ada")
    scheduled = TrainingRequest(trigger=RunTrigger.SCHEDULED, requested_by="schedule")
    results = await asyncio.gather(trainer.start(request), trainer.start(scheduled), return_exceptions=True)
    started = [result for result in results if isinstance(result, RunProgress)]
    refused = [result for result in results if isinstance(result, TrainingBusyError)]
    assert len(started) == 1 and len(refused) == 1
    assert await trainer.cancel()
    await trainer.wait()
    with sessions() as session:
        runs = session.scalars(select(TrainingRun)).all()
    assert [(run.id, run.status) for run in runs] == [(started[0].run_id, RunStatus.CANCELLED)]
    assert [run.run_id for run in recorder.ended] == [started[0].run_id]


async def test_another_process_on_the_same_database_cannot_start_a_second_run(
    plan: TrainingPlan, sessions: sessionmaker[Session]
) -> None:
    first, _ = supervisor(plan, sessions)
    second, _ = supervisor(plan, sessions)  # another service instance sharing the database
    run = await first.start(TrainingRequest(trigger=RunTrigger.MANUAL, requested_by="Ada"))
    with pytest.raises(TrainingBusyError) as busy:
        await second.start(TrainingRequest(trigger=RunTrigger.MANUAL, requested_by="Grace"))
    assert busy.value.run_id == run.run_id and busy.value.summary is not None
    assert busy.value.summary.requested_by == "Ada"
    await first.shutdown()
    # Once it ended, the other instance may train.
    again = await second.start(TrainingRequest(trigger=RunTrigger.MANUAL, requested_by="Grace"))
    await second.shutdown()
    assert again.run_id != run.run_id


async def test_cancel_while_the_samples_are_exported_starts_no_trainer(
    plan: TrainingPlan, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer, recorder = supervisor(plan, sessions)
    exporting, release = threading.Event(), threading.Event()

    def slow_export(folder: Path) -> tuple[Path | None, int]:
        exporting.set()
        release.wait(timeout=30)
        return None, 0

    started_processes: list[tuple[object, ...]] = []

    async def no_process(*command: object, **options: object) -> None:
        started_processes.append(command)
        raise AssertionError("the trainer must not start after a cancel")

    monkeypatch.setattr(TrainingJob, "_write_user_samples", lambda job, folder: slow_export(folder))
    monkeypatch.setattr(asyncio, "create_subprocess_exec", no_process)
    run = await trainer.start(TrainingRequest(trigger=RunTrigger.SCHEDULED, requested_by="schedule"))
    await asyncio.to_thread(exporting.wait, 10)
    shutdown = asyncio.create_task(trainer.shutdown())  # the service is stopping while it exports
    await asyncio.sleep(0.1)
    release.set()
    await asyncio.wait_for(shutdown, timeout=10)
    assert started_processes == []
    assert recorder.ended[0].status is RunStatus.CANCELLED
    with sessions() as session:
        assert session.get(TrainingRun, run.run_id).status is RunStatus.CANCELLED  # type: ignore[union-attr]


def test_the_trainer_sees_no_secret(plan: TrainingPlan, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "TELEGRAM_BOT_TOKEN": "123456789:AAE-secret",
        "DISCORD_BOT_TOKEN": "discord-secret",
        "ADMIN_TOKEN": "admin-secret",
        "USER_ID_SECRET": "hashing-secret",
        "DATABASE_URL": "postgresql+psycopg://bot:password@db/bot",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    environment = child_environment(plan.engine)
    assert not set(secrets) & set(environment)
    assert not any(value in environment.values() for value in secrets.values())
    assert environment["PATH"] == os.environ["PATH"]
    assert environment["MNIST_DATA_DIR"] == str(plan.engine.data_dir.resolve())


async def test_a_running_run_keeps_its_heartbeat_fresh(
    plan: TrainingPlan, sessions: sessionmaker[Session]
) -> None:
    plan = replace(plan, heartbeat_timeout=timedelta(seconds=1.2))  # a heartbeat every 0.2 s
    trainer, _ = supervisor(plan, sessions)
    run = await trainer.start(TrainingRequest(trigger=RunTrigger.MANUAL, requested_by="Ada"))

    def heartbeat() -> object:
        with sessions() as session:
            return session.get(TrainingRun, run.run_id).heartbeat_at  # type: ignore[union-attr]

    first = heartbeat()
    await asyncio.sleep(1.0)
    assert heartbeat() > first  # type: ignore[operator]
    await trainer.shutdown()
