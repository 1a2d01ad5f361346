"""the console: when each ticket had to be claimed by (for the response rate), and the indexes
behind the centre's map, rates and queue

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# name -> (table, columns), as in storage.models
_INDEXES: dict[str, tuple[str, list[str]]] = {
    "ix_ticket_node_created": ("ticket", ["node_id", "created_at", "status", "close_reason",
                                          "resolved_at", "claimed_at", "claim_due_at"]),
    "ix_ticket_node_claimed": ("ticket", ["node_id", "claimed_at", "created_at"]),
    "ix_ticket_resolution_node_resolved": ("ticket_resolution",
                                           ["node_id", "resolved_at", "on_time"]),
}


def upgrade() -> None:
    # Tickets reported before this revision have no such moment: the response rate leaves
    # them out rather than guess one (the timers that knew it may be gone).
    with op.batch_alter_table("ticket") as batch:
        batch.add_column(sa.Column("claim_due_at", storage.types.UTCDateTime(), nullable=True))
    for name, (table, columns) in _INDEXES.items():
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, (table, _) in reversed(_INDEXES.items()):
        op.drop_index(name, table_name=table)
    with op.batch_alter_table("ticket") as batch:
        batch.drop_column("claim_due_at")
