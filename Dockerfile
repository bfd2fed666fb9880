# MNIST Digit Bot: the Telegram service with its engine and database layer.
# Build: docker build -t mnist-digit-bot .
# Run:   docker run -e TELEGRAM_BOT_TOKEN=... -e ADMIN_USER_IDS=... -v bot-data:/app/data -v bot-models:/app/models mnist-digit-bot
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    MNIST_DATA_DIR=/app/data \
    MNIST_MODEL_DIR=/app/models

WORKDIR /app

# Dependencies first, so code changes do not reinstall TensorFlow.
COPY pyproject.toml README.md ./
COPY mnist_engine/__init__.py mnist_engine/__init__.py
COPY db/__init__.py db/__init__.py
COPY bot/__init__.py bot/__init__.py
# The project itself is what is installed here; its dependencies are pinned in pyproject.toml.
# hadolint ignore=DL3013
RUN pip install '.[postgres]'

COPY mnist_engine mnist_engine
COPY db db
COPY bot bot
# hadolint ignore=DL3013
RUN pip install --no-deps '.[postgres]' \
    && useradd --create-home --uid 10001 digitbot \
    && mkdir -p /app/data /app/models \
    && chown digitbot:digitbot /app/data /app/models

USER 10001
VOLUME ["/app/data", "/app/models"]

CMD ["python", "-m", "bot"]
