"""Training-time augmentation: small geometric changes like the reference CNN's ImageDataGenerator."""

from __future__ import annotations

import keras


def build_augmentation(seed: int | None = None) -> keras.Sequential:
    """Return layers that randomly rotate, zoom and shift a batch of (N, 28, 28, 1) images in [0, 1].

    The layers are active only when called with `training=True`, so they belong in the
    input pipeline, not in the saved model.
    """
    return keras.Sequential(
        [
            keras.layers.RandomRotation(factor=10 / 360, fill_mode="constant", seed=seed),
            keras.layers.RandomZoom(height_factor=0.1, width_factor=0.1, fill_mode="constant", seed=seed),
            keras.layers.RandomTranslation(
                height_factor=0.1, width_factor=0.1, fill_mode="constant", seed=seed
            ),
        ],
        name="augmentation",
    )
