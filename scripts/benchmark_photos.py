"""How well each model reads photos, and how fast the photo pipeline prepares them.

    python scripts/benchmark_photos.py                         # newest model of each architecture
    python scripts/benchmark_photos.py --model models/<version> --model out/other.keras
    python scripts/benchmark_photos.py --dev-dir ../shared/photos/dev --synthetic-count 300

For each model it prints MNIST test accuracy, the share of synthetic photos read exactly
(scripts/make_synthetic_photos.py, MNIST test digits only), accuracy on the real development
images by kind (photo, drawn, scan), and the share of multi-digit images read as exactly the
right string. Images are read with `read_digits_upright` and the model, as the bot should read
them (a photo taken sideways is turned), at most 24 digits each. The development labels mark
line breaks inconsistently, so multi-digit strings are compared digits only. The pipeline's
time per image (`read_digits`) is measured on one core, for a 1280x960 JPEG (Telegram's photo
size) and a 4000x3000 JPEG (a phone's original). The development folder is optional.
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
from make_synthetic_photos import make_photo_set, render_photo  # scripts/ is on the path of its scripts

from mnist_engine.photo import MAX_DIGITS, ImageError, ProbabilityModel, find_digit_crops, recognize

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

    timings = {name: _time_pipeline(size, arguments.timing_runs) for name, size in TIMED_SIZES.items()}

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
        "synthetic",
        *(f"dev {kind}" for kind in DEV_KINDS),
        "dev single",
        "multi exact",
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    failures: dict[str, list[tuple[BenchmarkImage, str]]] = {}
    for name, model in models:
        mnist_accuracy = float(np.mean(model.predict_proba(mnist.x_test).argmax(axis=1) == mnist.y_test))
        synthetic_results = _score(synthetic, model)
        cells = [name, _percent(mnist_accuracy), _share(synthetic_results)]
        if dev is not None:
            dev_results = _score(dev, model)
            for kind in DEV_KINDS:
                cells.append(_share([ok for image, ok, _ in dev_results if image.kind == kind]))
            cells.append(_share([ok for image, ok, _ in dev_results if image.kind != "multi"]))
            cells.append(_share([ok for image, ok, _ in dev_results if image.kind == "multi"]))
            failures[name] = [(image, text) for image, ok, text in dev_results if not ok]
        else:
            cells += ["–"] * (len(DEV_KINDS) + 2)
        print("| " + " | ".join(cells) + " |")

    print("\nPreprocessing time per image (decode + pipeline, one core):")
    for name, (p50, p99) in timings.items():
        print(f"  {name}: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    for name, misread in failures.items() if arguments.failures else ():
        print(f"\nMisread development images, {name}:")
        for image, text in misread:
            print(f"  {image.name} ({image.kind}): expected {image.label!r}, read {text!r}")
    return 0


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
        BenchmarkImage(row["file"], row["kind"], row["label"], (dev_dir / row["file"]).read_bytes())
        for row in rows
    ]


def _score(images: list[BenchmarkImage], model: ProbabilityModel) -> list[tuple[BenchmarkImage, bool, str]]:
    """Return (image, read exactly right, text read or the error) for each image.

    Images are read as the bot reads them: `recognize` with this model, so a photo taken
    sideways is turned by the model's confidence.
    """
    results = []
    for image in images:
        try:
            text = recognize(image.data, model, max_digits=MAX_DIGITS).text
        except ImageError as error:
            results.append((image, False, str(error)))
            continue
        results.append((image, text.replace(" ", "") == image.label.replace(" ", ""), text))
    return results


def _share(results: Sequence[bool] | Sequence[tuple[BenchmarkImage, bool, str]]) -> str:
    oks = [item[1] if isinstance(item, tuple) else item for item in results]
    if not oks:
        return "–"
    return f"{_percent(float(np.mean(oks)))} ({sum(oks)}/{len(oks)})"


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


if __name__ == "__main__":
    raise SystemExit(main())
