"""The handwriting benchmark's choice of sources, its P(true digit) and its split of each source in halves."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def load_benchmark() -> ModuleType:
    """Import scripts/benchmark_handwriting.py as a module."""
    path = SCRIPTS / "benchmark_handwriting.py"
    spec = importlib.util.spec_from_file_location("benchmark_handwriting", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["benchmark_handwriting"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


benchmark = load_benchmark()


def images(source: str, count: int, start: int = 0) -> list[Any]:
    """`count` made-up images of one source."""
    return [
        benchmark.DevImage(f"{source}-{number:02d}.png", str(number % 10), "photo", source, Path("x"))
        for number in range(start, start + count)
    ]


def score(right: int, total: int, mean_probability: float | None = None) -> object:
    """A source read `right` times out of `total`, each image given `mean_probability` (or the accuracy)."""
    probability = right / total if mean_probability is None else mean_probability
    probabilities = {f"image-{number}": probability for number in range(total)}
    return benchmark.SourceScore(probabilities=probabilities, right=right, total=total)


class FixedModel:
    """A model that gives every digit the same probabilities."""

    def __init__(self, probabilities: list[float]) -> None:
        self.probabilities = np.array([probabilities], dtype=np.float32)
        self.calls = 0

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """The fixed row for each image."""
        self.calls += 1
        return np.repeat(self.probabilities, len(images), axis=0)


def recognition(digit_count: int) -> object:
    """A reading of `digit_count` blank crops as 3s."""
    from mnist_engine.photo.reading import DigitCrop, ReadDigit, Recognition

    crop = DigitCrop(np.zeros((28, 28), dtype=np.uint8), (0, 0, 28, 28), 0)
    digits = [ReadDigit(3, 0.7, 8, 0.2, crop) for _ in range(digit_count)]
    return Recognition(digits, "3" * digit_count)


def test_single_digits_are_read_from_labels_and_multi_digit_rows_left_out(tmp_path: Path) -> None:
    (tmp_path / "labels.tsv").write_text(
        "file\tlabel\tkind\trepo\tcommit\tpath\n"
        "a.png\t7\tphoto\tone/repo\tc\tp\n"
        "b.png\t12\tmulti\tone/repo\tc\tp\n"
        "c.png\t3\tdrawn\ttwo/repo\tc\tp\n",
        encoding="utf-8",
    )
    loaded = benchmark.load_single_digits(tmp_path)
    assert [(image.name, image.label, image.source) for image in loaded] == [
        ("a.png", "7", "one/repo"),
        ("c.png", "3", "two/repo"),
    ]
    assert loaded[0].path == tmp_path / "a.png"


def test_only_sources_with_enough_images_are_kept() -> None:
    groups = benchmark.group_by_source(images("big", 6) + images("small", 5), min_images=6)
    assert list(groups) == ["big"]
    assert len(groups["big"]) == 6


def test_sources_are_chosen_by_the_lowest_mean_probability_of_the_true_digit() -> None:
    scores = {
        "all-right-but-unsure": score(10, 10, mean_probability=0.6),
        "one-miss-but-sure": score(9, 10, mean_probability=0.9),
        "sure": score(10, 10, mean_probability=0.99),
        "unsure-small": score(6, 6, mean_probability=0.8),
        "unsure-large": score(8, 8, mean_probability=0.8),
    }
    assert benchmark.choose_sources(scores, 4) == [
        "all-right-but-unsure",
        "unsure-large",
        "unsure-small",
        "one-miss-but-sure",
    ]


def test_a_score_counts_readings_and_averages_the_probabilities() -> None:
    source = benchmark.SourceScore()
    one, two = images("someone", 2)
    source.add(one, "0", 0.9)  # its label
    source.add(two, "error: unreadable", 0.0)
    assert (source.right, source.total) == (1, 2)
    assert source.mean_probability == 0.45
    assert np.isnan(benchmark.SourceScore().mean_probability)
    measured = benchmark.measured_score(source, [two])
    assert (measured.right, measured.total, measured.mean_probability) == (0, 1, 0.0)
    whole = benchmark.merged([measured, benchmark.measured_score(source, [one])])
    assert (whole.right, whole.total, whole.mean_probability) == (1, 2, 0.45)


def test_the_true_digit_probability_is_the_models_on_the_one_crop_found() -> None:
    model = FixedModel([0.0, 0.1, 0.0, 0.6, 0.0, 0.0, 0.0, 0.0, 0.3, 0.0])
    assert benchmark.true_digit_probability(recognition(1), model, "8") == np.float32(0.3)
    assert benchmark.true_digit_probability(recognition(1), model, "3") == np.float32(0.6)
    # No digit, or several, found in a single-digit image: the true digit got nothing.
    assert benchmark.true_digit_probability(recognition(0), model, "3") == 0.0
    assert benchmark.true_digit_probability(recognition(2), model, "3") == 0.0
    assert model.calls == 2


def test_the_worst_read_sources_are_chosen_and_ties_go_to_the_larger_source() -> None:
    scores = {
        "perfect": score(10, 10),
        "worst": score(3, 10),
        "bad-small": score(6, 8),
        "bad-large": score(9, 12),
        "middle": score(8, 10),
    }
    assert benchmark.choose_sources(scores, 3) == ["worst", "bad-large", "bad-small"]
    assert benchmark.choose_sources(scores, 10) == ["worst", "bad-large", "bad-small", "middle", "perfect"]


def test_halves_are_disjoint_complete_seeded_and_the_taught_half_is_the_smaller() -> None:
    source = images("someone", 9)
    taught, measured = benchmark.split_halves(source, seed=0)
    assert len(taught) == 4 and len(measured) == 5
    assert sorted(image.name for image in taught + measured) == sorted(image.name for image in source)
    assert benchmark.split_halves(list(reversed(source)), seed=0) == (taught, measured)
    taught_by_seed = {
        tuple(image.name for image in benchmark.split_halves(source, seed)[0]) for seed in range(5)
    }
    assert len(taught_by_seed) > 1


def test_readings_are_compared_without_line_breaks() -> None:
    assert benchmark.digits_only("1 2\n3") == "123"
    assert benchmark.percent(3, 4) == "3/4 (75.0%)"
    assert benchmark.percent(0, 0) == "–"
