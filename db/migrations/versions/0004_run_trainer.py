"""Which process trains a run (a service instance, or a worker), so that an instance starting up
marks interrupted only the runs it was training itself.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add training_runs.trainer (a plain ADD COLUMN: a batch rebuild would drop the one-active-run index)."""
    op.add_column("training_runs", sa.Column("trainer", sa.String(length=128), nullable=True))


def downgrade() -> None:
    """Drop the column; the one-active-run index is dropped and made again around SQLite's rebuild."""
    op.drop_index("uq_training_runs_one_active", table_name="training_runs")
    with op.batch_alter_table("training_runs") as batch:
        batch.drop_column("trainer")
    op.create_index(
        "uq_training_runs_one_active",
        "training_runs",
        [sa.text("(status IN ('queued', 'running'))")],
        unique=True,
        sqlite_where=sa.text("(status IN ('queued', 'running'))"),
        postgresql_where=sa.text("(status IN ('queued', 'running'))"),
    )
