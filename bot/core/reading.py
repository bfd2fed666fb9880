"""Answering a picture and recording it; recording a person's verdict on the answer.

Every front end goes through here: it hands over the picture's bytes (and who sent it, from
where), and gets back what to say. Image work runs in the reading pool's processes, database work
in threads, so the event loop keeps answering while pictures are read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from bot.core import replies
from bot.core.progress import ProgressHub, RunProgress
from bot.core.rate_limit import PictureRateLimit
from bot.core.reading_pool import ReaderCrashed, ReadingPool
from bot.core.replies import Reply
from bot.core.texts import format_duration, say
from db import repository
from db.ids import stored_id
from db.models import Channel, Prediction, PredictionSource, utc_now
from db.views import PendingCorrectionView
from mnist_engine.photo import ImageError, Recognition
from mnist_engine.registry import RegistryError
from mnist_engine.serving import NoModelError

logger = logging.getLogger(__name__)

# How long a person has to type the right number after tapping ❌.
CORRECTION_WINDOW = timedelta(minutes=15)


@dataclass(frozen=True)
class Picture:
    """A picture a person sent, with where it came from."""

    data: bytes
    channel: Channel
    chat_id: int | str
    user_id: int | str
    message_id: int
    source: PredictionSource


@dataclass(frozen=True)
class Answer:
    """What to say about a picture; with what was read and its record when something was."""

    reply: Reply
    recognition: Recognition | None = None
    prediction_id: int | None = None


@dataclass(frozen=True)
class Refusal:
    """A picture refused before it was read; `reply` is None when nothing should be said."""

    reply: Reply | None
    too_large: bool = False


@dataclass(frozen=True)
class Verdict:
    """A person's judgement of an answer: right, or the right digits."""

    channel: Channel
    prediction_id: int
    user_id: int | str
    correct: bool
    corrected_digits: str | None = None


class VerdictRefused(Exception):
    """A verdict that cannot be taken (the answer is gone, or is someone else's): say the message."""


class DigitReader:
    """Reads digits with the serving model and stores each answer with its 28×28 samples."""

    def __init__(
        self,
        pool: ReadingPool,
        sessions: sessionmaker[Session],
        rate_limit: PictureRateLimit,
        *,
        max_file_bytes: int,
        id_secret: str | None,
        running_run: Callable[[], RunProgress | None],
        admins: ProgressHub,
    ) -> None:
        self.pool = pool
        self.sessions = sessions
        self.rate_limit = rate_limit
        self.max_file_bytes = max_file_bytes
        self.id_secret = id_secret
        self._running_run = running_run
        self._admins = admins
        self._broken_model_told: str | None = None

    def admit(self, channel: Channel, user_id: int | str, size_bytes: int | None) -> Refusal | None:
        """Check a picture before it is downloaded: the person's rate and the file's size."""
        refused = self.rate_limit.admit(f"{channel.value}:{user_id}")
        if refused is not None:
            text = replies.rate_limited_text(self.rate_limit.per_minute, refused.wait_seconds)
            return Refusal(Reply(text) if refused.tell else None)
        if size_bytes is not None and size_bytes > self.max_file_bytes:
            return Refusal(
                Reply(replies.file_too_large_text(size_bytes, self.max_file_bytes)), too_large=True
            )
        return None

    async def read(self, picture: Picture) -> Answer:
        """Read a picture and record the answer; every outcome is something to say."""
        started = time.perf_counter()
        try:
            recognition, version = await self.pool.read(picture.data)
        except ImageError as error:
            return Answer(Reply(replies.image_error_text(error)))
        except NoModelError:
            return Answer(Reply(self._no_model_text()))
        except RegistryError as error:
            await self._model_broken(error)
            return Answer(Reply(say("model_broken")))
        except ReaderCrashed:
            return Answer(Reply(say("reader_crashed")))
        latency_ms = (time.perf_counter() - started) * 1000
        if not recognition.digits:
            return Answer(Reply(say("no_digit")))
        prediction_id = await asyncio.to_thread(self._record, picture, recognition, version, latency_ms)
        return Answer(replies.reading_reply(recognition, prediction_id), recognition, prediction_id)

    async def judge(self, verdict: Verdict) -> str:
        """Store a verdict and return the answer's final text (without buttons).

        Raises VerdictRefused when the answer is gone (retention) or was given to someone else.
        """
        return await asyncio.to_thread(self._record_verdict, verdict)

    async def digits_to_correct(self, channel: Channel, prediction_id: int, user_id: int | str) -> str:
        """The digits an answer read, for its sender to correct; raises VerdictRefused otherwise."""

        def load() -> str:
            with self.sessions() as session:
                return self._own_prediction(session, channel, prediction_id, user_id).digits

        return await asyncio.to_thread(load)

    async def begin_correction(
        self,
        channel: Channel,
        chat_id: int | str,
        user_id: int | str,
        prediction_id: int,
        answer_message_id: int,
    ) -> None:
        """Take this person's next message in this chat, for a while, as the right number."""

        def store() -> None:
            with self.sessions.begin() as session:
                repository.begin_correction(
                    session,
                    channel=channel,
                    chat_id=self._id(chat_id),
                    user_id=self._id(user_id),
                    prediction_id=prediction_id,
                    answer_message_id=answer_message_id,
                    expires_at=utc_now() + CORRECTION_WINDOW,
                )

        await asyncio.to_thread(store)

    async def pending_correction(
        self, channel: Channel, chat_id: int | str, user_id: int | str
    ) -> PendingCorrectionView | None:
        """The answer this person is correcting in this chat, if they still are."""

        def load() -> PendingCorrectionView | None:
            with self.sessions() as session:
                return repository.pending_correction(
                    session, channel=channel, chat_id=self._id(chat_id), user_id=self._id(user_id)
                )

        return await asyncio.to_thread(load)

    async def end_correction(self, channel: Channel, chat_id: int | str, user_id: int | str) -> None:
        """Stop waiting for this person's typed number in this chat."""

        def forget() -> None:
            with self.sessions.begin() as session:
                repository.end_correction(
                    session, channel=channel, chat_id=self._id(chat_id), user_id=self._id(user_id)
                )

        await asyncio.to_thread(forget)

    def _id(self, raw_id: int | str) -> str:
        return stored_id(raw_id, self.id_secret)

    def _no_model_text(self) -> str:
        run = self._running_run()
        if run is None:
            return say("no_model")
        if run.eta_seconds:
            detail = say("warming_up_detail_eta", progress=run.progress, eta=format_duration(run.eta_seconds))
        else:
            detail = say("warming_up_detail", progress=run.progress)
        return say("warming_up", detail=detail)

    async def _model_broken(self, error: RegistryError) -> None:
        logger.error("The serving model cannot be loaded: %s", error)
        if self._broken_model_told != str(error):  # tell the admins once per breakage, not per picture
            self._broken_model_told = str(error)
            await self._admins.notify(say("admin.model_broken", error=error))

    def _record(
        self, picture: Picture, recognition: Recognition, version: str | None, latency_ms: float
    ) -> int:
        with self.sessions.begin() as session:
            return repository.record_prediction(
                session,
                channel=picture.channel,
                chat_id=self._id(picture.chat_id),
                user_id=self._id(picture.user_id),
                message_id=picture.message_id,
                model_version=version or "unknown",
                digits=recognition.text,
                confidences=[digit.confidence for digit in recognition.digits],
                latency_ms=latency_ms,
                source=picture.source,
                samples=recognition.samples,
            )

    def _own_prediction(
        self, session: Session, channel: Channel, prediction_id: int, user_id: int | str
    ) -> Prediction:
        prediction = session.get(Prediction, prediction_id)
        if prediction is None:
            raise VerdictRefused(say("verdict.stale"))
        if prediction.channel != channel or prediction.user_id != self._id(user_id):
            raise VerdictRefused(say("verdict.not_yours"))
        return prediction

    def _record_verdict(self, verdict: Verdict) -> str:
        with self.sessions.begin() as session:
            prediction = self._own_prediction(
                session, verdict.channel, verdict.prediction_id, verdict.user_id
            )
            repository.record_feedback(
                session,
                verdict.prediction_id,
                user_id=prediction.user_id,
                correct=verdict.correct,
                corrected_digits=verdict.corrected_digits,
            )
            return replies.verdict_recorded_text(prediction.digits, verdict.correct, verdict.corrected_digits)
