"""`python -m bot.worker`: take training runs from the queue until SIGINT or SIGTERM."""

from __future__ import annotations

import os
import socket
import sys

from redis import Redis
from rq import Worker

from bot.core.queued_training import TRAINING_QUEUE
from bot.logs import configure_logging
from bot.settings import SettingsError, load_settings


def main() -> int:
    """Work the training queue; RQ stops it cleanly on SIGTERM (the run in progress is interrupted)."""
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"mnist-digit-bot worker: cannot start:\n{error}", file=sys.stderr)
        return 2
    if not settings.redis_url:
        print(
            "mnist-digit-bot worker: cannot start: REDIS_URL is not set (the queue to take runs from)",
            file=sys.stderr,
        )
        return 2
    configure_logging(settings)
    worker = Worker(
        [TRAINING_QUEUE],
        connection=Redis.from_url(settings.redis_url),
        # The process id too: a worker restarted in the same container after a hard kill is
        # another worker, and RQ refuses a name whose old registration has not yet expired.
        name=f"digitbot-{socket.gethostname()}-{os.getpid()}",
    )
    worker.work(logging_level=settings.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
