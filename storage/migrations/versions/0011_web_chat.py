"""the web chat: its residents, their browsers' sessions, their conversations and photos

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "web_resident",
        sa.Column("id", _AutoId, nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("recovery_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_resident")),
        sa.UniqueConstraint("recovery_hash", name=op.f("uq_web_resident_recovery_hash")),
    )
    op.create_table(
        "web_session",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("resident_id", _AutoId, nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("rotated", sa.Boolean(), nullable=False),
        sa.Column("at_code", sa.String(length=48), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["resident_id"], ["web_resident.id"], ondelete="CASCADE",
                                name=op.f("fk_web_session_resident_id_web_resident")),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_web_session")),
    )
    op.create_index(op.f("ix_web_session_resident_id"), "web_session", ["resident_id"])
    op.create_index(op.f("ix_web_session_last_seen_at"), "web_session", ["last_seen_at"])
    op.create_table(
        "web_entry",
        sa.Column("id", _AutoId, nullable=False),
        sa.Column("resident_id", _AutoId, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("edit", sa.Boolean(), nullable=False),
        sa.Column("sender", sa.String(length=4), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint("sender IN ('bot', 'me')", name=op.f("ck_web_entry_sender")),
        sa.ForeignKeyConstraint(["resident_id"], ["web_resident.id"], ondelete="CASCADE",
                                name=op.f("fk_web_entry_resident_id_web_resident")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_entry")),
        sa.UniqueConstraint("resident_id", "seq", name="uq_web_entry_resident_seq"),
        sa.UniqueConstraint("outbox_id", name=op.f("uq_web_entry_outbox_id")),
    )
    op.create_table(
        "web_file",
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("resident_id", _AutoId, nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["resident_id"], ["web_resident.id"], ondelete="CASCADE",
                                name=op.f("fk_web_file_resident_id_web_resident")),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_web_file")),
    )
    op.create_index(op.f("ix_web_file_resident_id"), "web_file", ["resident_id"])


def downgrade() -> None:
    op.drop_table("web_file")
    op.drop_table("web_entry")
    op.drop_table("web_session")
    op.drop_table("web_resident")
