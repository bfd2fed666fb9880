"""Capacity figures for docs/scaling.md: photos read per second per core, and training time per epoch.

Reading: the service's own ReadingPool (worker processes reading with the serving model through
LiteRT) with 1 and then 2 workers, on 1280×960 JPEG photos of MNIST test digits on paper
(tests/bot_support.digit_photo). Each pool is kept exactly full (as many photos in flight as it
has workers), so a photo's latency is its reading time, not time spent queueing. Besides the
wall-clock rate, each worker measures the CPU time it spent on each photo, and the event loop its
own (handing photos over and back): 1 / (CPU seconds per photo) is what one core does when it
does nothing else, a figure the machine's other jobs change far less than the wall-clock one.
The rounds alternate 1 and 2 workers so that other load falls on both, and each row shows the
load average it ran under.

Training: `python -m mnist_engine train --json` per architecture, for a few epochs, into a
scratch registry (nothing is promoted); its epoch events give the seconds per epoch. The first
epoch includes building and tracing the model; the later ones are the steady rate.

    python scripts/benchmark_capacity.py                    # the serving model in MNIST_MODEL_DIR
    python scripts/benchmark_capacity.py --rounds 3 --photos 300 --train small-cnn cnn --epochs 2
    python scripts/benchmark_capacity.py --train            # reading only
    python scripts/benchmark_capacity.py --train cnn --train-limit 11000   # a subset, extrapolated
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Only what the reading workers need is imported here: they are spawned, and import this module.
from bot.core.reading_pool import ReadingPool, read_in_worker  # noqa: E402

MNIST_TRAINING_IMAGES = 60_000


def timed_read(image_bytes: bytes) -> tuple[str, float]:
    """Read a photo in a pool worker as the service does; return the digits and the CPU seconds spent."""
    started = time.process_time()
    recognition, _version = read_in_worker(image_bytes)
    return recognition.text, time.process_time() - started


@dataclass
class ReadingRound:
    workers: int
    round_number: int
    load_average: float
    photos: int
    seconds: float
    latencies_ms: list[float]
    cpu_ms: list[float]
    service_cpu_seconds: float  # the event loop's side: handing photos to the workers and back
    right: int

    @property
    def photos_per_second(self) -> float:
        return self.photos / self.seconds

    @property
    def per_worker(self) -> float:
        return self.photos_per_second / self.workers

    @property
    def cpu_ms_per_photo(self) -> float:
        """Every CPU millisecond a photo costs: its worker's, and its share of the event loop's."""
        return statistics.mean(self.cpu_ms) + 1000 * self.service_cpu_seconds / self.photos

    @property
    def photos_per_cpu_second(self) -> float:
        return 1000 / self.cpu_ms_per_photo


async def read_round(
    model_dir: Path, workers: int, round_number: int, photos: list[tuple[bytes, str]], count: int
) -> ReadingRound:
    """Start a pool, warm it, then read `count` photos with exactly `workers` in flight."""
    pool = ReadingPool(model_dir, workers, read_function=timed_read)
    try:
        await pool.warm_up()
        await asyncio.gather(*(pool.read(picture) for picture, _label in photos[: 4 * workers]))
        next_photo = iter(range(count))
        latencies_ms: list[float] = []
        cpu_ms: list[float] = []
        right = 0

        async def keep_one_in_flight() -> None:
            nonlocal right
            for index in next_photo:  # shared by every reader: each photo is read once
                picture, label = photos[index % len(photos)]
                sent = time.perf_counter()
                text, cpu_seconds = await pool.read(picture)
                latencies_ms.append((time.perf_counter() - sent) * 1000)
                cpu_ms.append(cpu_seconds * 1000)
                right += text == label

        load_average = os.getloadavg()[0]
        started, service_cpu_started = time.perf_counter(), time.process_time()
        await asyncio.gather(*(keep_one_in_flight() for _ in range(workers)))
        seconds, service_cpu = time.perf_counter() - started, time.process_time() - service_cpu_started
    finally:
        pool.close()
    return ReadingRound(
        workers, round_number, load_average, count, seconds, latencies_ms, cpu_ms, service_cpu, right
    )


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def print_reading(rounds: list[ReadingRound]) -> None:
    print(
        "\n| workers | round | load avg | photos | wall | photos/s | per worker "
        "| latency p50 / p99 | CPU per photo | photos/s per core | read right |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rounds:
        latency = f"{percentile(row.latencies_ms, 0.5):.1f} / {percentile(row.latencies_ms, 0.99):.1f} ms"
        print(
            f"| {row.workers} | {row.round_number} | {row.load_average:.1f} | {row.photos} "
            f"| {row.seconds:.1f} s | {row.photos_per_second:.1f} | {row.per_worker:.1f} "
            f"| {latency} | {row.cpu_ms_per_photo:.1f} ms | {row.photos_per_cpu_second:.1f} "
            f"| {row.right / row.photos:.1%} |"
        )
    print("\nMedians over the rounds:")
    for workers in sorted({row.workers for row in rounds}):
        mine = [row for row in rounds if row.workers == workers]
        rate = statistics.median(row.photos_per_second for row in mine)
        per_core = statistics.median(row.photos_per_cpu_second for row in mine)
        print(
            f"  {workers} worker(s): {rate:.1f} photos/s ({rate / workers:.1f} per worker), "
            f"{per_core:.1f} photos/s per fully used core"
        )


@dataclass
class TrainingTiming:
    architecture: str
    images: int  # trained on per epoch
    full_images: int  # per epoch on the whole of MNIST's training set
    epoch_seconds: list[float]

    def steady(self) -> float:
        """Seconds per epoch once the model is built and traced."""
        later = self.epoch_seconds[1:] or self.epoch_seconds
        return statistics.mean(later)

    def per_full_epoch(self) -> float:
        return self.steady() * self.full_images / self.images


def time_training(
    architecture: str, epochs: int, train_limit: int | None, data_dir: Path, scratch: Path
) -> TrainingTiming:
    """Train `epochs` epochs with the engine's CLI; the seconds each epoch took."""
    from mnist_engine.settings import get_settings
    from mnist_engine.training.events import TrainingEvent, decode_line

    command = [sys.executable, "-m", "mnist_engine", "train", "--arch", architecture, "--epochs", str(epochs)]
    command += ["--json", "--no-promote"]
    if train_limit is not None:
        # A subset has no cached photo material, and making it takes minutes: MNIST alone, extrapolated.
        command += ["--train-limit", str(train_limit), "--photo-crops", "0"]
    environment = {
        **os.environ,
        "MNIST_MODEL_DIR": str(scratch / architecture),
        "MNIST_DATA_DIR": str(data_dir),
    }
    completed = subprocess.run(command, env=environment, cwd=PROJECT_ROOT, capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"training {architecture} failed:\n{completed.stderr[-2000:]}")
    ends = [0.0]
    for line in completed.stdout.splitlines():
        event = decode_line(line)
        if isinstance(event, TrainingEvent) and event.kind == "epoch":
            ends.append(event.elapsed_seconds)
    settings = get_settings()
    # A full epoch is MNIST's fitting images and the pipeline crops made from them (a tenth of the
    # crops come from the validation digits and validate).
    crops_fit = settings.training_photo_crops - settings.training_photo_crops // 10
    full_images = MNIST_TRAINING_IMAGES - settings.training_validation_size + crops_fit
    images = full_images if train_limit is None else train_limit - settings.training_validation_size
    epoch_seconds = [end - start for start, end in itertools.pairwise(ends)]
    return TrainingTiming(architecture, images, full_images, epoch_seconds)


def print_training(timings: list[TrainingTiming]) -> None:
    from mnist_engine.training.architectures import ARCHITECTURES

    print(f"\nTraining on this machine's CPU ({os.cpu_count()} cores), `python -m mnist_engine train`")
    print(
        "| architecture | images per epoch | epoch 1 | later epochs | per full epoch "
        "| default epochs | full run |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for timing in timings:
        default_epochs = ARCHITECTURES[timing.architecture].default_epochs
        later = ", ".join(f"{seconds:.0f}" for seconds in timing.epoch_seconds[1:]) or "–"
        extrapolated = "" if timing.images == timing.full_images else " (extrapolated)"
        print(
            f"| {timing.architecture} | {timing.images:,} | {timing.epoch_seconds[0]:.0f} s | {later} s "
            f"| {timing.per_full_epoch():.0f} s{extrapolated} | {default_epochs} "
            f"| {timing.per_full_epoch() * default_epochs / 60:.1f} min |"
        )


async def main_async(arguments: argparse.Namespace) -> None:
    # The tests' photo maker is not part of the installed project.
    sys.path.insert(0, str(PROJECT_ROOT / "tests"))
    from bot_support import digit_photo

    from mnist_engine.registry import ModelRegistry
    from mnist_engine.settings import get_settings
    from mnist_engine.training.dataset import load_mnist

    settings = get_settings()
    print(f"Machine: {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} at the start")

    if arguments.photos:
        version = ModelRegistry(settings.model_dir).current_version()
        if version is None:
            raise SystemExit(f"No model serves in {settings.model_dir}: run `python -m mnist_engine train`")
        mnist = load_mnist(settings.data_dir)
        photos = [
            (digit_photo([mnist.x_test[index]], seed=index, size=(1280, 960)), str(mnist.y_test[index]))
            for index in range(50)
        ]
        print(f"Reading 1280×960 JPEG photos of one MNIST test digit each; serving model {version}")
        rounds = []
        for round_number in range(1, arguments.rounds + 1):
            for workers in (1, 2):
                row = await read_round(settings.model_dir, workers, round_number, photos, arguments.photos)
                rounds.append(row)
        print_reading(rounds)

    if arguments.train:
        timings = []
        with tempfile.TemporaryDirectory() as scratch:
            for architecture in arguments.train:
                timing = time_training(
                    architecture, arguments.epochs, arguments.train_limit, settings.data_dir, Path(scratch)
                )
                timings.append(timing)
        print_training(timings)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="reading rounds, each with 1 then 2 workers")
    parser.add_argument("--photos", type=int, default=300, help="photos read per round (0: no reading)")
    parser.add_argument(
        "--train", nargs="*", default=["small-cnn", "cnn"], help="architectures to time (none: no training)"
    )
    parser.add_argument("--epochs", type=int, default=2, help="epochs per architecture")
    parser.add_argument("--train-limit", type=int, help="train on the first N images and extrapolate")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
