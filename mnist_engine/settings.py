"""The engine's settings and their defaults: one typed place, read from the environment and `.env`.

The service's settings (bot.settings) and the database's (db.settings) extend these classes, so
every part of the product reads the same variables with the same defaults.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_VALIDATION_SIZE = 5_000  # the last MNIST training images, kept aside to validate on
DEFAULT_USER_SAMPLE_WEIGHT = 5.0  # how much a user's digit counts against an MNIST one
# The users' digits carry at least this share of an epoch's weight: a few dozen corrections among
# 80,000 images would barely move the model, so they are repeated (augmented anew each time).
DEFAULT_USER_SAMPLE_SHARE = 0.05
DEFAULT_PROMOTION_TOLERANCE = 0.001  # how much MNIST test accuracy a promoted model may lose
# Training digits photographed and cut out again by the photo pipeline, mixed into MNIST
# (mnist_engine.synthetic.pipeline_crops); 0 trains on MNIST alone.
DEFAULT_PHOTO_CROPS = 30_000
# A scheduled retraining starts from the serving model and trains briefly at a low learning rate,
# so the users' digits adjust what the model knows instead of being one voice among 85,000 in a
# model trained anew.
DEFAULT_FINE_TUNE_EPOCHS = 2
DEFAULT_FINE_TUNE_LEARNING_RATE = 2e-4


class StorageSettings(BaseSettings):
    """Where MNIST, the database file and the model versions live."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    data_dir: Path = Field(default=Path("data"), alias="MNIST_DATA_DIR")
    model_dir: Path = Field(default=Path("models"), alias="MNIST_MODEL_DIR")


class EngineSettings(StorageSettings):
    """How the engine trains and promotes, as the service's runs and the command line use it."""

    promotion_tolerance: float = Field(
        default=DEFAULT_PROMOTION_TOLERANCE, ge=0, le=0.1, alias="PROMOTION_TOLERANCE"
    )
    user_sample_weight: float = Field(default=DEFAULT_USER_SAMPLE_WEIGHT, gt=0, alias="USER_SAMPLE_WEIGHT")
    user_sample_share: float = Field(
        default=DEFAULT_USER_SAMPLE_SHARE, ge=0, le=0.5, alias="USER_SAMPLE_SHARE"
    )
    training_validation_size: int = Field(
        default=DEFAULT_VALIDATION_SIZE, ge=100, alias="TRAINING_VALIDATION_SIZE"
    )
    training_photo_crops: int = Field(default=DEFAULT_PHOTO_CROPS, ge=0, alias="TRAINING_PHOTO_CROPS")
    # A first start serves the model shipped with the code (mnist_engine.shipped_model) instead of
    # reading nothing until its first training run ends.
    use_shipped_model: bool = Field(default=True, alias="SHIPPED_MODEL")
    retrain_fine_tune: bool = Field(default=True, alias="RETRAIN_FINE_TUNE")
    fine_tune_epochs: int = Field(default=DEFAULT_FINE_TUNE_EPOCHS, ge=1, le=50, alias="FINE_TUNE_EPOCHS")
    fine_tune_learning_rate: float = Field(
        default=DEFAULT_FINE_TUNE_LEARNING_RATE, gt=0, lt=1, alias="FINE_TUNE_LEARNING_RATE"
    )
    # For tests and small machines: train on the first N MNIST images, test on the first M.
    training_train_limit: int | None = Field(default=None, ge=2000, alias="TRAINING_TRAIN_LIMIT")
    training_test_limit: int | None = Field(default=None, ge=100, alias="TRAINING_TEST_LIMIT")


@lru_cache(maxsize=1)
def get_settings() -> EngineSettings:
    """Return the engine's settings, read once per process."""
    return EngineSettings()
