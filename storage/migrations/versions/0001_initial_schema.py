"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 11:05:17.142897
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("telegram_language_code", sa.String(length=35), nullable=True),
        sa.Column("unreachable", sa.Boolean(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "language IS NULL OR language IN ('zh_Hans', 'zh_Hant', 'en')",
            name=op.f("ck_app_user_language"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
    )
    op.create_table(
        "org_node",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code", sa.String(length=48), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("name_zh_hant", sa.String(length=64), nullable=True),
        sa.Column("name_en", sa.String(length=64), nullable=True),
        sa.Column("geometry", sa.Text(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "level IN ('district', 'street', 'town', 'park', 'community', 'village', 'grid', "
            "'desk')",
            name=op.f("ck_org_node_level"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["org_node.id"],
            name=op.f("fk_org_node_parent_id_org_node"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_node")),
        sa.UniqueConstraint("code", name=op.f("uq_org_node_code")),
    )
    with op.batch_alter_table("org_node", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_org_node_parent_id"), ["parent_id"], unique=False)

    op.create_table(
        "processed_update",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("processed_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("update_id", name=op.f("pk_processed_update")),
    )
    with op.batch_alter_table("processed_update", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_processed_update_processed_at"), ["processed_at"], unique=False
        )

    op.create_table(
        "group_chat",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("chat_type", sa.String(length=16), nullable=False),
        sa.Column("is_forum", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("node_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("bound_by", sa.BigInteger(), nullable=True),
        sa.Column("bound_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "language IN ('zh_Hans', 'zh_Hant', 'en')", name=op.f("ck_group_chat_language")
        ),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["org_node.id"],
            name=op.f("fk_group_chat_node_id_org_node"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("chat_id", name=op.f("pk_group_chat")),
        sa.UniqueConstraint("node_id", name=op.f("uq_group_chat_node_id")),
    )


def downgrade() -> None:
    op.drop_table("group_chat")
    with op.batch_alter_table("processed_update", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_processed_update_processed_at"))

    op.drop_table("processed_update")
    with op.batch_alter_table("org_node", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_org_node_parent_id"))

    op.drop_table("org_node")
    op.drop_table("app_user")
