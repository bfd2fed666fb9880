"""Reading a user's picture and recording it, and recording the user's verdict.

These functions are synchronous and CPU- or disk-bound: the chat layer runs them in worker
threads (`asyncio.to_thread`) so the event loop keeps answering.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from bot.core import replies
from bot.core.replies import Reply
from db import repository
from db.ids import stored_id
from db.models import Prediction
from mnist_engine.imaging import ImageError
from mnist_engine.recognize import recognize
from mnist_engine.serving import CurrentModel

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
        self, model: CurrentModel, sessions: sessionmaker[Session], id_secret: str | None = None
    ) -> None:
        self.model = model
        self.sessions = sessions
        self.id_secret = id_secret

    def read(self, picture: Picture) -> Reply:
        """Answer a picture; raises NoModelError while no model is serving."""
        classifier = self.model.get()
        started = time.perf_counter()
        try:
            # One loaded classifier for the whole picture: a reload mid-picture cannot mix models.
            recognition = recognize(picture.data, classifier)
        except ImageError as error:
            return Reply(replies.image_error_text(str(error)))
        latency_ms = (time.perf_counter() - started) * 1000
        if not recognition.digits:
            return Reply(replies.NO_DIGIT_TEXT)
        with self.sessions.begin() as session:
            prediction_id = repository.record_prediction(
                session,
                chat_id=stored_id(picture.chat_id, self.id_secret),
                user_id=stored_id(picture.user_id, self.id_secret),
                message_id=picture.message_id,
                model_version=classifier.version or "unknown",
                digits=recognition.text,
                confidences=[digit.confidence for digit in recognition.digits],
                latency_ms=latency_ms,
                source=picture.source,
                samples=recognition.samples,
            )
        return replies.reading_reply(recognition, prediction_id)

    def digits_read(self, prediction_id: int) -> str | None:
        """The digits an answer read, or None if the answer is gone (retention) or unknown."""
        with self.sessions() as session:
            prediction = session.get(Prediction, prediction_id)
            return None if prediction is None else prediction.digits

    def record_verdict(self, verdict: Verdict) -> Reply:
        """Store a verdict and return the answer's final text (without buttons)."""
        with self.sessions.begin() as session:
            prediction = session.get(Prediction, verdict.prediction_id)
            if prediction is None:
                return Reply(replies.STALE_BUTTON_TEXT)
            if prediction.user_id != stored_id(verdict.user_id, self.id_secret):
                return Reply("Only the person who sent the picture can judge its answer.")
            repository.record_feedback(
                session,
                verdict.prediction_id,
                user_id=prediction.user_id,
                correct=verdict.correct,
                corrected_digits=verdict.corrected_digits,
            )
            reading = f"I read {prediction.digits}."
        return Reply(replies.verdict_recorded_text(reading, verdict.correct, verdict.corrected_digits))
