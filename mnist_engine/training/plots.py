"""PNG pictures of a run, small enough to send in a chat.

Drawn on `matplotlib.figure.Figure` objects, never through pyplot: pyplot keeps global state
and is not safe to use from several threads, and the service draws from worker threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

DPI = 100


def plot_training_curves(history: Sequence[dict[str, float]], path: Path, title: str = "") -> Path:
    """Draw loss, accuracy and learning rate per epoch side by side."""
    if not history:
        raise ValueError("history is empty: there is no epoch to plot")
    epochs = [row["epoch"] for row in history]
    figure = Figure(figsize=(10, 3.2), dpi=DPI)
    loss_axis, accuracy_axis, rate_axis = figure.subplots(1, 3)
    for axis, metric, label in ((loss_axis, "loss", "Loss"), (accuracy_axis, "accuracy", "Accuracy")):
        axis.plot(epochs, [row.get(metric) for row in history], marker="o", label="training")
        axis.plot(epochs, [row.get(f"val_{metric}") for row in history], marker="o", label="validation")
        axis.set_title(label)
        axis.set_xlabel("epoch")
        axis.legend()
        axis.grid(alpha=0.3)
    rate_axis.plot(epochs, [row.get("learning_rate") for row in history], marker="o", color="tab:green")
    rate_axis.set_yscale("log")
    rate_axis.set_title("Learning rate")
    rate_axis.set_xlabel("epoch")
    rate_axis.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def plot_confusion_matrix(
    confusion: Sequence[Sequence[int]], path: Path, title: str = "Confusion matrix"
) -> Path:
    """Draw a 10×10 confusion matrix (rows: true digit, columns: predicted digit) with counts."""
    matrix = np.asarray(confusion)
    if matrix.shape != (10, 10):
        raise ValueError(f"confusion must be 10×10, got {matrix.shape}")
    figure = Figure(figsize=(5, 4.5), dpi=DPI)
    axis = figure.subplots()
    draw_confusion(axis, matrix, title)
    return _save(figure, path)


def draw_confusion(axis: Axes, matrix: np.ndarray, title: str) -> None:
    """Draw a confusion matrix on an existing axis (shared with the bot's /stats picture)."""
    # Log-scaled colours: the diagonal holds thousands, the mistakes a handful.
    axis.imshow(np.log1p(matrix), cmap="Blues")
    axis.set_xticks(range(10))
    axis.set_yticks(range(10))
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    threshold = np.log1p(matrix).max() / 2 if matrix.any() else 0
    for true_digit in range(10):
        for predicted_digit in range(10):
            count = int(matrix[true_digit, predicted_digit])
            if count:
                colour = "white" if np.log1p(count) > threshold else "black"
                axis.text(
                    predicted_digit,
                    true_digit,
                    str(count),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color=colour,
                )


def _save(figure: Figure, path: Path) -> Path:
    path = Path(path)
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path
