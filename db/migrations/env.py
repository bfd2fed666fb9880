"""Alembic environment: migrate the connection db.session hands over, or the configured database."""

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from db.models import Base, include_in_autogenerate
from db.session import make_engine
from db.settings import DatabaseSettings

config = context.config

# Only the alembic command line sets up logging; inside the bot the application owns it.
if config.cmd_opts is not None and config.config_file_name is not None:
    fileConfig(config.config_file_name)


def run_migrations_offline() -> None:
    """Write the migrations as SQL to stdout (`alembic upgrade head --sql`) without connecting."""
    context.configure(
        url=DatabaseSettings().resolved_database_url,
        target_metadata=Base.metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations(connection: Connection) -> None:
    """Run the migrations on an open connection."""
    if connection.dialect.name == "sqlite":
        # Batch migrations copy and drop tables; with foreign keys on, the drop would cascade to child rows.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_object=include_in_autogenerate,
        # SQLite cannot ALTER most things, so autogenerate writes batch operations that rebuild tables.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate the connection handed over by db.session, or one opened on DATABASE_URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    engine = make_engine(DatabaseSettings().resolved_database_url)
    try:
        with engine.begin() as connection:
            run_migrations(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
