"""The admin's /stats and /model: text and one picture."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers; chosen before pyplot is imported
import matplotlib.pyplot as plt
import numpy as np

from db.views import RunSummary, Statistics
from mnist_engine.plots import draw_confusion


def model_text(metadata: dict[str, Any] | None) -> str:
    """Describe the serving model."""
    if metadata is None:
        return "No model is serving yet."
    metrics = metadata["metrics"]
    lines = [
        f"Serving model {metadata['version']} ({metadata['architecture']}, "
        f"{metadata.get('parameter_count', 0):,} parameters)",
        f"Test accuracy {metrics['test_accuracy']:.2%} · test loss {metrics['test_loss']:.4f} · "
        f"best val accuracy {metrics['best_val_accuracy']:.2%}",
        f"Trained {metadata.get('epochs_done')} epochs in {metadata.get('training_seconds', 0) / 60:.1f} min "
        f"on {metadata['data'].get('mnist_train_images', 0):,} MNIST images"
        + (
            f" + {metadata['data']['extra_train_images']} user samples"
            if metadata["data"].get("extra_train_images")
            else ""
        ),
        f"Created {metadata.get('created_at')}",
    ]
    if "extra_holdout_accuracy" in metrics:
        lines.append(f"Held-out user samples: {metrics['extra_holdout_accuracy']:.2%} right")
    return "\n".join(lines)


def stats_text(statistics: Statistics, metadata: dict[str, Any] | None) -> str:
    """The numbers an operator watches."""
    serving = "none yet"
    if metadata is not None:
        serving = f"{metadata['version']} (test accuracy {metadata['metrics']['test_accuracy']:.2%})"
    judged = (
        f"{statistics.accuracy:.1%} right ({statistics.judged_right} of {statistics.feedback_count} verdicts)"
        if statistics.accuracy is not None
        else "no verdicts yet"
    )
    lines = [
        f"📊 Model: {serving}",
        f"Predictions: {statistics.predictions_today} today · "
        f"{statistics.predictions_last_7_days} in 7 days · {statistics.predictions_total} in total",
        f"Users: {statistics.distinct_users}",
        f"Accuracy as users judged it: {judged}",
        f"Labelled samples for retraining: {statistics.labelled_samples}",
    ]
    if statistics.recent_runs:
        lines.append("\nLast runs:")
        lines.extend(run_line(run) for run in statistics.recent_runs)
    return "\n".join(lines)


def run_line(run: RunSummary) -> str:
    """One line per run: when, what, how it ended."""
    when = (run.started_at or run.created_at).strftime("%Y-%m-%d %H:%M")
    line = f"#{run.id} {when} {run.architecture} ({run.trigger.value}) — {run.status.value}"
    if run.test_accuracy is not None:
        line += f", test {run.test_accuracy:.2%}"
    if run.promoted is not None:
        line += ", promoted" if run.promoted else ", not promoted"
    if run.error:
        line += f": {run.error[:80]}"
    return line


def stats_picture(statistics: Statistics, history: list[RunSummary]) -> bytes:
    """Accuracy of runs over time, the last run's curves, and the users' confusion matrix, as a PNG."""
    figure, (runs_axis, curve_axis, confusion_axis) = plt.subplots(1, 3, figsize=(13, 4), dpi=90)

    finished = [run for run in history if run.test_accuracy is not None and run.finished_at is not None]
    if finished:
        runs_axis.plot(
            [run.finished_at for run in finished], [run.test_accuracy for run in finished], marker="o"
        )
        promoted = [run for run in finished if run.promoted]
        runs_axis.scatter(
            [run.finished_at for run in promoted],
            [run.test_accuracy for run in promoted],
            color="tab:green",
            zorder=3,
            label="promoted",
        )
        runs_axis.legend()
        runs_axis.tick_params(axis="x", labelrotation=30, labelsize=7)
    else:
        runs_axis.text(0.5, 0.5, "no finished runs yet", ha="center", va="center")
    runs_axis.set_title("Test accuracy of runs")
    runs_axis.grid(alpha=0.3)

    last = next((run for run in reversed(history) if run.epochs), None)
    if last is not None:
        epochs = [epoch.epoch for epoch in last.epochs]
        curve_axis.plot(epochs, [epoch.accuracy for epoch in last.epochs], marker="o", label="training")
        curve_axis.plot(epochs, [epoch.val_accuracy for epoch in last.epochs], marker="o", label="validation")
        curve_axis.set_title(f"Run #{last.id}: accuracy per epoch")
        curve_axis.set_xlabel("epoch")
        curve_axis.legend()
    else:
        curve_axis.text(0.5, 0.5, "no epochs recorded yet", ha="center", va="center")
        curve_axis.set_title("Last run")
    curve_axis.grid(alpha=0.3)

    draw_confusion(confusion_axis, np.asarray(statistics.confusion), "Users' corrections (true × read)")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
