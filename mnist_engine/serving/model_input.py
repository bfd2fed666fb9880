"""The models' input: uint8 digits (N, 28, 28) as float32 (N, 28, 28, 1) in [0, 1]."""

from __future__ import annotations

import numpy as np


def to_model_input(images: np.ndarray) -> np.ndarray:
    """Convert uint8 images (N, 28, 28) to the models' float32 (N, 28, 28, 1) input in [0, 1]."""
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"images must have shape (N, 28, 28), got {images.shape}")
    return (images.astype(np.float32) / 255.0)[..., np.newaxis]
