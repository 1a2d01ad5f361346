"""whether the bot may create forum topics in a group

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: not known for the groups there are (asked of Telegram before their next topic).
    with op.batch_alter_table("group_chat", schema=None) as batch_op:
        batch_op.add_column(sa.Column("can_manage_topics", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("group_chat", schema=None) as batch_op:
        batch_op.drop_column("can_manage_topics")
