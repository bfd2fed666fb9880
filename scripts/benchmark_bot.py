"""Benchmark the bot through the local Bot API emulator (tests/emulator), as users meet it.

Measures, in one run and on the same photos:
  1. one user at a time: photo sent → reply received, p50/p99;
  2. a burst of 200 photos from 20 users at once while a training run is going: drain time,
     photos per second, per-photo latency p50/p99, and whether every chat got its answers in order;
  3. the same burst against a plain python-telegram-bot bot with the library's defaults (updates
     one at a time, the largest photo size, inference inline on the event loop with model.predict).

    python scripts/benchmark_bot.py                   # uses the serving model in MNIST_MODEL_DIR
    python scripts/benchmark_bot.py --single 100 --users 20 --photos-per-user 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The emulator and the photo helpers are the tests' own code, not part of the installed project.
sys.path.insert(0, str(PROJECT_ROOT / "tests"))

import numpy as np  # noqa: E402
from benchmark_support import (  # noqa: E402
    background_training,
    benchmark_photos,
    copy_serving_model,
    serving_version,
)
from bot_support import ADMIN_ID, TOKEN, USER_ID, bot_environment, replies_to  # noqa: E402
from emulator import BotApiEmulator  # noqa: E402
from telegram import Update  # noqa: E402
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters  # noqa: E402

from mnist_engine.settings import get_settings  # noqa: E402


def reply_times(emulator: BotApiEmulator, chat_id: int) -> dict[int, float]:
    """For each user message answered in a chat, when the bot's reply reached the emulator."""
    calls = [
        call
        for call in emulator.calls
        if call.method == "sendMessage"
        and call.status == 200
        and str(call.params.get("chat_id")) == str(chat_id)
    ]
    # The k-th successful sendMessage of a chat created its k-th text message.
    texts = [message for message in emulator.messages(chat_id) if "text" in message]
    return {
        message["reply_to_message"]["message_id"]: call.at
        for call, message in zip(calls, texts, strict=False)
        if "reply_to_message" in message
    }


def percentiles(values: list[float]) -> tuple[float, float]:
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


async def one_at_a_time(emulator: BotApiEmulator, photos: list[bytes], count: int) -> list[float]:
    """Send photos one after another, each after the previous reply; return latencies in ms."""
    latencies = []
    for index in range(count):
        before = len(replies_to(emulator, USER_ID))
        started = time.perf_counter()
        emulator.send_photo(USER_ID, photos[index % len(photos)])
        await emulator.wait_for(lambda before=before: len(replies_to(emulator, USER_ID)) > before, timeout=30)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


async def burst(emulator: BotApiEmulator, photos: list[bytes], users: int, per_user: int) -> dict[str, float]:
    """Send per_user photos from each of `users` users at once; wait for every answer."""
    chats = [USER_ID + 100 + number for number in range(users)]
    sent_at: dict[tuple[int, int], float] = {}
    order: dict[int, list[int]] = {chat: [] for chat in chats}
    started = time.perf_counter()
    for round_number in range(per_user):
        for chat in chats:
            message = emulator.send_photo(chat, photos[(round_number + chat) % len(photos)])
            sent_at[(chat, message["message_id"])] = time.time()  # the emulator stamps calls with time.time()
            order[chat].append(message["message_id"])
    for chat in chats:
        await emulator.wait_for(lambda chat=chat: len(replies_to(emulator, chat)) >= per_user, timeout=300)
    drain = time.perf_counter() - started
    replied = {chat: reply_times(emulator, chat) for chat in chats}
    latencies = [
        (replied[chat][message_id] - at) * 1000
        for (chat, message_id), at in sent_at.items()
        if message_id in replied[chat]
    ]
    in_order = all(
        [reply["reply_to_message"]["message_id"] for reply in replies_to(emulator, chat)] == order[chat]
        for chat in chats
    )
    p50, p99 = percentiles(latencies) if latencies else (float("nan"), float("nan"))
    total = users * per_user
    return {
        "drain_s": drain,
        "photos_per_s": total / drain,
        "p50_ms": p50,
        "p99_ms": p99,
        "in_order": in_order,
    }


def build_plain_bot(emulator: BotApiEmulator, model_path: Path) -> Application:
    """A bot as the library's defaults make it: sequential updates, largest photo, inline predict."""
    import keras

    from mnist_engine.photo import recognize
    from mnist_engine.serving.model_input import to_model_input

    model = keras.models.load_model(model_path / "model.keras")

    class InlinePredict:
        def predict_proba(self, images: np.ndarray) -> np.ndarray:
            return model.predict(to_model_input(images), verbose=0)

    async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        largest = update.effective_message.photo[-1]
        data = await (await context.bot.get_file(largest.file_id)).download_as_bytearray()
        recognition = recognize(bytes(data), InlinePredict())
        await update.effective_message.reply_text(f"I read: {recognition.text}", do_quote=True)

    application = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(emulator.base_url)
        .base_file_url(emulator.base_file_url)
        .build()
    )
    application.add_handler(MessageHandler(filters.PHOTO, on_photo))
    return application


async def run_plain_bot_burst(
    emulator: BotApiEmulator, model_path: Path, photos: list[bytes], users: int, per_user: int
) -> dict[str, float]:
    application = build_plain_bot(emulator, model_path)
    async with application:
        await application.updater.start_polling(poll_interval=0.0, timeout=1, drop_pending_updates=True)
        await application.start()
        try:
            return await burst(emulator, photos, users, per_user)
        finally:
            await application.updater.stop()
            await application.stop()


def start_bot_process(environment: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Run `python -m bot` as the service runs in production: its own process."""
    log = log_path.open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "bot"],
        env={**os.environ, **environment},
        cwd=PROJECT_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def admin_texts(emulator: BotApiEmulator) -> str:
    return "\n".join(
        message.get("text", "") + message.get("caption", "") for message in emulator.messages(ADMIN_ID)
    )


async def main_async(arguments: argparse.Namespace) -> None:
    settings = get_settings()
    version = serving_version(settings.model_dir)
    photos = benchmark_photos(settings.data_dir)

    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        model_dir = copy_serving_model(settings.model_dir, version, scratch)
        with BotApiEmulator(token=TOKEN) as emulator:
            for photo in photos:  # Telegram's side: make the photo sizes once, before any timing
                emulator.send_photo(USER_ID - 1, photo)
            environment = bot_environment(
                emulator,
                scratch,
                model_dir.parent,
                settings.data_dir.resolve(),
                PHOTOS_PER_MINUTE="1000",
                TRAINING_TRAIN_LIMIT="60000",
                # The default split, whose photo material is made once and cached: no minutes making it here.
                TRAINING_VALIDATION_SIZE="5000",
                TRAINING_TEST_LIMIT="10000",
                LOG_LEVEL="WARNING",
            )
            bot = start_bot_process(environment, scratch / "bot.log")
            try:
                await emulator.wait_for(
                    lambda: emulator.is_polling and len(replies_to(emulator, USER_ID - 1)) == 20, timeout=60
                )
                single = await one_at_a_time(emulator, photos, arguments.single)
                emulator.send_text(ADMIN_ID, "/train dense 100")
                await emulator.wait_for(lambda: "Epoch 1/" in admin_texts(emulator), timeout=120)
                ours = await burst(emulator, photos, arguments.users, arguments.photos_per_user)
                training_still_running = "finished" not in admin_texts(emulator)
                emulator.send_text(ADMIN_ID, "/cancel")
                await emulator.wait_for(lambda: "cancelled" in admin_texts(emulator), timeout=120)
            finally:
                bot.send_signal(signal.SIGTERM)
                bot.wait(timeout=60)
        with BotApiEmulator(token=TOKEN) as emulator:
            for photo in photos:
                emulator.send_photo(USER_ID - 1, photo)
            trainer_process = background_training(settings.data_dir.resolve(), scratch / "plain-models")
            try:
                await asyncio.sleep(15)  # let it reach its first epoch, as in our bot's burst
                plain = await run_plain_bot_burst(
                    emulator, model_dir, photos, arguments.users, arguments.photos_per_user
                )
            finally:
                trainer_process.terminate()
                trainer_process.wait()

    single_p50, single_p99 = percentiles(single)
    total = arguments.users * arguments.photos_per_user
    print(f"\nMachine: {os.cpu_count()} CPU cores; model {version}; photos 1280×960 JPEG")
    print(f"One user at a time ({arguments.single} photos): p50 {single_p50:.1f} ms, p99 {single_p99:.1f} ms")
    print(
        f"\nBurst: {total} photos from {arguments.users} users at once, a training run going "
        f"(still running at the end: {training_still_running})"
    )
    print("| bot | drain | photos/s | latency p50 | latency p99 | in order per chat |")
    print("|---|---:|---:|---:|---:|---|")
    for name, row in (("this bot", ours), ("plain PTB defaults", plain)):
        print(
            f"| {name} | {row['drain_s']:.1f} s | {row['photos_per_s']:.1f} | {row['p50_ms']:.0f} ms "
            f"| {row['p99_ms']:.0f} ms | {'yes' if row['in_order'] else 'NO'} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--single", type=int, default=50, help="photos sent one at a time")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--photos-per-user", type=int, default=10)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
