"""What an admin can ask of the service, whichever front end they ask in: the answers as text.

Each front end checks that the person is an admin (its own ids and roles) before calling these.
"""

from __future__ import annotations

import asyncio

from bot.core.services import Services
from bot.core.stats import model_text, stats_picture, stats_text
from bot.core.texts import say
from bot.core.training import TrainingBusyError, TrainingRequest, TrainingUnavailableError
from db import repository
from db.models import RunTrigger
from mnist_engine.registry import RegistryError
from mnist_engine.training.architectures import ARCHITECTURES

MIN_EPOCHS, MAX_EPOCHS = 1, 200
STATS_RUNS = 30  # runs drawn in the /stats chart


class TrainArgumentsError(ValueError):
    """The /train arguments are wrong; the message says how to give them."""


def parse_train_arguments(arguments: list[str]) -> tuple[str | None, int | None]:
    """'/train', '/train cnn', '/train cnn 5' or '/train 5'."""
    architecture: str | None = None
    epochs: int | None = None
    for argument in arguments:
        if argument.isdigit():
            epochs = check_epochs(int(argument))
        elif argument in ARCHITECTURES:
            architecture = argument
        else:
            raise TrainArgumentsError(
                say("admin.unknown_architecture", name=argument, choices=", ".join(ARCHITECTURES))
            )
    return architecture, epochs


def check_epochs(epochs: int) -> int:
    """Epochs as an admin may ask for them."""
    if not MIN_EPOCHS <= epochs <= MAX_EPOCHS:
        raise TrainArgumentsError(say("admin.epochs_range"))
    return epochs


async def start_training(
    services: Services, requested_by: str, architecture: str | None = None, epochs: int | None = None
) -> str:
    """Start a run now; the answer says it started or which run is in the way."""
    request = TrainingRequest(
        trigger=RunTrigger.MANUAL, requested_by=requested_by, architecture=architecture, epochs=epochs
    )
    try:
        run = await services.trainer.start(request)
    except TrainingBusyError as busy:
        return busy_text(busy)
    except TrainingUnavailableError as error:
        return say("admin.run_unavailable", error=error)
    return say("admin.run_started", run_id=run.run_id, architecture=run.architecture)


def busy_text(busy: TrainingBusyError) -> str:
    """Which run is in the way, as far as this process knows it."""
    if busy.run is not None:
        return say(
            "admin.run_busy",
            run_id=busy.run.run_id,
            progress=busy.run.progress,
            epoch=busy.run.epoch,
            total_epochs=busy.run.total_epochs,
        )
    requested_by = busy.summary.requested_by if busy.summary is not None else None
    return say("admin.run_busy_elsewhere", run_id=busy.run_id, requested_by=requested_by or "?")


async def cancel_training(services: Services) -> str:
    """Stop the run in progress at its next batch."""
    if await services.trainer.cancel():
        return say("admin.cancel_stopping")
    return say("admin.cancel_none")


async def model_report(services: Services) -> str:
    """The serving model's version and metrics."""
    try:
        return model_text(await asyncio.to_thread(services.registry.current_metadata))
    except RegistryError as error:
        return say("admin.model_broken", error=error)


async def stats_report(services: Services) -> tuple[str, bytes]:
    """Usage, accuracy as users judged it, recent runs, and one chart (database and drawing in a thread)."""

    def build() -> tuple[str, bytes]:
        with services.sessions() as session:
            statistics = repository.statistics(session)
            runs = list(reversed(repository.recent_runs(session, limit=STATS_RUNS)))
        try:
            metadata = services.registry.current_metadata()
        except RegistryError:
            metadata = None  # /model says what is wrong with it
        return stats_text(statistics, metadata), stats_picture(statistics, runs)

    return await asyncio.to_thread(build)
