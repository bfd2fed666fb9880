"""Apply a version's fitted temperature to its probabilities (the fitting is in training.calibration)."""

from __future__ import annotations

import numpy as np


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Return (N, 10) probabilities softened (T > 1) or sharpened (T < 1); T = 1 changes nothing."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if temperature == 1.0:
        return probabilities
    log_probabilities = np.log(np.maximum(probabilities, 1e-30)) / temperature
    log_probabilities -= log_probabilities.max(axis=1, keepdims=True)
    scaled = np.exp(log_probabilities)
    return np.asarray(scaled / scaled.sum(axis=1, keepdims=True), dtype=np.float32)
