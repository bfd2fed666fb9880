"""Benchmark the engine: train each architecture on full MNIST and time inference.

Prints one table: test accuracy, epochs, wall time, time per epoch, and per-image inference
latency (p50/p99, one image and a batch of 64) for `model.predict` against the serving path
(LiteRT), both measured in the same run on the same model.

    python scripts/benchmark_engine.py                       # every architecture, default epochs
    python scripts/benchmark_engine.py --arch small-cnn dense --epochs 3
    python scripts/benchmark_engine.py --results out/bench   # keep each row, resume later

Each architecture's row is saved as JSON under --results, so a long run (the 730k-parameter
CNN takes ~75 s per epoch on a 2-core CPU) can be resumed; --rerun trains again anyway.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from mnist_engine.registry import ModelRegistry
from mnist_engine.serving import Classifier
from mnist_engine.serving.model_input import to_model_input
from mnist_engine.settings import get_settings
from mnist_engine.training.architectures import ARCHITECTURES
from mnist_engine.training.dataset import load_mnist
from mnist_engine.training.store import save_version
from mnist_engine.training.train import TrainingConfig, train

REPEATS_SINGLE = 200
REPEATS_BATCH = 50


def percentiles(samples_ms: list[float]) -> tuple[float, float]:
    """Return (p50, p99) of timings in milliseconds."""
    return float(np.percentile(samples_ms, 50)), float(np.percentile(samples_ms, 99))


def time_calls(function: Any, inputs: list[np.ndarray]) -> list[float]:
    """Time each call in milliseconds after two warm-up calls."""
    function(inputs[0])
    function(inputs[0])
    timings = []
    for batch in inputs:
        started = time.perf_counter()
        function(batch)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def measure_latency(model: Any, classifier: Classifier, images: np.ndarray) -> dict[str, float]:
    """Per-call latency of model.predict and the serving path, one image and a batch of 64."""
    singles = [images[index : index + 1] for index in range(REPEATS_SINGLE)]
    batches = [images[index * 64 : (index + 1) * 64] for index in range(REPEATS_BATCH)]
    rows: dict[str, float] = {}
    for name, function in (
        ("predict", lambda batch: model.predict(to_model_input(batch), verbose=0)),
        ("serving", classifier.predict_proba),
    ):
        rows[f"{name}_single_p50"], rows[f"{name}_single_p99"] = percentiles(time_calls(function, singles))
        rows[f"{name}_batch64_p50"], rows[f"{name}_batch64_p99"] = percentiles(time_calls(function, batches))
    rows["speedup_single"] = rows["predict_single_p50"] / rows["serving_single_p50"]
    return rows


def benchmark_architecture(name: str, epochs: int | None, mnist: Any) -> dict[str, Any]:
    """Train one architecture on the full data and measure it."""
    result = train(mnist, TrainingConfig(architecture=name, epochs=epochs))
    with tempfile.TemporaryDirectory() as model_dir:
        registry = ModelRegistry(Path(model_dir))
        version = save_version(registry, result)
        classifier = Classifier.load(registry.path(version))
        serving_accuracy = float((classifier.predict_proba(mnist.x_test).argmax(1) == mnist.y_test).mean())
        latency = measure_latency(result.model, classifier, mnist.x_test)
    return {
        "architecture": name,
        "parameters": int(result.model.count_params()),
        "test_accuracy": result.evaluation.accuracy,
        "serving_test_accuracy": serving_accuracy,
        "test_loss": result.evaluation.loss,
        "best_val_accuracy": result.best_val_accuracy,
        "epochs": result.epochs_done,
        "stopped_early": result.stopped_early,
        "wall_seconds": result.seconds,
        "seconds_per_epoch": result.seconds / result.epochs_done,
        **latency,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    """Print the results as a Markdown table."""
    print(f"\nMachine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}")
    print(
        "| architecture | params | test acc | test loss | epochs | wall | s/epoch "
        "| predict 1 p50/p99 ms | serving 1 p50/p99 ms | predict 64 p50/p99 ms | serving 64 p50/p99 ms "
        "| speed-up |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['architecture']} | {row['parameters']:,} | {row['test_accuracy']:.2%} "
            f"| {row['test_loss']:.4f} | {row['epochs']}{' (early stop)' if row['stopped_early'] else ''} "
            f"| {row['wall_seconds'] / 60:.1f} min "
            f"| {row['seconds_per_epoch']:.1f} "
            f"| {row['predict_single_p50']:.2f} / {row['predict_single_p99']:.2f} "
            f"| {row['serving_single_p50']:.3f} / {row['serving_single_p99']:.3f} "
            f"| {row['predict_batch64_p50']:.2f} / {row['predict_batch64_p99']:.2f} "
            f"| {row['serving_batch64_p50']:.2f} / {row['serving_batch64_p99']:.2f} "
            f"| {row['speedup_single']:.0f}× |"
        )


def main() -> None:
    """Run the benchmark for the chosen architectures and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arch", nargs="+", default=list(ARCHITECTURES), choices=sorted(ARCHITECTURES))
    parser.add_argument("--epochs", type=int, help="override every architecture's default epochs")
    parser.add_argument("--results", type=Path, default=Path("out/benchmark_engine"))
    parser.add_argument("--rerun", action="store_true", help="train again even if a saved row exists")
    arguments = parser.parse_args()

    mnist = load_mnist(get_settings().data_dir)
    arguments.results.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in arguments.arch:
        saved = arguments.results / f"{name}.json"
        if saved.exists() and not arguments.rerun:
            rows.append(json.loads(saved.read_text()))
            continue
        print(f"Training {name}…", flush=True)
        row = benchmark_architecture(name, arguments.epochs, mnist)
        saved.write_text(json.dumps(row, indent=2))
        rows.append(row)
        print_table(rows)
    print_table(rows)


if __name__ == "__main__":
    main()
