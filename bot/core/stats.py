"""The operator's /model and /stats: text, and one picture drawn on a matplotlib Figure (thread-safe)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from bot.core.texts import say
from db.views import RunSummary, Statistics
from mnist_engine.training.plots import draw_confusion

RUN_ERROR_SHOWN = 80  # characters of a failed run's error in the runs list


def model_text(metadata: dict[str, Any] | None) -> str:
    """Describe the serving model."""
    if metadata is None:
        return say("model.none")
    metrics = metadata["metrics"]
    data = metadata["data"]
    extra = say("model.extra", count=data["extra_train_images"]) if data.get("extra_train_images") else ""
    lines = [
        say(
            "model.serving",
            version=metadata["version"],
            architecture=metadata["architecture"],
            parameters=metadata.get("parameter_count", 0),
        ),
        say(
            "model.scores",
            test_accuracy=metrics["test_accuracy"],
            test_loss=metrics["test_loss"],
            best_val_accuracy=metrics["best_val_accuracy"],
        ),
        say(
            "model.trained",
            epochs=metadata.get("epochs_done"),
            minutes=metadata.get("training_seconds", 0) / 60,
            images=data.get("mnist_train_images", 0),
            extra=extra,
        ),
        say("model.created", created_at=metadata.get("created_at")),
    ]
    if "extra_holdout_accuracy" in metrics:
        lines.append(say("model.holdout", accuracy=metrics["extra_holdout_accuracy"]))
    return "\n".join(lines)


def stats_text(statistics: Statistics, metadata: dict[str, Any] | None) -> str:
    """The numbers an operator watches."""
    serving = say("stats.model_none")
    if metadata is not None:
        serving = say(
            "stats.model_version",
            version=metadata["version"],
            test_accuracy=metadata["metrics"]["test_accuracy"],
        )
    lines = [say("stats.model", serving=serving), *usage_lines(statistics)]
    if statistics.recent_runs:
        lines.append(say("stats.last_runs"))
        lines.extend(run_line(run) for run in statistics.recent_runs)
    return "\n".join(lines)


def usage_lines(statistics: Statistics) -> list[str]:
    """How much the product is used and how often its users say it is right (chats and dashboard)."""
    judged = (
        say(
            "stats.judged_value",
            accuracy=statistics.accuracy,
            right=statistics.judged_right,
            verdicts=statistics.feedback_count,
        )
        if statistics.accuracy is not None
        else say("stats.judged_none")
    )
    return [
        say(
            "stats.predictions",
            today=statistics.predictions_today,
            week=statistics.predictions_last_7_days,
            total=statistics.predictions_total,
        ),
        say("stats.users", count=statistics.distinct_users),
        say("stats.judged", judged=judged),
        say("stats.samples", count=statistics.labelled_samples),
    ]


def run_line(run: RunSummary) -> str:
    """One line per run: when, what, how it ended, and on what figures it was promoted or not."""
    when = (run.started_at or run.created_at).strftime("%Y-%m-%d %H:%M")
    line = say(
        "stats.run",
        run_id=run.id,
        when=when,
        architecture=run.architecture,
        trigger=run.trigger.value,
        status=run.status.value,
    )
    if run.test_accuracy is not None:
        line += say("stats.run_test", accuracy=run.test_accuracy)
    if run.users_accuracy is not None:
        serving = "–" if run.serving_users_accuracy is None else f"{run.serving_users_accuracy:.2%}"
        line += say("stats.run_users", accuracy=run.users_accuracy, serving=serving)
    if run.promoted is not None:
        line += say("stats.run_promoted") if run.promoted else say("stats.run_not_promoted")
    if run.error:
        line += say("stats.run_error", error=run.error[:RUN_ERROR_SHOWN])
    return line


def stats_picture(statistics: Statistics, history: list[RunSummary]) -> bytes:
    """Accuracy of runs over time, the last run's curves, and the users' confusion matrix, as a PNG."""
    figure = Figure(figsize=(13, 4), dpi=90)
    runs_axis, curve_axis, confusion_axis = figure.subplots(1, 3)

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
            label=say("chart.promoted"),
        )
        runs_axis.legend()
        runs_axis.tick_params(axis="x", labelrotation=30, labelsize=7)
    else:
        runs_axis.text(0.5, 0.5, say("chart.no_runs"), ha="center", va="center")
    runs_axis.set_title(say("chart.runs_title"))
    runs_axis.grid(alpha=0.3)

    last = next((run for run in reversed(history) if run.epochs), None)
    if last is not None:
        epochs = [epoch.epoch for epoch in last.epochs]
        curve_axis.plot(
            epochs, [epoch.accuracy for epoch in last.epochs], marker="o", label=say("chart.training")
        )
        curve_axis.plot(
            epochs, [epoch.val_accuracy for epoch in last.epochs], marker="o", label=say("chart.validation")
        )
        curve_axis.set_title(say("chart.curves_title", run_id=last.id))
        curve_axis.set_xlabel(say("chart.epoch"))
        curve_axis.legend()
    else:
        curve_axis.text(0.5, 0.5, say("chart.no_epochs"), ha="center", va="center")
        curve_axis.set_title(say("chart.last_run"))
    curve_axis.grid(alpha=0.3)

    draw_confusion(confusion_axis, np.asarray(statistics.confusion), say("chart.confusion_title"))
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
