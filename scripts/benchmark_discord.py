"""Benchmark the Discord front end through the local Discord emulator (tests/discord_emulator).

Measures, in one run and on the same pictures:
  1. one person at a time: picture attached in a DM → the bot's answer, p50/p99;
  2. a burst of 200 pictures from 20 people at once while a training run is going: drain time,
     pictures per second, per-picture latency p50/p99, and whether every channel got its answers
     in order;
  3. the same burst against a plain discord.py bot (each message handled as it comes, the picture
     read inline on the event loop with Keras' model.predict), with the same training load.

The service runs as `python -m bot` in its own process, as in production. Times are the emulator's
own: when a person's message was posted and when the bot's answer to it reached the emulator.

    python scripts/benchmark_discord.py                 # uses the serving model in MNIST_MODEL_DIR
    python scripts/benchmark_discord.py --single 100 --users 20 --pictures-per-user 10
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
from datetime import datetime
from pathlib import Path
from typing import Any

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
from discord_emulator import DiscordEmulator  # noqa: E402
from discord_support import DISCORD_ADMIN_ID, DISCORD_USER_ID, answers, discord_environment  # noqa: E402

from mnist_engine.settings import get_settings  # noqa: E402


def stamp(message: dict[str, Any]) -> float:
    """When the emulator created a message (its Discord timestamp), in seconds."""
    return datetime.fromisoformat(message["timestamp"]).timestamp()


def percentiles(values: list[float]) -> tuple[float, float]:
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def attach(picture: bytes, index: int) -> list[tuple[str, bytes, str]]:
    return [(f"digits-{index}.jpg", picture, "image/jpeg")]


async def one_at_a_time(emulator: DiscordEmulator, pictures: list[bytes], count: int) -> list[float]:
    """Send pictures one after another, each after the previous answer; latencies in ms."""
    channel = emulator.dm_channel_id(DISCORD_USER_ID)
    latencies = []
    for index in range(count):
        before = len(answers(emulator, channel))
        sent = emulator.send_message(
            DISCORD_USER_ID, attachments=attach(pictures[index % len(pictures)], index)
        )
        replies = await emulator.wait_for(
            lambda before=before: answers(emulator, channel)[before:], timeout=30
        )
        latencies.append((stamp(replies[0]) - stamp(sent)) * 1000)
    return latencies


async def burst(
    emulator: DiscordEmulator, pictures: list[bytes], users: int, per_user: int
) -> dict[str, float | bool]:
    """per_user pictures from each of `users` people at once; wait for every answer."""
    people = [DISCORD_USER_ID + 100 + number for number in range(users)]
    channels = {person: emulator.dm_channel_id(person) for person in people}
    sent: dict[str, float] = {}
    order: dict[int, list[str]] = {person: [] for person in people}
    for round_number in range(per_user):
        for person in people:
            message = emulator.send_message(
                person, attachments=attach(pictures[(round_number + person) % len(pictures)], round_number)
            )
            sent[message["id"]] = stamp(message)
            order[person].append(message["id"])
    for person in people:
        await emulator.wait_for(
            lambda person=person: len(answers(emulator, channels[person])) >= per_user, timeout=300
        )
    replies = [reply for person in people for reply in answers(emulator, channels[person])]
    latencies = [(stamp(reply) - sent[reply["referenced_message"]["id"]]) * 1000 for reply in replies]
    in_order = all(
        [reply["referenced_message"]["id"] for reply in answers(emulator, channels[person])] == order[person]
        for person in people
    )
    drain = max(stamp(reply) for reply in replies) - min(sent.values())
    p50, p99 = percentiles(latencies)
    return {
        "drain_s": drain,
        "pictures_per_s": len(replies) / drain,
        "p50_ms": p50,
        "p99_ms": p99,
        "in_order": in_order,
    }


async def plain_bot_burst(
    emulator: DiscordEmulator, model_path: Path, pictures: list[bytes], users: int, per_user: int
) -> dict[str, float | bool]:
    """The burst against discord.py with its defaults and the picture read inline with model.predict."""
    import discord
    import keras
    from discord_emulator.clients import connected

    from mnist_engine.photo import recognize
    from mnist_engine.serving.model_input import to_model_input

    model = keras.models.load_model(model_path / "model.keras")

    class InlinePredict:
        def predict_proba(self, images: np.ndarray) -> np.ndarray:
            return model.predict(to_model_input(images), verbose=0)

    client = discord.Client(intents=discord.Intents.default())

    @client.event
    async def on_message(message: discord.Message) -> None:
        if message.author.bot or not message.attachments:
            return
        data = await message.attachments[0].read()
        recognition = recognize(data, InlinePredict())
        await message.reply(f"I read: {recognition.text}", mention_author=False)

    async with connected(client, emulator):
        return await burst(emulator, pictures, users, per_user)


def start_service(environment: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Run `python -m bot` as the service runs in production: its own process."""
    inherited = {
        name: value for name, value in os.environ.items() if not name.startswith(("TELEGRAM_", "DISCORD_"))
    }
    with log_path.open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "bot"],
            env={**inherited, **environment, "PYTHONPATH": str(PROJECT_ROOT)},
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def admin_texts(emulator: DiscordEmulator) -> str:
    channel = emulator.dm_channel_id(DISCORD_ADMIN_ID)
    return "\n".join(
        message["content"] + "".join(embed.get("title", "") for embed in message["embeds"])
        for message in emulator.messages(channel)
    )


async def main_async(arguments: argparse.Namespace) -> None:
    settings = get_settings()
    version = serving_version(settings.model_dir)
    pictures = benchmark_photos(settings.data_dir)

    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        model_dir = copy_serving_model(settings.model_dir, version, scratch)
        # The tests check every body against Discord's OpenAPI schemas; here that would cost the
        # emulator a few ms of CPU per call on the cores the bot runs on, so the checks are off.
        with DiscordEmulator(check_spec=False) as emulator:
            emulator.add_member(DISCORD_ADMIN_ID)
            environment = discord_environment(
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
            service = start_service(environment, scratch / "service.log")
            try:
                await emulator.wait_for(
                    lambda: emulator.is_connected and emulator.commands(emulator.guild_id), timeout=120
                )
                await one_at_a_time(emulator, pictures, 5)  # warm the reading workers
                single = await one_at_a_time(emulator, pictures, arguments.single)
                emulator.use_command(
                    DISCORD_ADMIN_ID,
                    "train",
                    {"architecture": "dense", "epochs": 100},
                    channel_id=emulator.channel_id,
                )
                await emulator.wait_for(lambda: "Epoch 1/" in admin_texts(emulator), timeout=120)
                ours = await burst(emulator, pictures, arguments.users, arguments.pictures_per_user)
                training_still_running = "finished" not in admin_texts(emulator)
            finally:
                service.send_signal(signal.SIGTERM)
                service.wait(timeout=120)
        with DiscordEmulator(check_spec=False) as emulator:
            trainer = background_training(settings.data_dir.resolve(), scratch / "plain-models")
            try:
                await asyncio.sleep(15)  # let it reach its first epoch, as in our bot's burst
                plain = await plain_bot_burst(
                    emulator, model_dir, pictures, arguments.users, arguments.pictures_per_user
                )
            finally:
                trainer.terminate()
                trainer.wait()

    single_p50, single_p99 = percentiles(single)
    total = arguments.users * arguments.pictures_per_user
    print(f"\nMachine: {os.cpu_count()} CPU cores; model {version}; pictures 1280×960 JPEG attached in DMs")
    one_at_a_time_line = f"p50 {single_p50:.1f} ms, p99 {single_p99:.1f} ms"
    print(f"One person at a time ({arguments.single} pictures): {one_at_a_time_line}")
    print(
        f"\nBurst: {total} pictures from {arguments.users} people at once, a training run going "
        f"(still running at the end: {training_still_running})"
    )
    print("| bot | drain | pictures/s | latency p50 | latency p99 | in order per channel |")
    print("|---|---:|---:|---:|---:|---|")
    for name, row in (("this bot", ours), ("plain discord.py, inline predict", plain)):
        print(
            f"| {name} | {row['drain_s']:.1f} s | {row['pictures_per_s']:.1f} | {row['p50_ms']:.0f} ms "
            f"| {row['p99_ms']:.0f} ms | {'yes' if row['in_order'] else 'NO'} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--single", type=int, default=50, help="pictures sent one at a time")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--pictures-per-user", type=int, default=10)
    started = time.perf_counter()
    asyncio.run(main_async(parser.parse_args()))
    print(f"\n(benchmark took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
