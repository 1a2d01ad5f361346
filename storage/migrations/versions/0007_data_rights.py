"""data rights and admin: the admin action log, erased tickets, ids that erasure removes

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The columns that hold a person's Telegram id and lose it when their data is erased. On
# SQLite a column's nullability changes only by rebuilding its table, and rebuilding a table
# other tables point at (ticket, enterprise) fails their foreign keys when it has rows: the
# old table is dropped inside the migration's transaction, where PRAGMA foreign_keys cannot
# be turned off. Those two columns are swapped in place instead (SQLite 3.35+ drops a
# column natively); ticket_survey and booking, which nothing points at, are rebuilt.
_SWAPPED = (("ticket", "reporter_id", "ix_ticket_reporter_created", "reporter_id, created_at"),
            ("enterprise", "created_by", None, None))
_REBUILT = (("ticket_survey", "user_id"), ("booking", "booked_by"))


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _swap_on_sqlite(table: str, column: str, index: str | None, indexed: str | None, *,
                    nullable: bool) -> None:
    """Replace ``column`` by a copy of it with the other nullability, keeping its index."""
    spare = f"{column}_swap"
    definition = "BIGINT" if nullable else "BIGINT NOT NULL DEFAULT 0"
    op.execute(f"ALTER TABLE {table} ADD COLUMN {spare} {definition}")
    op.execute(f"UPDATE {table} SET {spare} = {column}")
    if index:
        op.execute(f"DROP INDEX {index}")
    op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    op.execute(f"ALTER TABLE {table} RENAME COLUMN {spare} TO {column}")
    if index:
        op.execute(f"CREATE INDEX {index} ON {table} ({indexed})")


def _set_nullable(nullable: bool) -> None:
    for table, column, index, indexed in _SWAPPED:
        if _sqlite():
            _swap_on_sqlite(table, column, index, indexed, nullable=nullable)
        else:
            op.alter_column(table, column, existing_type=sa.BigInteger(), nullable=nullable)
    for table, column in _REBUILT:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=sa.BigInteger(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "admin_action",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_name", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.CheckConstraint("source IN ('telegram', 'cli', 'system')",
                           name=op.f("ck_admin_action_source")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_action")),
    )
    op.create_index("ix_admin_action_at", "admin_action", ["at"], unique=False)

    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("erased_at", storage.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_ticket_closed_at", ["closed_at"], unique=False)
    _set_nullable(True)


def downgrade() -> None:
    # Erased rows have no id to give back: 0 stands for "nobody" under NOT NULL (an answer
    # cannot, its row being unique per person).
    op.execute("DELETE FROM ticket_survey WHERE user_id IS NULL")
    for table, column, *_ in _SWAPPED:
        op.execute(f"UPDATE {table} SET {column} = 0 WHERE {column} IS NULL")
    op.execute("UPDATE booking SET booked_by = 0 WHERE booked_by IS NULL")
    _set_nullable(False)
    op.drop_index("ix_ticket_closed_at", table_name="ticket")
    if _sqlite():  # natively: batch mode would rebuild the table (see _SWAPPED)
        op.execute("ALTER TABLE ticket DROP COLUMN erased_at")
    else:
        op.drop_column("ticket", "erased_at")
    op.drop_index("ix_admin_action_at", table_name="admin_action")
    op.drop_table("admin_action")
