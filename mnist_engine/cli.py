"""Command line: `python -m mnist_engine {train,evaluate,predict,info}`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from mnist_engine.registry import MODEL_FILE, ModelRegistry, RegistryError
from mnist_engine.settings import get_settings
from mnist_engine.shipped_model import install_shipped_model
from mnist_engine.training.events import RunReport, TrainingEvent, encode_line

logger = logging.getLogger("mnist_engine")
Number = TypeVar("Number", int, float)


class CommandError(Exception):
    """A problem the user can fix, reported as one line without a traceback."""


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, run the command, turn known errors into one clear line."""
    quiet_tensorflow()
    parser = build_parser()
    arguments = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if arguments.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from mnist_engine.serving import NoModelError
    from mnist_engine.training.dataset import DatasetError

    # Only errors a user can act on become one line; anything else keeps its traceback.
    try:
        return int(arguments.handler(arguments))
    except (CommandError, DatasetError, RegistryError, NoModelError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    """Describe the commands and their options."""
    from mnist_engine.training.architectures import ARCHITECTURES, DEFAULT_ARCHITECTURE

    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m mnist_engine", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(dest="command", required=True)

    train_parser = commands.add_parser(
        "train", help="train a model, store it as a version, promote it if better"
    )
    train_parser.add_argument(
        "--arch",
        default=DEFAULT_ARCHITECTURE,
        choices=sorted(ARCHITECTURES),
        help=f"architecture (default: {DEFAULT_ARCHITECTURE}, ready in minutes on a CPU)",
    )
    train_parser.add_argument("--epochs", type=int, help="epochs (default: the architecture's own)")
    train_parser.add_argument("--batch-size", type=int)
    train_parser.add_argument("--learning-rate", type=float)
    train_parser.add_argument("--seed", type=int, default=42)
    train_parser.add_argument(
        "--train-limit",
        type=int,
        default=settings.training_train_limit,
        help="use only the first N training images",
    )
    train_parser.add_argument(
        "--test-limit",
        type=int,
        default=settings.training_test_limit,
        help="evaluate on the first N test images",
    )
    train_parser.add_argument("--validation-size", type=int, default=settings.training_validation_size)
    train_parser.add_argument("--no-augment", action="store_true", help="switch augmentation off")
    train_parser.add_argument(
        "--fine-tune",
        action="store_true",
        help="start from the serving model when it has this architecture, and train it briefly at a "
        "low learning rate (the scheduled retraining does)",
    )
    train_parser.add_argument(
        "--photo-crops",
        type=int,
        default=settings.training_photo_crops,
        help="training digits photographed and cut out by the photo pipeline, mixed in (0: MNIST alone)",
    )
    train_parser.add_argument(
        "--extra", type=Path, help="npz of extra samples (`images`, `labels`) to mix in"
    )
    train_parser.add_argument(
        "--extra-weight", type=float, default=settings.user_sample_weight, help="weight of each extra sample"
    )
    train_parser.add_argument(
        "--extra-share",
        type=float,
        default=settings.user_sample_share,
        help="the extra samples are repeated until they carry at least this share of an epoch's weight",
    )
    train_parser.add_argument(
        "--no-promote", action="store_true", help="store the version without serving it"
    )
    train_parser.add_argument(
        "--tolerance",
        type=float,
        default=settings.promotion_tolerance,
        help="promote unless MNIST test accuracy drops more than this below the serving model's",
    )
    train_parser.add_argument(
        "--checkpoint", type=Path, help="keep the best epoch so far in this .keras file as the run goes"
    )
    train_parser.add_argument("--json", action="store_true", help="print one JSON event per line")
    train_parser.add_argument(
        "--niceness",
        type=int,
        default=0,
        help="lower this process's priority by N, so a service's own work stays ahead",
    )
    train_parser.set_defaults(handler=command_train)

    evaluate_parser = commands.add_parser("evaluate", help="evaluate a stored model on the MNIST test set")
    evaluate_parser.add_argument("--version", help="version to evaluate (default: the serving one)")
    evaluate_parser.add_argument("--json", action="store_true")
    evaluate_parser.set_defaults(handler=command_evaluate)

    predict_parser = commands.add_parser("predict", help="read the digits in image files")
    predict_parser.add_argument("paths", nargs="+", type=Path)
    predict_parser.add_argument("--json", action="store_true", help="one JSON object per input")
    predict_parser.set_defaults(handler=command_predict)

    info_parser = commands.add_parser("info", help="show settings, data and stored models")
    info_parser.add_argument("--json", action="store_true")
    info_parser.set_defaults(handler=command_info)
    return parser


def command_train(arguments: argparse.Namespace) -> int:
    """Train, store and (by default) promote; SIGTERM or Ctrl-C cancels at the next batch."""
    from mnist_engine.training.store import load_extra_samples, train_and_store
    from mnist_engine.training.train import TrainingCancelled, TrainingConfig

    if arguments.niceness:
        os.nice(arguments.niceness)
    settings = get_settings()
    initial_model = serving_model_file(settings.model_dir, arguments.arch) if arguments.fine_tune else None
    if initial_model is not None:
        print(f"Fine-tuning the serving model {initial_model.parent.name}", file=sys.stderr, flush=True)
    elif arguments.fine_tune:
        print(f"No serving {arguments.arch} model to fine-tune: training anew", file=sys.stderr, flush=True)
    fine_tuning = initial_model is not None
    try:
        config = TrainingConfig(
            architecture=arguments.arch,
            epochs=fine_tune_default(arguments.epochs, settings.fine_tune_epochs, fine_tuning),
            batch_size=arguments.batch_size,
            learning_rate=fine_tune_default(
                arguments.learning_rate, settings.fine_tune_learning_rate, fine_tuning
            ),
            initial_model=None if initial_model is None else str(initial_model),
            augment=False if arguments.no_augment else None,
            seed=arguments.seed,
            train_limit=arguments.train_limit,
            test_limit=arguments.test_limit,
            validation_size=arguments.validation_size,
            extra_sample_weight=arguments.extra_weight,
            extra_min_share=arguments.extra_share,
            photo_crops=arguments.photo_crops,
        ).resolved()
        extra = load_extra_samples(arguments.extra) if arguments.extra else None
    except ValueError as error:  # the options, or the extra samples' file, are wrong
        raise CommandError(str(error)) from error
    cancel_event = threading.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda *_: cancel_event.set())

    def on_event(event: TrainingEvent) -> None:
        if arguments.json:
            print(encode_line(event), flush=True)
        elif event.kind != "batch":
            print(describe_event(event), flush=True)

    try:
        outcome = train_and_store(
            settings.data_dir,
            settings.model_dir,
            config,
            extra=extra,
            on_event=on_event,
            cancel_event=cancel_event,
            promote=not arguments.no_promote,
            tolerance=arguments.tolerance,
            checkpoint_path=arguments.checkpoint,
        )
    except TrainingCancelled:
        report(
            RunReport(
                version=None,
                architecture=config.architecture,
                epochs_done=0,
                cancelled=True,
                promoted=False,
                promotion_reason="the run was cancelled",
            ),
            arguments.json,
        )
        return 0
    result, decision = outcome.result, outcome.decision
    if decision is not None:
        reason = decision.reason
    else:
        reason = "the run was cancelled" if result.cancelled else "promotion not requested"
    report(
        RunReport(
            version=outcome.version,
            architecture=result.config.architecture,
            epochs_done=result.epochs_done,
            cancelled=result.cancelled,
            promoted=bool(decision and decision.promote),
            promotion_reason=reason,
            seconds=round(result.seconds, 1),
            best_val_accuracy=result.best_val_accuracy,
            test_accuracy=result.evaluation.accuracy,
            test_loss=result.evaluation.loss,
            stopped_early=result.stopped_early,
            extra_train_samples=result.data["extra_train_images"],
            users_accuracy=None if result.extra_evaluation is None else result.extra_evaluation.accuracy,
            current_test_accuracy=None
            if decision is None or decision.current is None
            else decision.current.mnist_accuracy,
            current_users_accuracy=None
            if decision is None or decision.current is None
            else decision.current.users_accuracy,
            model_path=None if outcome.version is None else str(settings.model_dir / outcome.version),
        ),
        arguments.json,
    )
    return 0


def report(summary: RunReport, as_json: bool) -> None:
    """Print a run's outcome: one JSON line, or two lines for a person."""
    if as_json:
        print(encode_line(summary), flush=True)
        return
    if summary.cancelled:
        print(f"Cancelled after {summary.epochs_done} epochs; no version stored.")
        return
    print(
        f"Stored {summary.version}: test accuracy {summary.test_accuracy:.2%}, "
        f"loss {summary.test_loss:.4f}, {summary.epochs_done} epochs in {summary.seconds:.0f} s"
    )
    print(("Promoted: " if summary.promoted else "Not promoted: ") + summary.promotion_reason)


def command_evaluate(arguments: argparse.Namespace) -> int:
    """Evaluate the serving (or a named) version on the MNIST test set through the serving path."""
    from mnist_engine.serving import Classifier, NoModelError
    from mnist_engine.training.dataset import load_mnist
    from mnist_engine.training.evaluation import evaluate_probabilities

    settings = get_settings()
    registry = ModelRegistry(settings.model_dir)
    version = arguments.version or registry.current_version()
    if version is None:
        raise NoModelError("No model is serving yet. Train one with `python -m mnist_engine train`.")
    classifier = Classifier.load(registry.path(version))
    mnist = load_mnist(settings.data_dir)
    started = time.perf_counter()
    evaluation = evaluate_probabilities(classifier.predict_proba(mnist.x_test), mnist.y_test)
    seconds = time.perf_counter() - started
    if arguments.json:
        emit_json({"version": version, **evaluation.to_dict(), "seconds": round(seconds, 2)})
    else:
        print(
            f"{version}: test accuracy {evaluation.accuracy:.2%}, loss {evaluation.loss:.4f} "
            f"({evaluation.samples} images, {seconds:.1f} s)"
        )
        print(
            "per digit: "
            + "  ".join(f"{digit}: {value:.2%}" for digit, value in enumerate(evaluation.per_class_accuracy))
        )
    return 0


def command_predict(arguments: argparse.Namespace) -> int:
    """Read the digits in each image; a bad file gets an error line and the others go on."""
    from mnist_engine.photo import ImageError, recognize
    from mnist_engine.serving import CurrentModel

    settings = get_settings()
    if settings.use_shipped_model:
        installed = install_shipped_model(ModelRegistry(settings.model_dir))
        if installed is not None:
            print(f"No model yet: serving the model shipped with the code as {installed}", file=sys.stderr)
    model = CurrentModel(settings.model_dir)
    model.get()  # fail once, clearly, when no model exists
    failures = 0
    for path in arguments.paths:
        try:
            recognition = recognize(_read_file(path), model)
        except (ImageError, CommandError) as error:
            failures += 1
            if arguments.json:
                emit_json({"path": str(path), "digits": "", "confidence": 0.0, "error": str(error)})
            else:
                print(f"{path}: error: {error}")
            continue
        if arguments.json:
            emit_json({"path": str(path), **recognition.to_dict()})
        elif recognition.text:
            print(f"{path}: {recognition.text} (confidence {recognition.confidence:.1%})")
        else:
            print(f"{path}: no digit found")
    return 1 if failures else 0


def command_info(arguments: argparse.Namespace) -> int:
    """Show where data and models live and what is stored."""
    from mnist_engine.training.architectures import ARCHITECTURES, DEFAULT_ARCHITECTURE
    from mnist_engine.training.dataset import NPZ_NAME

    settings = get_settings()
    registry = ModelRegistry(settings.model_dir)
    current = registry.current_version()
    info = {
        "data_dir": str(settings.data_dir),
        "mnist_present": (settings.data_dir / NPZ_NAME).exists(),
        "model_dir": str(settings.model_dir),
        "current_version": current,
        "current_metrics": None
        if current is None
        else {
            key: value
            for key, value in registry.metadata(current)["metrics"].items()
            if key in ("test_accuracy", "test_loss", "best_val_accuracy")
        },
        "versions": registry.versions(),
        "architectures": {name: architecture.description for name, architecture in ARCHITECTURES.items()},
        "default_architecture": DEFAULT_ARCHITECTURE,
    }
    if arguments.json:
        emit_json(info)
        return 0
    for key, value in info.items():
        print(f"{key}: {value}")
    return 0


def describe_event(event: TrainingEvent) -> str:
    """One human line for a training event."""
    metrics = event.metrics
    if event.kind == "epoch":
        return (
            f"epoch {event.epoch}/{event.total_epochs}: loss {metrics.get('loss', 0):.4f} "
            f"accuracy {metrics.get('accuracy', 0):.4f} val_loss {metrics.get('val_loss', 0):.4f} "
            f"val_accuracy {metrics.get('val_accuracy', 0):.4f} lr {metrics.get('learning_rate', 0):.2g} "
            f"({event.elapsed_seconds:.0f} s, ETA {event.eta_seconds or 0:.0f} s)"
        )
    return event.message or event.kind


def emit_json(payload: dict[str, Any]) -> None:
    """Print one JSON object on one line and flush, so a parent process sees it at once."""
    print(json.dumps(payload, default=str), flush=True)


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ start-up chatter out of the command's output."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _read_file(path: Path, limit_bytes: int = 50 * 1024 * 1024) -> bytes:
    try:
        size = path.stat().st_size
        if size > limit_bytes:
            raise CommandError(f"{size / 1e6:.0f} MB is larger than the {limit_bytes / 1e6:.0f} MB limit")
        return path.read_bytes()
    except FileNotFoundError:
        raise CommandError("no such file") from None
    except IsADirectoryError:
        raise CommandError("is a directory, not an image") from None
    except PermissionError:
        raise CommandError("permission denied") from None


def serving_model_file(model_dir: Path, architecture: str) -> Path | None:
    """The serving version's Keras file when that version has `architecture`; None otherwise."""
    registry = ModelRegistry(model_dir)
    try:
        version = registry.current_version()
        if version is None or registry.metadata(version).get("architecture") != architecture:
            return None
    except RegistryError:
        return None
    path = registry.path(version) / MODEL_FILE
    return path if path.exists() else None


def fine_tune_default(given: Number | None, fine_tune_value: Number, fine_tuning: bool) -> Number | None:
    """An option as given; when not given, the fine-tuning default while fine-tuning, else None."""
    if given is not None or not fine_tuning:
        return given
    return fine_tune_value
