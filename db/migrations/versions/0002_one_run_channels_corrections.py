"""One active run at a time, the front end of each prediction, drawings, pending corrections, and
the figures each promotion was decided on.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE_RUN_CONDITION = "(status IN ('queued', 'running'))"
SOURCES_BEFORE = ("photo", "file")
SOURCES_AFTER = ("photo", "file", "drawing")
CHANNELS = ("telegram", "web", "discord")


def string_enum(name: str, *values: str) -> sa.Enum:
    """A VARCHAR holding one of values, with a CHECK constraint (as in 0001)."""
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def one_of(column: str, values: Sequence[str]) -> str:
    """The CHECK condition of a string enum column."""
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    """Add the guard, the columns and the table."""
    with op.batch_alter_table("training_runs") as batch:
        batch.add_column(sa.Column("users_accuracy", sa.Float(), nullable=True))
        batch.add_column(sa.Column("serving_version", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("serving_test_accuracy", sa.Float(), nullable=True))
        batch.add_column(sa.Column("serving_users_accuracy", sa.Float(), nullable=True))
    # After the batch: SQLite's batch mode rebuilds the table and cannot carry an expression index
    # over (a later migration that rebuilds training_runs must create it again).
    op.create_index(
        "uq_training_runs_one_active",
        "training_runs",
        [sa.text(ACTIVE_RUN_CONDITION)],
        unique=True,
        sqlite_where=sa.text(ACTIVE_RUN_CONDITION),
        postgresql_where=sa.text(ACTIVE_RUN_CONDITION),
    )
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(
            sa.Column("channel", sa.String(length=16), server_default="telegram", nullable=False)
        )
        batch.create_check_constraint(op.f("ck_predictions_channel"), one_of("channel", CHANNELS))
        batch.drop_constraint(op.f("ck_predictions_prediction_source"), type_="check")
        batch.create_check_constraint(
            op.f("ck_predictions_prediction_source"), one_of("source", SOURCES_AFTER)
        )
    op.create_table(
        "pending_corrections",
        sa.Column("channel", string_enum("channel", *CHANNELS), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("prediction_id", sa.Integer(), nullable=False),
        sa.Column("answer_message_id", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["prediction_id"],
            ["predictions.id"],
            name=op.f("fk_pending_corrections_prediction_id_predictions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel", "chat_id", "user_id", name=op.f("pk_pending_corrections")),
    )


def downgrade() -> None:
    """Remove what upgrade added; drawings become files, the closest kind 0001 knows."""
    op.drop_table("pending_corrections")
    op.execute("UPDATE predictions SET source = 'file' WHERE source = 'drawing'")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_constraint(op.f("ck_predictions_prediction_source"), type_="check")
        batch.create_check_constraint(
            op.f("ck_predictions_prediction_source"), one_of("source", SOURCES_BEFORE)
        )
        batch.drop_constraint(op.f("ck_predictions_channel"), type_="check")
        batch.drop_column("channel")
    op.drop_index("uq_training_runs_one_active", table_name="training_runs")
    with op.batch_alter_table("training_runs") as batch:
        batch.drop_column("serving_users_accuracy")
        batch.drop_column("serving_test_accuracy")
        batch.drop_column("serving_version")
        batch.drop_column("users_accuracy")
