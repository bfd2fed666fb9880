"""The page at `/`: a photo or a drawing in, the answer with its boxes out, and the person's verdict."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.core.reading import DigitReader, Picture, Refusal, Verdict, VerdictRefused
from bot.core.replies import parse_correction
from bot.core.texts import ENGLISH, say
from bot.web.answers import answer_json
from bot.web.context import WebContext, client_address, web_of
from bot.web.uploads import BodyTooLarge, declared_length, read_body_within
from bot.web.visitors import Visitor
from db.models import Channel, PredictionSource
from mnist_engine.photo import MAX_DIGITS

SOURCE_HEADER = "x-picture-source"
MAX_VERDICT_BYTES = 1024


async def home(request: Request) -> Response:
    """The page: send a photo or draw, then judge the answer."""
    web = web_of(request)
    visitor = web.visitors.known_or_new(request)
    response = web.page(
        request,
        "home.html",
        csrf_token=web.visitors.csrf_token(visitor),
        max_file_bytes=web.services.settings.max_file_bytes,
        texts=page_texts(web),
    )
    web.visitors.remember(response, visitor)
    return response


def page_texts(web: WebContext) -> dict[str, str]:
    """The words the page's script shows, filled in here (the script formats nothing itself)."""
    texts = {key: value for key, value in ENGLISH.items() if key.startswith("web.") and "{" not in value}
    limit_mb = web.services.settings.max_file_bytes / 1e6
    texts.update(
        {
            "web.file_over_limit": say("web.file_over_limit", limit_mb=limit_mb),
            "web.not_digits": say("web.not_digits", limit=MAX_DIGITS),
            "button.erase": say("button.erase"),
            "button.save": say("button.save"),
        }
    )
    return texts


async def read_picture(request: Request) -> Response:
    """Read the picture in the request's body (raw bytes; X-Picture-Source: file, photo or drawing)."""
    web = web_of(request)
    visitor = web.visitors.known(request)
    if visitor is not None and not web.visitors.csrf_ok(request, visitor):
        return JSONResponse({"text": say("web.session_expired")}, status_code=403)
    # A request without the page's cookie (a script, say) is limited by its address instead.
    rate_key = visitor.id if visitor is not None else "ip:" + client_address(request)
    visitor = visitor or web.visitors.known_or_new(request)
    reader = web.services.reader
    picture = await receive_picture(
        request, reader, Channel.WEB, rate_key, sender=visitor.id, source=picture_source(request)
    )
    if isinstance(picture, Response):
        return picture
    answer = await reader.read(picture)
    response = JSONResponse(answer_json(answer))
    web.visitors.remember(response, visitor)
    return response


async def receive_picture(
    request: Request,
    reader: DigitReader,
    channel: Channel,
    rate_key: int | str,
    *,
    sender: int | str,
    source: PredictionSource,
) -> Picture | Response:
    """The picture in the request's body, admitted by the rate limit and the size limit, or the refusal.

    A picture that comes over HTTP has no message: the prediction's id is its answer's handle.
    """
    refusal = reader.admit(channel, rate_key, declared_length(request))
    if refusal is not None:
        return refused(refusal)
    try:
        data = await read_body_within(request, reader.max_file_bytes)
    except BodyTooLarge:
        limit_mb = reader.max_file_bytes / 1e6
        return JSONResponse({"text": say("web.file_over_limit", limit_mb=limit_mb)}, status_code=413)
    return Picture(data=data, channel=channel, chat_id=sender, user_id=sender, message_id=0, source=source)


def refused(refusal: Refusal) -> JSONResponse:
    """A picture refused before reading: too large (413) or too fast (429)."""
    text = refusal.reply.text if refusal.reply is not None else say("web.rate_limited_again")
    if refusal.too_large:
        return JSONResponse({"text": text}, status_code=413)
    return JSONResponse({"text": text}, status_code=429, headers={"Retry-After": "60"})


def picture_source(request: Request) -> PredictionSource:
    """How the picture was made, as the page says it: a file (the default), a camera photo, a drawing."""
    try:
        return PredictionSource(request.headers.get(SOURCE_HEADER, PredictionSource.FILE.value))
    except ValueError:
        return PredictionSource.FILE


async def judge_answer(request: Request) -> Response:
    """Store the visitor's verdict: `{"prediction_id": 42, "right": true}` or `{..., "digits": "2026"}`."""
    web = web_of(request)
    visitor = web.visitors.known(request)
    if visitor is None or not web.visitors.csrf_ok(request, visitor):
        return JSONResponse({"text": say("web.session_expired")}, status_code=403)
    try:
        verdict = parse_verdict(await read_body_within(request, MAX_VERDICT_BYTES), visitor)
    except BodyTooLarge:
        return bad_request("body too large")
    except ValueError as error:
        return bad_request(str(error))
    try:
        text = await web.services.reader.judge(verdict)
    except VerdictRefused as refusal:
        return JSONResponse({"text": str(refusal)}, status_code=403)
    return JSONResponse({"text": text})


def parse_verdict(body: bytes, visitor: Visitor) -> Verdict:
    """The verdict in a JSON body; ValueError says what is wrong with it."""
    try:
        payload: Any = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise ValueError("expected a JSON object")
    prediction_id = payload.get("prediction_id")
    if not isinstance(prediction_id, int) or isinstance(prediction_id, bool) or prediction_id < 1:
        raise ValueError("prediction_id must be a positive integer")
    if payload.get("right") is True and "digits" not in payload:
        return Verdict(Channel.WEB, prediction_id, visitor.id, correct=True)
    typed = payload.get("digits")
    digits = parse_correction(typed) if isinstance(typed, str) else None
    if digits is None:
        raise ValueError(say("web.not_digits", limit=MAX_DIGITS))
    return Verdict(Channel.WEB, prediction_id, visitor.id, correct=False, corrected_digits=digits)


def bad_request(detail: str) -> JSONResponse:
    """A 400 that says what was wrong."""
    return JSONResponse({"text": say("web.bad_request", detail=detail)}, status_code=400)
