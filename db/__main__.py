"""Command line: `python -m db upgrade | downgrade | current | purge --days N`.

It acts on the service's database (DATABASE_URL, else the SQLite file in MNIST_DATA_DIR, both also
read from `.env`), or on the one --url names.
"""

from __future__ import annotations

import argparse
import sys

from alembic.util import CommandError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from db import repository
from db.session import (
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    make_session_factory,
    upgrade,
)
from db.settings import DatabaseSettings


def main(argv: list[str] | None = None) -> int:
    """Run one command and return the process exit status."""
    args = _parser().parse_args(argv)
    try:
        args.command(args)
    except (ArgumentError, ImportError, OSError, ValueError, CommandError, DBAPIError) as error:
        print(f"db: error: {_one_line(error, args.url)}", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    """The argument parser with one subcommand per action."""
    parser = argparse.ArgumentParser(prog="python -m db", description="Manage the bot's database.")
    url = argparse.ArgumentParser(add_help=False)
    url.add_argument(
        "--url",
        default=DatabaseSettings().resolved_database_url,
        help="SQLAlchemy URL (default: the service's: DATABASE_URL, else the SQLite file in MNIST_DATA_DIR)",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    command = commands.add_parser(
        "upgrade", parents=[url], help="migrate the schema up (creates it if empty)"
    )
    command.add_argument("--revision", default="head", help="target revision (default: head)")
    command.set_defaults(command=_upgrade)

    command = commands.add_parser("downgrade", parents=[url], help="migrate the schema down")
    command.add_argument(
        "--revision", default="-1", help="target revision (default: -1, one step; 'base' drops every table)"
    )
    command.set_defaults(command=_downgrade)

    command = commands.add_parser("current", parents=[url], help="print the schema's revision")
    command.set_defaults(command=_current)

    command = commands.add_parser("purge", parents=[url], help="delete predictions older than N days")
    command.add_argument("--days", type=int, required=True, help="keep this many days of predictions")
    command.set_defaults(command=_purge)
    return parser


def _upgrade(args: argparse.Namespace) -> None:
    """Migrate up and say where the database now is."""
    upgrade(args.url, args.revision)
    _current(args)


def _downgrade(args: argparse.Namespace) -> None:
    """Migrate down and say where the database now is."""
    downgrade(args.url, args.revision)
    _current(args)


def _current(args: argparse.Namespace) -> None:
    """Print the database's revision next to the newest one."""
    revision = current_revision(args.url)
    head = head_revision()
    state = "empty, no migration applied" if revision is None else f"at revision {revision}"
    latest = " (latest)" if revision == head else f" (latest is {head})"
    print(f"{_safe(args.url)}: {state}{latest}")


def _purge(args: argparse.Namespace) -> None:
    """Delete old predictions and report how many went."""
    engine = make_engine(args.url)
    try:
        with make_session_factory(engine).begin() as session:
            deleted = repository.purge_older_than(session, args.days)
    finally:
        engine.dispose()
    print(f"{_safe(args.url)}: deleted {deleted} predictions older than {args.days} days")


def _safe(url: str) -> str:
    """The URL with its password masked, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _one_line(error: Exception, url: str) -> str:
    """A one-line explanation of an error, without the traceback."""
    if isinstance(error, ArgumentError):
        text = f"cannot use database URL {_safe(url)!r}: {error}"
    elif isinstance(error, ImportError):
        text = f"no driver for {_safe(url)!r} ({error}); for PostgreSQL: pip install -e '.[postgres]'"
    elif isinstance(error, DBAPIError):
        text = f"database {_safe(url)!r} failed: {error.orig or error}"
    else:
        text = str(error)
    return text.strip().splitlines()[0]


if __name__ == "__main__":
    sys.exit(main())
