"""The handwriting benchmark's choice of sources and its split of each source in halves."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

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


def images(source: str, count: int, start: int = 0) -> list[object]:
    """`count` made-up images of one source."""
    return [
        benchmark.DevImage(f"{source}-{number:02d}.png", str(number % 10), "photo", source, Path("x"))
        for number in range(start, start + count)
    ]


def score(right: int, total: int) -> object:
    """A source read `right` times out of `total`."""
    return benchmark.SourceScore(right=right, total=total)


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
