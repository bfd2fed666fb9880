"""Which model serves, changed by an admin: promote any stored version, or roll back to the one before.

The switch goes through the engine's registry under its promotion lock (the lock a finishing run
takes to compare and promote), and is recorded in the database with who asked. The reading
workers follow the registry's `current` pointer, so the next picture is read by the new model.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot.core.services import Services
from bot.core.texts import say
from db import repository
from db.models import ModelChange, ModelChangeKind
from db.views import ModelChangeView
from mnist_engine.registry import RegistryError


class ServingChangeRefused(Exception):
    """The change cannot be made (no such version, already serving); the message says why."""


@dataclass(frozen=True)
class ServingState:
    """The serving version, the one to roll back to (if known), and every stored version, oldest first."""

    current: str | None
    previous: str | None
    versions: list[str]
    broken: str | None = None  # why `current` cannot be read, when it cannot


async def serving_state(services: Services) -> ServingState:
    """What serves now and what served before it."""
    return await asyncio.to_thread(_serving_state, services)


async def serve_version(services: Services, version: str, requested_by: str) -> ModelChangeView:
    """Make `version` serve; record it as a roll-back when it is the version that served before."""
    return await asyncio.to_thread(_serve_version, services, version, requested_by)


def _serving_state(services: Services) -> ServingState:
    registry = services.registry
    versions = registry.versions()
    try:
        current = registry.current_version()
    except RegistryError as error:
        return ServingState(current=None, previous=None, versions=versions, broken=str(error))
    return ServingState(current=current, previous=_previous(services, current), versions=versions)


def _previous(services: Services, current: str | None) -> str | None:
    """The version that served before `current`: from the last change to it, by hand or by a run."""
    if current is None:
        return None
    with services.sessions() as session:
        for change in repository.model_changes(session, limit=50):
            if change.version == current:
                return change.previous_version
        for run in reversed(repository.model_history(session, current)):
            if run.model_version == current:
                return run.serving_version
    return None


def _serve_version(services: Services, version: str, requested_by: str) -> ModelChangeView:
    registry = services.registry
    with registry.promotion_lock():
        if version not in registry.versions():
            raise ServingChangeRefused(say("web.admin.no_such_version", version=version))
        try:
            current = registry.current_version()
        except RegistryError:
            current = None  # a broken pointer is what this change repairs
        if version == current:
            raise ServingChangeRefused(say("web.admin.already_serving", version=version))
        kind = (
            ModelChangeKind.ROLL_BACK if version == _previous(services, current) else ModelChangeKind.PROMOTE
        )
        registry.set_current(version)
        with services.sessions.begin() as session:
            change_id = repository.record_model_change(
                session, kind=kind, version=version, previous_version=current, requested_by=requested_by
            )
            return ModelChangeView.from_row(session.get_one(ModelChange, change_id))
