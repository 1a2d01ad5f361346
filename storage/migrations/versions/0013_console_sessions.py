"""the centres' console: sign-ins through the bot and the sessions they open

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_signin",
        sa.Column("nonce_hash", sa.String(length=64), nullable=False),
        sa.Column("browser_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("name", sa.String(length=128), nullable=True),
        sa.Column("roots", sa.JSON(), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", storage.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint("state IN ('waiting', 'confirmed', 'used', 'refused')",
                           name=op.f("ck_console_signin_state")),
        sa.PrimaryKeyConstraint("nonce_hash", name=op.f("pk_console_signin")),
    )
    op.create_index(op.f("ix_console_signin_browser_hash"), "console_signin", ["browser_hash"])
    op.create_index(op.f("ix_console_signin_expires_at"), "console_signin", ["expires_at"])
    op.create_table(
        "console_session",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("roots", sa.JSON(), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("checked_at", storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_console_session")),
    )
    op.create_index(op.f("ix_console_session_user_id"), "console_session", ["user_id"])
    op.create_index(op.f("ix_console_session_last_seen_at"), "console_session",
                    ["last_seen_at"])


def downgrade() -> None:
    op.drop_table("console_session")
    op.drop_table("console_signin")
