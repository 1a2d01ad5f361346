"""ticket resolutions: every resolution at the node that made it, for the statistics

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 01:46:00.944868
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ticket_resolution",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "node_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("resolved_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["node_id"], ["org_node.id"], name=op.f("fk_ticket_resolution_node_id_org_node")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_ticket_resolution_ticket_id_ticket")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_resolution")),
    )
    with op.batch_alter_table("ticket_resolution", schema=None) as batch_op:
        batch_op.create_index("ix_ticket_resolution_resolved_at", ["resolved_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_ticket_resolution_ticket_id"), ["ticket_id"], unique=False
        )
    # What is known of the resolutions made so far: each ticket's latest (resolved_at, at
    # the node that has it), and those a reopening cleared, from the follow-up rounds they
    # started (a round's surveys are written at the resolution, with the resolving node).
    op.execute(
        "INSERT INTO ticket_resolution (ticket_id, node_id, resolved_at, on_time) "
        "SELECT id, node_id, resolved_at, on_time FROM ticket WHERE resolved_at IS NOT NULL"
    )
    op.execute(
        "INSERT INTO ticket_resolution (ticket_id, node_id, resolved_at, on_time) "
        "SELECT s.ticket_id, MIN(s.node_id), MIN(s.created_at), NULL "
        "FROM ticket_survey s JOIN ticket t ON t.id = s.ticket_id "
        "WHERE s.round < t.reopen_count AND s.node_id IS NOT NULL "
        "GROUP BY s.ticket_id, s.round"
    )


def downgrade() -> None:
    with op.batch_alter_table("ticket_resolution", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_resolution_ticket_id"))
        batch_op.drop_index("ix_ticket_resolution_resolved_at")
    op.drop_table("ticket_resolution")
