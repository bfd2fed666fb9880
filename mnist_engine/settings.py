"""Where the engine keeps its data and models: one typed place, read from the environment."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class EngineSettings(BaseSettings):
    """Engine settings; the bot and the scheduled job read the same variables."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    data_dir: Path = Field(default=Path("data"), alias="MNIST_DATA_DIR")
    model_dir: Path = Field(default=Path("models"), alias="MNIST_MODEL_DIR")


@lru_cache(maxsize=1)
def get_settings() -> EngineSettings:
    """Return the settings, read once per process."""
    return EngineSettings()
