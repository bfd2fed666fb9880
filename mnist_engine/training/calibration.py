"""Temperature scaling: make a model's confidence mean what it says (Guo et al., 2017).

A network trained with cross-entropy is over-confident on digits unlike its training data, so
"99% sure" on a photo is wrong more often than 1 time in 100. One number, the temperature T,
fitted on held-out digits, divides the log-probabilities before the softmax:
p_i ∝ p_i^(1/T). It never changes which digit wins, only how sure the answer says it is, and so
when the bot hedges and offers its two best readings.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from mnist_engine.serving.calibration import apply_temperature
from mnist_engine.serving.model_input import to_model_input

TEMPERATURE_BOUNDS = (0.25, 10.0)
_BATCH_SIZE = 512


def fit_temperature(model: Any, images: np.ndarray, labels: np.ndarray) -> float:
    """Return the temperature that minimises the negative log-likelihood of `labels`; 1.0 without data."""
    if len(labels) == 0:
        return 1.0
    probabilities = np.asarray(model.predict(to_model_input(images), batch_size=_BATCH_SIZE, verbose=0))
    return temperature_for(probabilities, np.asarray(labels, dtype=np.int64))


def temperature_for(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Fit the temperature to (N, 10) probabilities and their true labels."""

    def negative_log_likelihood(log_temperature: float) -> float:
        calibrated = apply_temperature(probabilities, float(np.exp(log_temperature)))
        return float(-np.mean(np.log(np.maximum(calibrated[np.arange(len(labels)), labels], 1e-12))))

    low, high = np.log(TEMPERATURE_BOUNDS)
    result = minimize_scalar(negative_log_likelihood, bounds=(low, high), method="bounded")
    return float(np.exp(result.x))
