"""Reading a user's picture and recording it, and recording the user's verdict.

Image work runs in worker processes (bot.core.workers) and database work in threads, so the
event loop keeps answering while pictures are read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from bot.core import replies
from bot.core.replies import Reply
from bot.core.workers import read_in_worker, start_pool, warm_up_worker
from db import repository
from db.ids import stored_id
from db.models import Prediction
from mnist_engine.imaging import ImageError
from mnist_engine.recognize import Recognition

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Picture:
    """A picture a user sent, with where it came from."""

    data: bytes
    chat_id: int
    user_id: int
    message_id: int
    source: str  # "photo" (compressed by Telegram) or "file" (sent as a document)


@dataclass(frozen=True)
class Verdict:
    """A user's judgement of an answer: right, or the right digits."""

    prediction_id: int
    user_id: int
    correct: bool
    corrected_digits: str | None = None


class DigitReader:
    """Reads digits with the serving model and stores each answer with its 28×28 samples."""

    def __init__(
        self, model_dir: Path, sessions: sessionmaker[Session], id_secret: str | None = None, workers: int = 2
    ) -> None:
        self.model_dir = model_dir
        self.sessions = sessions
        self.id_secret = id_secret
        self.workers = workers
        self._pool: ProcessPoolExecutor = start_pool(model_dir, workers)

    async def warm_up(self) -> str | None:
        """Start the workers and load the model in each; raises NoModelError if none is serving."""
        loop = asyncio.get_running_loop()
        versions = await asyncio.gather(
            *(loop.run_in_executor(self._pool, warm_up_worker) for _ in range(self.workers))
        )
        return versions[0]

    async def read(self, picture: Picture) -> Reply:
        """Answer a picture; raises NoModelError while no model is serving."""
        started = time.perf_counter()
        try:
            recognition, version = await self._recognize(picture.data)
        except ImageError as error:
            return Reply(replies.image_error_text(str(error)))
        latency_ms = (time.perf_counter() - started) * 1000
        if not recognition.digits:
            return Reply(replies.NO_DIGIT_TEXT)
        prediction_id = await asyncio.to_thread(self._record, picture, recognition, version, latency_ms)
        return replies.reading_reply(recognition, prediction_id)

    def close(self) -> None:
        """Stop the worker processes."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    async def _recognize(self, image_bytes: bytes) -> tuple[Recognition, str | None]:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, read_in_worker, image_bytes)
        except BrokenProcessPool:
            # A worker died (out of memory on a hostile image, say): start fresh ones and try once more.
            logger.error("A reading worker died; restarting the pool")
            self._pool = start_pool(self.model_dir, self.workers)
            return await loop.run_in_executor(self._pool, read_in_worker, image_bytes)

    def _record(
        self, picture: Picture, recognition: Recognition, version: str | None, latency_ms: float
    ) -> int:
        with self.sessions.begin() as session:
            return repository.record_prediction(
                session,
                chat_id=stored_id(picture.chat_id, self.id_secret),
                user_id=stored_id(picture.user_id, self.id_secret),
                message_id=picture.message_id,
                model_version=version or "unknown",
                digits=recognition.text,
                confidences=[digit.confidence for digit in recognition.digits],
                latency_ms=latency_ms,
                source=picture.source,
                samples=recognition.samples,
            )

    def digits_read(self, prediction_id: int) -> str | None:
        """The digits an answer read, or None if the answer is gone (retention) or unknown."""
        with self.sessions() as session:
            prediction = session.get(Prediction, prediction_id)
            return None if prediction is None else prediction.digits

    def record_verdict(self, verdict: Verdict) -> tuple[Reply, bool]:
        """Store a verdict; return the answer's final text (without buttons) and whether it was stored."""
        with self.sessions.begin() as session:
            prediction = session.get(Prediction, verdict.prediction_id)
            if prediction is None:
                return Reply(replies.STALE_BUTTON_TEXT), False
            if prediction.user_id != stored_id(verdict.user_id, self.id_secret):
                return Reply("Only the person who sent the picture can judge its answer."), False
            repository.record_feedback(
                session,
                verdict.prediction_id,
                user_id=prediction.user_id,
                correct=verdict.correct,
                corrected_digits=verdict.corrected_digits,
            )
            reading = f"I read {prediction.digits}."
        return Reply(replies.verdict_recorded_text(reading, verdict.correct, verdict.corrected_digits)), True
