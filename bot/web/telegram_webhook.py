"""Telegram's webhook (TELEGRAM_WEBHOOK_URL): updates POSTed here instead of fetched by long polling.

Every request must carry the secret given to setWebhook (compared in constant time); the update
is handed to the Telegram front end's inbox, which answers once it is safely queued.
"""

from __future__ import annotations

import hmac
import json
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.web.context import web_of
from bot.web.uploads import BodyTooLarge, read_body_within

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1024 * 1024  # an update is JSON describing a message; files stay on Telegram's side


async def receive_update(request: Request) -> Response:
    """Take one update from Telegram."""
    services = web_of(request).services
    inbox, secret = services.telegram_inbox, services.settings.telegram_webhook_secret
    if inbox is None or secret is None:
        return JSONResponse({"error": "no webhook here"}, status_code=404)
    sent = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(sent.encode(), secret.encode()):
        logger.warning("A webhook request without the right secret token, from %s", request.client)
        return JSONResponse({"error": "wrong secret token"}, status_code=403)
    try:
        update = json.loads(await read_body_within(request, MAX_UPDATE_BYTES))
    except BodyTooLarge:
        return JSONResponse({"error": "update too large"}, status_code=413)
    except ValueError:
        return JSONResponse({"error": "not JSON"}, status_code=400)
    if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
        return JSONResponse({"error": "not a Telegram update"}, status_code=400)
    await inbox.accept(update)
    return JSONResponse({})
