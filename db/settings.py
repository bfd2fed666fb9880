"""Which database to use: DATABASE_URL, else an SQLite file in the data folder (MNIST_DATA_DIR).

The same settings, read from the environment and `.env`, as the service and the engine use, so
`python -m db` always acts on the database the bot uses.
"""

from __future__ import annotations

from pydantic import Field

from mnist_engine.settings import StorageSettings

SQLITE_FILE_NAME = "bot.sqlite3"


class DatabaseSettings(StorageSettings):
    """The database's URL; an empty DATABASE_URL means the default SQLite file."""

    database_url: str | None = Field(default=None, alias="DATABASE_URL")

    @property
    def resolved_database_url(self) -> str:
        """DATABASE_URL, or the SQLite file in the data folder."""
        return self.database_url or f"sqlite:///{(self.data_dir / SQLITE_FILE_NAME).as_posix()}"
