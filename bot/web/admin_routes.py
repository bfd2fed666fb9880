"""The dashboard at `/admin`: sign-in, training runs started, cancelled and watched live, the runs'
history, the models (promote, roll back), and usage over time.

Every route but the sign-in needs a session; every POST also spends a CSRF token and answers
with the next one in `X-CSRF-Token`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from bot.core import admin
from bot.core.serving import ServingChangeRefused, serve_version, serving_state
from bot.core.stats import usage_lines
from bot.core.texts import say
from bot.core.training import TrainingBusyError, TrainingRequest, TrainingUnavailableError
from bot.web.admin_auth import CSRF_HEADER, CsrfRefused
from bot.web.context import WebContext, client_address, web_of
from bot.web.live_progress import finite
from bot.web.uploads import BodyTooLarge, read_body_within
from db import repository
from db.models import RunTrigger
from db.views import RunSummary
from mnist_engine.registry import RegistryError
from mnist_engine.training.architectures import ARCHITECTURES

RUNS_SHOWN = 30
USAGE_DAYS = 30
MAX_REQUEST_BYTES = 1024
REQUESTED_BY = "web admin"

AdminHandler = Callable[[Request, WebContext], Awaitable[Response]]


# --- Pages and signing in --------------------------------------------------------------------------


async def dashboard(request: Request) -> Response:
    """The dashboard for a signed-in admin, else the sign-in form."""
    web = web_of(request)
    session = web.admin.session_of(request)
    if session is None:
        return sign_in_page(request, web)
    return web.page(
        request,
        "admin.html",
        csrf_token=web.admin.new_csrf_token(session),
        architectures=list(ARCHITECTURES),
        default_architecture=web.services.settings.retrain_architecture,
        texts=admin_texts(),
    )


def sign_in_page(
    request: Request, web: WebContext, error: str | None = None, status_code: int = 200
) -> Response:
    """The sign-in form, with a fresh single-use form token."""
    return web.page(
        request, "sign_in.html", status_code=status_code, form_token=web.admin.sign_in_form(), error=error
    )


async def sign_in(request: Request) -> Response:
    """Check the token from the form; open a session and go to the dashboard, or say what was wrong."""
    web = web_of(request)
    if not web.admin.may_try(client_address(request)):
        return sign_in_page(request, web, say("web.admin.too_many_attempts"), status_code=429)
    async with request.form(max_files=0, max_fields=4) as form:
        form_token, token = str(form.get("form_token", "")), str(form.get("token", ""))
    if not web.admin.spend_sign_in_form(form_token):
        return sign_in_page(request, web, say("web.admin.form_expired"), status_code=403)
    if not web.admin.token_matches(token):
        web.admin.count_failure(client_address(request))
        return sign_in_page(request, web, say("web.admin.wrong_token"), status_code=401)
    response = RedirectResponse("/admin", status_code=303)
    web.admin.open_session(response)
    return response


def admin_texts() -> dict[str, str]:
    """The dashboard script's words, filled in here."""
    from bot.core.texts import ENGLISH

    return {key: value for key, value in ENGLISH.items() if key.startswith("web.admin.") and "{" not in value}


# --- The guard every other route goes through ------------------------------------------------------


def signed_in(handler: AdminHandler) -> Callable[[Request], Awaitable[Response]]:
    """Let only a signed-in admin through; for POSTs, spend a CSRF token and hand out the next."""

    async def guarded(request: Request) -> Response:
        web = web_of(request)
        session = web.admin.session_of(request)
        if session is None:
            return JSONResponse({"text": say("web.admin.not_signed_in")}, status_code=401)
        if request.method != "POST":
            return await handler(request, web)
        try:
            web.admin.spend_csrf_token(request, session)
        except CsrfRefused as refusal:
            key = "web.admin.csrf_missing" if refusal.missing else "web.admin.csrf_replayed"
            return JSONResponse({"text": say(key)}, status_code=403)
        response = await handler(request, web)
        response.headers[CSRF_HEADER] = web.admin.new_csrf_token(session)
        return response

    guarded.__name__ = handler.__name__
    guarded.__doc__ = handler.__doc__
    return guarded


async def json_body(request: Request) -> dict[str, Any]:
    """A small JSON object body; ValueError when it is not one."""
    try:
        payload = json.loads(await read_body_within(request, MAX_REQUEST_BYTES) or b"{}")
    except BodyTooLarge:
        raise ValueError("body too large") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise ValueError("expected a JSON object")
    return payload


def bad_request(detail: str) -> JSONResponse:
    """A 400 that says what was wrong."""
    return JSONResponse({"text": say("web.bad_request", detail=detail)}, status_code=400)


# --- What a signed-in admin can do -----------------------------------------------------------------


@signed_in
async def sign_out(request: Request, web: WebContext) -> Response:
    """End the session."""
    response = JSONResponse({"text": ""})
    web.admin.close_session(request, response)
    return response


@signed_in
async def start_run(request: Request, web: WebContext) -> Response:
    """Start a run: `{"architecture": "small-cnn", "epochs": 3}` (both optional)."""
    try:
        payload = await json_body(request)
        architecture = payload.get("architecture") or None
        epochs = payload.get("epochs")
        if architecture is not None and architecture not in ARCHITECTURES:
            raise ValueError(
                say("admin.unknown_architecture", name=architecture, choices=", ".join(ARCHITECTURES))
            )
        if epochs is not None:
            if not isinstance(epochs, int) or isinstance(epochs, bool):
                raise ValueError(say("admin.epochs_range"))
            admin.check_epochs(epochs)
    except ValueError as error:  # TrainArgumentsError is a ValueError
        return bad_request(str(error))
    request_ = TrainingRequest(
        trigger=RunTrigger.MANUAL, requested_by=REQUESTED_BY, architecture=architecture, epochs=epochs
    )
    try:
        run = await web.services.trainer.start(request_)
    except TrainingBusyError as busy:
        return JSONResponse({"text": admin.busy_text(busy)}, status_code=409)
    except TrainingUnavailableError as error:
        return JSONResponse({"text": say("admin.run_unavailable", error=error)}, status_code=503)
    text = say("web.admin.run_started", run_id=run.run_id, architecture=run.architecture)
    return JSONResponse({"text": text, "run_id": run.run_id})


@signed_in
async def cancel_run(request: Request, web: WebContext) -> Response:
    """Stop the run in progress at its next batch."""
    return JSONResponse({"text": await admin.cancel_training(web.services)})


@signed_in
async def serve(request: Request, web: WebContext) -> Response:
    """Make a stored version serve: `{"version": "20261129-101500-small-cnn"}` (promote or roll back)."""
    try:
        version = (await json_body(request)).get("version")
        if not isinstance(version, str):
            raise ValueError("version must be a model version's name")
        change = await serve_version(web.services, version, REQUESTED_BY)
    except ValueError as error:
        return bad_request(str(error))
    except ServingChangeRefused as refusal:
        return JSONResponse({"text": str(refusal)}, status_code=409)
    text = say("web.admin.promoted_by_hand", version=change.version, previous=change.previous_version or "–")
    return JSONResponse({"text": text, "kind": change.kind.value, "version": change.version})


@signed_in
async def events(request: Request, web: WebContext) -> Response:
    """The live run and the admins' notes, as server-sent events."""
    return StreamingResponse(
        web.live.stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@signed_in
async def runs(request: Request, web: WebContext) -> Response:
    """The recent runs with their epochs, and each one's confusion matrix when it stored a model."""

    def load() -> list[dict[str, Any]]:
        with web.services.sessions() as session:
            recent = repository.recent_runs(session, limit=RUNS_SHOWN)
        return [run_json(run, confusion_of(web, run.model_version)) for run in recent]

    return JSONResponse(finite({"runs": await asyncio.to_thread(load)}))


@signed_in
async def models(request: Request, web: WebContext) -> Response:
    """The serving version, the one to roll back to, every stored version, and the changes by hand."""

    def load() -> dict[str, Any]:
        registry = web.services.registry
        versions = []
        for version in reversed(registry.versions()):
            try:
                metadata = registry.metadata(version)
            except RegistryError:
                continue
            versions.append(
                {
                    "version": version,
                    "architecture": metadata.get("architecture"),
                    "created_at": metadata.get("created_at"),
                    "test_accuracy": metadata.get("metrics", {}).get("test_accuracy"),
                }
            )
        with web.services.sessions() as session:
            changes = repository.model_changes(session)
        return {
            "versions": versions,
            "changes": [
                say(
                    "web.admin.change_line",
                    when=change.created_at.strftime("%Y-%m-%d %H:%M"),
                    kind=change.kind.value.replace("_", " "),
                    version=change.version,
                    previous=change.previous_version or "–",
                    who=change.requested_by,
                )
                for change in changes
            ],
        }

    state = await serving_state(web.services)
    loaded = await asyncio.to_thread(load)
    if state.broken is not None:
        serving = say("web.admin.serving_broken", error=state.broken)
    elif state.current is None:
        serving = say("web.admin.serving_none")
    else:
        serving = say("web.admin.serving", version=state.current)
    return JSONResponse(
        finite({"current": state.current, "previous": state.previous, "serving": serving, **loaded})
    )


@signed_in
async def usage(request: Request, web: WebContext) -> Response:
    """Answers and users' verdicts per day, the totals, and the users' confusion matrix."""

    def load() -> dict[str, Any]:
        with web.services.sessions() as session:
            days = repository.daily_usage(session, days=USAGE_DAYS)
            statistics = repository.statistics(session, recent_runs_limit=0)
        return {
            "days": [
                {
                    "day": day.day.isoformat(),
                    "predictions": day.predictions,
                    "verdicts": day.verdicts,
                    "accuracy": day.accuracy,
                }
                for day in days
            ],
            "summary": usage_lines(statistics),
            "confusion": statistics.confusion,
        }

    return JSONResponse(finite(await asyncio.to_thread(load)))


def run_json(run: RunSummary, confusion: list[list[int]] | None) -> dict[str, Any]:
    """A past run for the history table and its details."""
    return {
        "id": run.id,
        "trigger": run.trigger.value,
        "architecture": run.architecture,
        "status": run.status.value,
        "started_at": (run.started_at or run.created_at).strftime("%Y-%m-%d %H:%M"),
        "test_accuracy": run.test_accuracy,
        "promoted": run.promoted,
        "promotion_reason": run.promotion_reason,
        "model_version": run.model_version,
        "error": run.error,
        "epochs": [
            {
                "epoch": epoch.epoch,
                "loss": epoch.loss,
                "accuracy": epoch.accuracy,
                "val_loss": epoch.val_loss,
                "val_accuracy": epoch.val_accuracy,
                "learning_rate": epoch.learning_rate,
            }
            for epoch in run.epochs
        ],
        "confusion": confusion,
    }


def confusion_of(web: WebContext, version: str | None) -> list[list[int]] | None:
    """The MNIST test confusion matrix a stored version recorded, or None."""
    if version is None:
        return None
    try:
        confusion = web.services.registry.metadata(version).get("metrics", {}).get("confusion")
    except RegistryError:
        return None  # the version was deleted, or never stored (a cancelled run)
    return confusion if isinstance(confusion, list) else None
