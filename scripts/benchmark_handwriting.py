"""Whether the bot learns a person's handwriting from their corrections (issue 9).

    python scripts/benchmark_handwriting.py                          # five sources, the real settings
    python scripts/benchmark_handwriting.py --sources 6 --seed 1
    python scripts/benchmark_handwriting.py --epochs 1               # a quick trial, not a result

Each source of the development photos (the `repo` column of labels.tsv, single digits only) plays
one user. The serving model first reads every source with at least six single digits; the
sources it reads worst are chosen, by the mean probability it gives the true digit (accuracy
barely moves: the serving model reads almost every image right). Each chosen source's images are
split in two seeded halves.
The first half goes through the bot's own path, as a front end drives it: `DigitReader.read`
reads the photo in the reading pool and stores the answer with its 28×28 samples; the user taps
✅ when the answer is right, or ❌ and types the right digit (`begin_correction`, then
`judge`), so the database holds exactly what a real user would leave. The database is a fresh
SQLite file, migrated as the service migrates it; each source is its own user id.

Then the scheduled retraining runs as the service's clock runs it (`Schedule.retrain`: the
supervisor's training job, the engine's command line with the users' samples, the service's
architecture, epochs, user sample weight, holdout and promotion tolerance), once, with every
chosen user's corrections together, into a scratch copy of the model folder. A control run does
the same with a second fresh database that holds no feedback (the schedule's minimum lowered to
zero), so the engine trains with the same settings and seed but without the users' samples (both
fine-tune the serving model, as the schedule does): what the users taught is the difference
between the two, not between before and after. The other half of each source is read before (serving
model), after (the corrected run's candidate) and by the control candidate (promoted or not),
counting exact readings and the mean probability of the true digit: the calibrated probability
the model gives the true label on the one crop the pipeline found (0 when it found not exactly
one digit, or the picture was refused). MNIST test accuracy and the promotion decisions come
from the runs' records.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import logging
import math
import os
import random
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEV_DIR = PROJECT_ROOT.parent / "shared" / "photos" / "dev"
MIN_IMAGES_PER_SOURCE = 6
DEFAULT_SOURCES = 5
FIRST_USER_ID = 900_001  # one made-up Telegram user (and private chat) per source

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if TYPE_CHECKING:
    from bot.core.progress import RunProgress
    from bot.core.services import Services
    from bot.settings import Settings
    from db.views import RunSummary
    from mnist_engine.photo import ProbabilityModel, Recognition


@dataclass(frozen=True)
class DevImage:
    """One single-digit development image and the source it came from."""

    name: str
    label: str
    kind: str
    source: str
    path: Path


@dataclass
class SourceScore:
    """How one model read a list of images: the text read (or the error) and P(true digit) per image."""

    readings: dict[str, str] = field(default_factory=dict)
    probabilities: dict[str, float] = field(default_factory=dict)
    right: int = 0
    total: int = 0

    def add(self, image: DevImage, text: str, probability: float) -> None:
        """Count one image read as `text`, the true digit given `probability`."""
        self.readings[image.name] = text
        self.probabilities[image.name] = probability
        self.total += 1
        self.right += text == image.label

    @property
    def accuracy(self) -> float:
        """The share read exactly right."""
        return self.right / self.total if self.total else math.nan

    @property
    def mean_probability(self) -> float:
        """The mean probability of the true digit."""
        return (
            math.fsum(self.probabilities.values()) / len(self.probabilities)
            if self.probabilities
            else math.nan
        )


@dataclass
class Teaching:
    """What one user left in the bot for one source's first half."""

    right: int = 0  # answers the user confirmed with ✅
    corrected: int = 0  # answers the user corrected with ❌ and the right digit
    unread: int = 0  # no digit found or the picture refused: nothing to judge
    labelled_samples: int = 0  # 28×28 samples the verdicts gave a known digit


def load_single_digits(dev_dir: Path) -> list[DevImage]:
    """The single-digit images listed in labels.tsv (kind other than multi)."""
    with (dev_dir / "labels.tsv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [
        DevImage(row["file"], row["label"], row["kind"], row["repo"], dev_dir / row["file"])
        for row in rows
        if row["kind"] != "multi" and len(row["label"]) == 1
    ]


def group_by_source(images: Sequence[DevImage], min_images: int) -> dict[str, list[DevImage]]:
    """The images of each source that has at least `min_images` of them, in file-name order."""
    groups: dict[str, list[DevImage]] = {}
    for image in sorted(images, key=lambda image: image.name):
        groups.setdefault(image.source, []).append(image)
    return {source: group for source, group in groups.items() if len(group) >= min_images}


def rank_sources(scores: dict[str, SourceScore]) -> list[str]:
    """Sources worst first: lowest mean P(true digit), then accuracy, then more images (more to learn)."""
    return sorted(
        scores,
        key=lambda source: (
            scores[source].mean_probability,
            scores[source].accuracy,
            -scores[source].total,
            source,
        ),
    )


def choose_sources(scores: dict[str, SourceScore], count: int) -> list[str]:
    """The `count` sources the model reads worst (`rank_sources`)."""
    return rank_sources(scores)[:count]


def split_halves(images: Sequence[DevImage], seed: int) -> tuple[list[DevImage], list[DevImage]]:
    """A seeded split into the half taught (the smaller one for an odd count) and the half measured."""
    # Seeded by the source too, so each source's split does not depend on which others were chosen.
    source = images[0].source if images else ""
    shuffled = sorted(images, key=lambda image: image.name)
    random.Random(f"{seed}:{source}").shuffle(shuffled)
    taught = len(shuffled) // 2
    return shuffled[:taught], shuffled[taught:]


def digits_only(text: str) -> str:
    """A reading without its line breaks and spaces, as labels are compared."""
    return "".join(text.split())


def true_digit_probability(recognition: Recognition, model: ProbabilityModel, label: str) -> float:
    """The model's calibrated P(label) on the one crop found; 0 unless exactly one digit was found."""
    import numpy as np

    if len(recognition.digits) != 1 or len(label) != 1:
        return 0.0
    probabilities = model.predict_proba(recognition.digits[0].crop.image[np.newaxis])
    return float(probabilities[0, int(label)])


def read_all(images: Sequence[DevImage], model: ProbabilityModel) -> SourceScore:
    """Read images as the bot's reading workers do (`recognize` with a loaded version)."""
    from mnist_engine.photo import ImageError, recognize

    score = SourceScore()
    for image in images:
        try:
            recognition = recognize(image.path.read_bytes(), model)
        except ImageError as error:
            score.add(image, f"error: {error}", 0.0)  # a refused picture gives the true digit nothing
            continue
        score.add(
            image, digits_only(recognition.text), true_digit_probability(recognition, model, image.label)
        )
    return score


def percent(right: int, total: int) -> str:
    """`right/total (xx.x%)`."""
    return f"{right}/{total} ({right / total:.1%})" if total else "–"


async def teach(services: Services, user_id: int, images: Sequence[DevImage]) -> Teaching:
    """Send each picture as a Telegram photo and judge the answer as the user would, through bot.core."""
    from bot.core.reading import Picture, Verdict
    from bot.core.replies import parse_correction
    from db.models import Channel, PredictionSource

    reader, channel = services.reader, Channel.TELEGRAM
    taught = Teaching()
    for message_id, image in enumerate(images, start=1):
        data = image.path.read_bytes()
        refusal = reader.admit(channel, user_id, len(data))
        if refusal is not None:
            raise RuntimeError(f"{image.name} was refused: {refusal.reply and refusal.reply.text}")
        picture = Picture(data, channel, user_id, user_id, message_id * 2, PredictionSource.PHOTO)
        answer = await reader.read(picture)
        if answer.prediction_id is None or answer.recognition is None:
            taught.unread += 1  # "no digit found" or an image error: there is no answer to judge
            continue
        if digits_only(answer.recognition.text) == image.label:
            verdict = Verdict(channel, answer.prediction_id, user_id, correct=True)
            taught.right += 1
        else:
            # ❌ opens the correction; the next typed message is the right number (Telegram's handle_text).
            await reader.digits_to_correct(channel, answer.prediction_id, user_id)
            await reader.begin_correction(channel, user_id, user_id, answer.prediction_id, message_id * 2 + 1)
            pending = await reader.pending_correction(channel, user_id, user_id)
            corrected = parse_correction(image.label)
            if pending is None or corrected is None:
                raise RuntimeError(f"the correction of {image.name} was not awaited")
            await reader.end_correction(channel, user_id, user_id)
            verdict = Verdict(
                channel, pending.prediction_id, user_id, correct=False, corrected_digits=corrected
            )
            taught.corrected += 1
        await reader.judge(verdict)
    taught.labelled_samples = _labelled_samples_of(services, user_id)
    return taught


def _labelled_samples_of(services: Services, user_id: int) -> int:
    """How many of this user's stored samples got a known digit from their verdicts."""
    from sqlalchemy import func, select

    from db.ids import stored_id
    from db.models import DigitSample, Prediction

    with services.sessions() as session:
        count = session.scalar(
            select(func.count(DigitSample.id))
            .join(Prediction, Prediction.id == DigitSample.prediction_id)
            .where(Prediction.user_id == stored_id(user_id, services.settings.id_secret))
            .where(DigitSample.label.is_not(None))
        )
    return count or 0


class PrintedProgress:
    """An admin channel that prints the run's epochs and the notes for admins."""

    def __init__(self) -> None:
        self.epochs_printed = 0

    async def progress(self, run: RunProgress) -> None:
        """Print each finished epoch once."""
        for row in run.history[self.epochs_printed :]:
            metrics = ", ".join(f"{name} {value:.4g}" for name, value in row.items() if name != "epoch")
            print(f"  epoch {row['epoch']:.0f}/{run.total_epochs}: {metrics}", file=sys.stderr, flush=True)
        self.epochs_printed = len(run.history)

    async def finished(self, run: RunProgress, curves_png: bytes | None) -> None:
        """Print how the run ended."""
        print(f"  run #{run.run_id} ended: {run.status.value}", file=sys.stderr, flush=True)

    async def notify(self, text: str) -> None:
        """Print a note for the admins (a skipped scheduled run)."""
        print(f"  admins told: {text}", file=sys.stderr, flush=True)


async def teach_and_retrain(
    settings: Settings, taught: dict[str, list[DevImage]]
) -> tuple[dict[str, Teaching], RunSummary | None, int]:
    """Teach each source as its own user, then run the scheduled retraining; the run and the minimum used."""
    from bot.core.reading_pool import ReadingPool
    from bot.core.services import build_services
    from bot.service import prepare_database
    from db import repository

    sessions = prepare_database(settings)
    services = build_services(settings, sessions, ReadingPool(settings.model_dir, settings.reading_workers))
    services.admins.add(PrintedProgress())
    try:
        teachings = {}
        for index, (source, images) in enumerate(taught.items()):
            teachings[source] = await teach(services, FIRST_USER_ID + index, images)
            print(f"  taught {source}: {teachings[source]}", file=sys.stderr, flush=True)
        new_samples = await services.trainer.new_labelled_samples()
        minimum = settings.retrain_min_new_samples
        if new_samples < minimum:
            # The real schedule waits until the minimum has arrived; here the one retraining runs now.
            services.schedule.settings = settings.model_copy(update={"retrain_min_new_samples": new_samples})
        await services.schedule.retrain()
        await services.trainer.wait()
        with sessions() as session:
            runs = repository.recent_runs(session, limit=1)
    finally:
        await asyncio.to_thread(services.pool.close)
    return teachings, (runs[0] if runs else None), min(minimum, new_samples)


def scratch_settings(settings: Settings, scratch: Path, epochs: int | None) -> Settings:
    """The service's settings with the scratch database and models, one process, no Redis."""
    return settings.model_copy(
        update={
            "model_dir": scratch / "models",
            "database_url": f"sqlite:///{(scratch / 'bot.sqlite3').as_posix()}",
            "redis_url": None,
            "training_backend": "local",
            "reading_workers": 1,
            "retrain_epochs": epochs or settings.retrain_epochs,
        }
    )


def print_settings(settings: Settings, epochs_override: int | None) -> None:
    """Say which settings the retraining runs with."""
    from bot.core.training_job import USER_SAMPLES_PER_DIGIT
    from mnist_engine.training.architectures import ARCHITECTURES
    from mnist_engine.training.train import TrainingConfig

    architecture = settings.retrain_architecture
    if settings.retrain_fine_tune:
        start = "fine-tuning the serving model (when it is this architecture)"
        epochs = settings.retrain_epochs or settings.fine_tune_epochs
        start += f" at a learning rate of {settings.fine_tune_learning_rate:g}"
    else:
        start = "training anew"
        epochs = settings.retrain_epochs or ARCHITECTURES[architecture].default_epochs
    print(
        f"Retraining settings: architecture {architecture}, {start}, epochs {epochs}"
        + (" (--epochs: a trial, not the real setting)" if epochs_override else "")
        + f", user sample weight {settings.user_sample_weight:g}, users' digits repeated to at least "
        f"{settings.user_sample_share:.0%} of an epoch's weight, users' holdout "
        f"{TrainingConfig.extra_holdout_fraction:.0%}, at most {USER_SAMPLES_PER_DIGIT} user samples "
        f"per digit, MNIST validation {settings.training_validation_size}, train limit "
        f"{settings.training_train_limit or 'none'}, promotion tolerance {settings.promotion_tolerance:.2%}."
    )


@dataclass(frozen=True)
class Retraining:
    """One scheduled retraining in its own scratch folder: what was taught, its run, the minimum used."""

    settings: Settings
    teachings: dict[str, Teaching]
    run: RunSummary
    minimum: int
    candidate: ProbabilityModel


def retrain_in(
    folder: Path, model_dir: Path, settings: Settings, epochs: int | None, taught: dict[str, list[DevImage]]
) -> Retraining | str:
    """Copy the serving models into `folder`, teach `taught` into a fresh database there and retrain.

    Returns why no model came out, when none did.
    """
    from mnist_engine.registry import ModelRegistry
    from mnist_engine.serving import Classifier

    folder.mkdir(parents=True)
    shutil.copytree(model_dir, folder / "models", ignore=shutil.ignore_patterns(".staging-*", "*.lock"))
    run_settings = scratch_settings(settings, folder, epochs)
    teachings, run, minimum = asyncio.run(teach_and_retrain(run_settings, taught))
    if run is None or run.model_version is None:
        return "no run was started" if run is None else f"run #{run.id} {run.status.value}: {run.error}"
    candidate = Classifier.load(ModelRegistry(run_settings.model_dir).path(run.model_version))
    return Retraining(run_settings, teachings, run, minimum, candidate)


def main(argv: Sequence[str] | None = None) -> int:
    """Choose the sources, teach half of each, retrain as scheduled with and without, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dev-dir", type=Path, default=DEFAULT_DEV_DIR)
    parser.add_argument("--model-dir", type=Path, help="the serving models (default: MNIST_MODEL_DIR)")
    parser.add_argument("--sources", type=int, default=DEFAULT_SOURCES, help="how many sources to teach")
    parser.add_argument("--seed", type=int, default=0, help="seeds the split of each source in halves")
    parser.add_argument("--epochs", type=int, help="override the retraining's epochs (a quick trial only)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (models, database)")
    arguments = parser.parse_args(argv)
    if arguments.sources < 1:
        parser.error("--sources must be at least 1")

    dev_dir = arguments.dev_dir.resolve()
    if not (dev_dir / "labels.tsv").is_file():
        print(f"No development photos at {dev_dir} (labels.tsv is missing); pass --dev-dir.", file=sys.stderr)
        return 2

    from bot.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"The settings are wrong:\n{error}", file=sys.stderr)
        return 2
    model_dir = (arguments.model_dir or settings.model_dir).resolve()
    settings = settings.model_copy(update={"model_dir": model_dir, "data_dir": settings.data_dir.resolve()})
    # The trainer is `python -m mnist_engine` in a child process: run from here, it is this project's.
    os.chdir(PROJECT_ROOT)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from mnist_engine.registry import ModelRegistry
    from mnist_engine.serving import Classifier

    serving_version = ModelRegistry(model_dir).current_version()
    if serving_version is None:
        print(f"No model is serving in {model_dir}: train one first or pass --model-dir.", file=sys.stderr)
        return 2
    serving = Classifier.load(ModelRegistry(model_dir).path(serving_version))

    groups = group_by_source(load_single_digits(dev_dir), MIN_IMAGES_PER_SOURCE)
    scores = {source: read_all(images, serving) for source, images in groups.items()}
    chosen = choose_sources(scores, arguments.sources)
    _print_survey(serving_version, groups, scores, chosen)

    halves = {source: split_halves(groups[source], arguments.seed) for source in chosen}
    scratch = Path(tempfile.mkdtemp(prefix="handwriting-benchmark-"))
    try:
        print_settings(scratch_settings(settings, scratch, arguments.epochs), arguments.epochs)
        print("Teaching and retraining, then the control retraining (progress on stderr)...\n", flush=True)
        taught = {source: halves[source][0] for source in chosen}
        corrected = retrain_in(scratch / "corrected", model_dir, settings, arguments.epochs, taught)
        print("  control: the same scheduled retraining, no feedback in its database", file=sys.stderr)
        control = retrain_in(scratch / "control", model_dir, settings, arguments.epochs, {})
        for name, outcome in (("corrected", corrected), ("control", control)):
            if isinstance(outcome, str):
                print(f"The {name} retraining made no model ({outcome}).", file=sys.stderr)
                return 1
        assert isinstance(corrected, Retraining) and isinstance(control, Retraining)
        _print_results(chosen, halves, scores, corrected, control)
    finally:
        if arguments.keep:
            print(f"\nScratch folder kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


def _print_survey(
    version: str, groups: dict[str, list[DevImage]], scores: dict[str, SourceScore], chosen: list[str]
) -> None:
    """Every eligible source as the serving model reads it, worst first, and which were chosen."""
    print(
        f"Serving model {version} on the {len(groups)} sources with at least {MIN_IMAGES_PER_SOURCE} "
        f"single digits; the {len(chosen)} it reads worst (lowest mean P(true digit)) are chosen:\n"
    )
    print("| source | images | read right | mean P(true digit) | chosen |")
    print("|---|---|---|---|---|")
    for source in rank_sources(scores):
        score, mark = scores[source], "yes" if source in chosen else ""
        print(
            f"| {source} | {score.total} | {percent(score.right, score.total)} | "
            f"{score.mean_probability:.3f} | {mark} |"
        )
    for source in chosen:
        misread = [
            f"{image.name} ({image.kind}) {image.label} read {scores[source].readings[image.name]!r}"
            for image in groups[source]
            if scores[source].readings[image.name] != image.label
        ]
        print(f"\n{source} misread: {'; '.join(misread) or 'none'}", end="")
    print("\n")


def measured_score(score: SourceScore, measured: Sequence[DevImage]) -> SourceScore:
    """The part of a whole source's score that covers the measured images."""
    part = SourceScore()
    for image in measured:
        part.add(image, score.readings[image.name], score.probabilities[image.name])
    return part


def merged(scores: Sequence[SourceScore]) -> SourceScore:
    """Several sources' scores as one (every image counts once)."""
    whole = SourceScore()
    for score in scores:
        whole.readings.update(score.readings)
        whole.probabilities.update(score.probabilities)
        whole.right += score.right
        whole.total += score.total
    return whole


def _print_results(
    chosen: list[str],
    halves: dict[str, tuple[list[DevImage], list[DevImage]]],
    scores: dict[str, SourceScore],
    corrected: Retraining,
    control: Retraining,
) -> None:
    """The before / after / control table, the runs' promotion decisions and MNIST figures."""
    print(
        "| source | images taught | samples labelled | images measured | right before | right after "
        "| right control | P(true) before | P(true) after | P(true) control | after − control |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    columns: list[list[SourceScore]] = [[], [], []]
    taught_total = labelled_total = 0
    for source in chosen:
        taught, measured = halves[source]
        row = (
            measured_score(scores[source], measured),
            read_all(measured, corrected.candidate),
            read_all(measured, control.candidate),
        )
        labelled = corrected.teachings[source].labelled_samples
        print(_result_row(source, len(taught), labelled, row))
        for column, score in zip(columns, row, strict=True):
            column.append(score)
        taught_total, labelled_total = taught_total + len(taught), labelled_total + labelled
    totals = (merged(columns[0]), merged(columns[1]), merged(columns[2]))
    print(_result_row(f"all {len(chosen)}", taught_total, labelled_total, totals))

    teachings = corrected.teachings.values()
    print(
        f"\nThe taught halves: {sum(teaching.corrected for teaching in teachings)} answers corrected, "
        f"{sum(teaching.right for teaching in teachings)} confirmed right, "
        f"{sum(teaching.unread for teaching in teachings)} with no answer to judge; a correction whose "
        "digit count differs from the reading labels no sample. P(true): mean over the measured images "
        "of the calibrated probability of the true digit (0 when not exactly one digit was found)."
    )
    _print_run("After", corrected, f"all {len(chosen)} users' corrections together")
    _print_run("Control", control, "a fresh database with no feedback (the same settings and seed)")


def _result_row(name: str, taught: int, labelled: int, row: Sequence[SourceScore]) -> str:
    """One line of the results table."""
    before, after, control = row
    rights = " | ".join(percent(score.right, score.total) for score in row)
    means = " | ".join(f"{score.mean_probability:.3f}" for score in row)
    gain = after.mean_probability - control.mean_probability
    return f"| {name} | {taught} | {labelled} | {before.total} | {rights} | {means} | {gain:+.3f} |"


def _print_run(name: str, retraining: Retraining, what: str) -> None:
    """One retraining's run: what it trained on, its MNIST and users' figures, its promotion decision."""
    from mnist_engine.training.train import TrainingConfig

    run, settings = retraining.run, retraining.settings
    print(
        f"{name}: one scheduled retraining (Schedule.retrain) with {what}: run #{run.id}, "
        f"{run.status.value}, {run.epochs_done} epochs, {run.user_samples} user samples exported"
        + (
            f" (about {TrainingConfig.extra_holdout_fraction:.0%} of them held out for the users' slice)."
            if run.user_samples
            else "."
        )
    )
    if retraining.minimum < settings.retrain_min_new_samples:
        print(
            f"  The schedule's minimum of {settings.retrain_min_new_samples} new labelled samples was "
            f"lowered to {retraining.minimum} for this run: the real schedule would not retrain yet."
        )
    print(
        f"  MNIST test: serving {_share(run.serving_test_accuracy)}, candidate {_share(run.test_accuracy)} "
        f"(tolerance {settings.promotion_tolerance:.2%}); users' slice: serving "
        f"{_share(run.serving_users_accuracy)}, candidate {_share(run.users_accuracy)}. "
        f"Candidate {run.model_version} {'promoted' if run.promoted else 'not promoted'}: "
        f"{run.promotion_reason}."
    )


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.2%}"


if __name__ == "__main__":
    sys.exit(main())
