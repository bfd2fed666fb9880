# MNIST Digit Bot: the service (web app, Telegram, Discord) with its engine and database layer.
# Build: docker build -t mnist-digit-bot .
# Run:   docker run -p 8000:8000 -e TELEGRAM_BOT_TOKEN=... -e ADMIN_USER_IDS=... -v bot-data:/app/data -v bot-models:/app/models mnist-digit-bot
# A training worker (compose.yaml) runs the same image as `python -m bot.worker`; a GPU worker's
# image is built with `--build-arg EXTRAS=postgres,gpu` (CUDA's libraries for TensorFlow).
FROM python:3.11-slim-bookworm

ARG EXTRAS=postgres

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    MNIST_DATA_DIR=/app/data \
    MNIST_MODEL_DIR=/app/models \
    WEB_HOST=0.0.0.0 \
    WEB_PORT=8000

WORKDIR /app

# Dependencies first, so code changes do not reinstall TensorFlow.
COPY pyproject.toml README.md ./
COPY mnist_engine/__init__.py mnist_engine/__init__.py
COPY db/__init__.py db/__init__.py
COPY bot/__init__.py bot/__init__.py
# The project itself is what is installed here; its dependencies are pinned in pyproject.toml.
# hadolint ignore=DL3013
RUN pip install ".[${EXTRAS}]"

COPY mnist_engine mnist_engine
COPY db db
COPY bot bot
# hadolint ignore=DL3013
RUN pip install --no-deps ".[${EXTRAS}]" \
    && useradd --create-home --uid 10001 digitbot \
    && mkdir -p /app/data /app/models \
    && chown digitbot:digitbot /app/data /app/models

USER 10001
VOLUME ["/app/data", "/app/models"]
EXPOSE 8000

# The web app answers GET /healthz as soon as the service runs (before a first model is trained).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['WEB_PORT'], timeout=4)"]

CMD ["python", "-m", "bot"]
