"""How well each model reads photos, grouped by where they come from, and how fast the pipeline is.

    python scripts/benchmark_photos.py                         # newest model of each architecture
    python scripts/benchmark_photos.py --model models/<version> --model out/other.keras
    python scripts/benchmark_photos.py --dev-dir ../shared/photos/dev --synthetic-count 500

For each model it prints MNIST test accuracy; the synthetic photos (mnist_engine.synthetic, MNIST
test digits only) read exactly, single digits and numbers apart; the real development images
by kind (photo, drawn, scan) and numbers read exactly; and, because the product is judged on
photos from people it has never seen, the development images grouped by source (the `repo`
column: one writer, one camera): the macro average over sources, how many sources of five or
more images fall below 95%, and the worst sources. Coverage: the accuracy on the 95% of single
digits the model is surest of, as the bot would answer them without hedging.

Images are read with `recognize` as the bot reads them (a photo taken sideways is turned), at
most 24 digits each. Numbers are compared digits only (the labels mark line breaks
inconsistently). The pipeline's time per image (`find_digit_crops`) is measured on one core, for
a 1280x960 JPEG (Telegram's photo size) and a 4000x3000 JPEG. The development folder is optional.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_engine.photo import MAX_DIGITS, ImageError, ProbabilityModel, find_digit_crops, recognize
from mnist_engine.synthetic.photos import make_photo_set, render_photo

PROJECT_ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_DEV_DIR = PROJECT_ROOT.parent / "shared" / "photos" / "dev"
DEV_KINDS = ("photo", "drawn", "scan")


@dataclass(frozen=True)
class BenchmarkImage:
    """One benchmark image and the digits it shows."""

    name: str
    kind: str
    label: str
    data: bytes
    source: str = "synthetic"


@dataclass(frozen=True)
class Reading:
    """How a model read one benchmark image."""

    image: BenchmarkImage
    ok: bool
    text: str
    confidence: float

    @property
    def single(self) -> bool:
        return len(self.image.label.replace(" ", "")) == 1


def main(argv: Sequence[str] | None = None) -> int:
    """Time the pipeline, read every image with each model and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", type=Path, action="append", help="a version dir or model file (repeatable)"
    )
    parser.add_argument("--dev-dir", type=Path, default=DEFAULT_DEV_DIR)
    parser.add_argument("--synthetic-count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timing-runs", type=int, default=100)
    parser.add_argument(
        "--failures", action="store_true", help="list each model's misread development images"
    )
    arguments = parser.parse_args(argv)

    timings = {
        name: _time_pipeline(size, arguments.timing_runs)
        for name, size in TIMED_SIZES.items()
        if arguments.timing_runs > 0
    }

    from mnist_engine.settings import get_settings
    from mnist_engine.training.dataset import load_mnist

    settings = get_settings()
    mnist = load_mnist(settings.data_dir)
    models = _models(arguments.model, settings.model_dir)
    if not models:
        print("No model found: train one (`python -m mnist_engine train`) or pass --model.", file=sys.stderr)
        return 2

    synthetic = [
        BenchmarkImage(
            f"synthetic-{number:04d}", "multi" if len(photo.label) > 1 else "single", photo.label, photo.data
        )
        for number, photo in enumerate(
            make_photo_set(mnist.x_test, mnist.y_test, arguments.synthetic_count, arguments.seed)
        )
    ]
    dev = _load_dev(arguments.dev_dir)
    if dev is None:
        print(f"Note: {arguments.dev_dir} not found; the development-image columns are skipped.\n")

    header = [
        "model",
        "MNIST test",
        "synthetic single",
        "synthetic numbers",
        *(f"dev {kind}" for kind in DEV_KINDS),
        "dev single",
        "dev numbers",
        "dev by source (macro)",
        "sources < 95%",
        "single, 95% coverage",
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    failures: dict[str, list[Reading]] = {}
    worst: dict[str, list[tuple[str, list[Reading]]]] = {}
    for name, model in models:
        mnist_accuracy = float(np.mean(model.predict_proba(mnist.x_test).argmax(axis=1) == mnist.y_test))
        synthetic_readings = _score(synthetic, model)
        cells = [
            name,
            _percent(mnist_accuracy),
            _share([reading.ok for reading in synthetic_readings if reading.single]),
            _share([reading.ok for reading in synthetic_readings if not reading.single]),
        ]
        if dev is not None:
            readings = _score(dev, model)
            singles = [reading for reading in readings if reading.single]
            for kind in DEV_KINDS:
                cells.append(_share([reading.ok for reading in singles if reading.image.kind == kind]))
            cells.append(_share([reading.ok for reading in singles]))
            cells.append(_share([reading.ok for reading in readings if not reading.single]))
            by_source = _by_source(singles)
            cells.append(_percent(float(np.mean([_accuracy(group) for _, group in by_source]))))
            large = [(source, group) for source, group in by_source if len(group) >= MIN_SOURCE_IMAGES]
            below = [source for source, group in large if _accuracy(group) < SOURCE_TARGET]
            cells.append(f"{len(below)} of {len(large)}")
            cells.append(_covered_accuracy(singles, COVERAGE))
            failures[name] = [reading for reading in readings if not reading.ok]
            worst[name] = sorted(large, key=lambda item: (_accuracy(item[1]), -len(item[1])))[:WORST_SHOWN]
        else:
            cells += ["–"] * (len(DEV_KINDS) + 5)
        print("| " + " | ".join(cells) + " |")

    for name, sources in worst.items():
        print(f"\nWorst sources of {MIN_SOURCE_IMAGES} or more single digits, {name}:")
        for source, group in sources:
            print(f"  {_share([reading.ok for reading in group])}  {source}")
    print("\nPreprocessing time per image (decode + pipeline, one core):")
    for name, (p50, p99) in timings.items():
        print(f"  {name}: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    for name, misread in failures.items() if arguments.failures else ():
        print(f"\nMisread development images, {name}:")
        for reading in misread:
            image = reading.image
            print(
                f"  {image.name} ({image.kind}, {image.source}): expected {image.label!r}, "
                f"read {reading.text!r} ({reading.confidence:.0%})"
            )
    return 0


MIN_SOURCE_IMAGES = 5  # the per-source target counts sources of five or more images
SOURCE_TARGET = 0.95
COVERAGE = 0.95
WORST_SHOWN = 6


def _by_source(readings: list[Reading]) -> list[tuple[str, list[Reading]]]:
    """Group readings by their image's source, in name order."""
    groups: dict[str, list[Reading]] = {}
    for reading in readings:
        groups.setdefault(reading.image.source, []).append(reading)
    return sorted(groups.items())


def _accuracy(readings: Sequence[Reading]) -> float:
    return float(np.mean([reading.ok for reading in readings]))


def _covered_accuracy(readings: Sequence[Reading], coverage: float) -> str:
    """The accuracy on the `coverage` share of readings the model is surest of."""
    surest = sorted(readings, key=lambda reading: -reading.confidence)[: round(coverage * len(readings))]
    return _share([reading.ok for reading in surest])


TIMED_SIZES = {"1280x960 JPEG": (1280, 960), "4000x3000 JPEG": (4000, 3000)}


def _time_pipeline(size: tuple[int, int], runs: int) -> tuple[float, float]:
    """Return p50 and p99 milliseconds of find_digit_crops on a synthetic photo of `size`, on one core."""
    import cv2

    from mnist_engine.settings import get_settings
    from mnist_engine.training.dataset import load_mnist

    mnist = load_mnist(get_settings().data_dir)
    rng = np.random.default_rng(size[0])
    photos = [render_photo([mnist.x_test[index]], rng, size=size) for index in range(5)]
    threads = cv2.getNumThreads()
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    cv2.setNumThreads(1)
    if affinity:
        os.sched_setaffinity(0, {min(affinity)})
    try:
        for photo in photos:
            find_digit_crops(photo)  # warm-up: imports, caches
        durations = []
        for run in range(runs):
            start = time.perf_counter()
            find_digit_crops(photos[run % len(photos)])
            durations.append((time.perf_counter() - start) * 1000)
    finally:
        cv2.setNumThreads(threads)
        if affinity:
            os.sched_setaffinity(0, affinity)
    return float(np.percentile(durations, 50)), float(np.percentile(durations, 99))


def _models(paths: list[Path] | None, model_dir: Path) -> list[tuple[str, ProbabilityModel]]:
    """Return (name, model) for the given paths, or for the newest version of each architecture."""
    from mnist_engine.registry import ModelRegistry
    from mnist_engine.serving import Classifier

    if paths:
        return [(str(path), Classifier.load(path)) for path in paths]
    registry = ModelRegistry(model_dir)
    current = registry.current_version()
    newest: dict[str, str] = {}
    for version in registry.versions():  # oldest first, so the newest one wins
        newest[registry.metadata(version)["architecture"]] = version
    models = []
    for architecture, version in sorted(newest.items()):
        name = f"{architecture} ({version}{', current' if version == current else ''})"
        models.append((name, Classifier.load(registry.path(version))))
    return models


def _load_dev(dev_dir: Path) -> list[BenchmarkImage] | None:
    """Return the development images listed in labels.tsv, or None if the folder is absent."""
    labels = dev_dir / "labels.tsv"
    if not labels.exists():
        return None
    with labels.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [
        BenchmarkImage(
            row["file"], row["kind"], row["label"], (dev_dir / row["file"]).read_bytes(), row["repo"]
        )
        for row in rows
    ]


def _score(images: list[BenchmarkImage], model: ProbabilityModel) -> list[Reading]:
    """Read each image as the bot reads it: `recognize` with this model (a sideways photo is turned)."""
    readings = []
    for image in images:
        try:
            recognition = recognize(image.data, model, max_digits=MAX_DIGITS)
        except ImageError as error:
            readings.append(Reading(image, False, str(error), 0.0))
            continue
        ok = recognition.text.replace(" ", "") == image.label.replace(" ", "")
        readings.append(Reading(image, ok, recognition.text, recognition.confidence))
    return readings


def _share(oks: Sequence[bool]) -> str:
    if not oks:
        return "–"
    return f"{_percent(float(np.mean(oks)))} ({sum(oks)}/{len(oks)})"


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


if __name__ == "__main__":
    raise SystemExit(main())
