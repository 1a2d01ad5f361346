"""Typed SQLAlchemy models: the database is the truth (DESIGN §2)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.types import AutoId, TelegramId, UTCDateTime

# Named constraints keep Alembic migrations stable and portable across SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

NODE_LEVELS = ("district", "street", "town", "park", "community", "village", "grid", "desk")
LANGUAGE_CODES = ("zh_Hans", "zh_Hant", "en")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class OrgNode(Base):
    """A place in the org tree (district → street → community → grid) or a desk.

    Desks (legal service, enterprise service) are non-geographic teams that hang under the
    district, so binding, routing and escalation treat them like any other node.
    """

    __tablename__ = "org_node"
    __table_args__ = (CheckConstraint(f"level IN ({_in(NODE_LEVELS)})", name="level"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    code: Mapped[str] = mapped_column(String(48), unique=True)
    level: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_node.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    name_zh_hant: Mapped[str | None] = mapped_column(String(64))
    name_en: Mapped[str | None] = mapped_column(String(64))
    # GeoJSON text of a Polygon/MultiPolygon in WGS84 lon/lat; spatial queries run in memory
    # through shapely's STRtree, so no spatial extension is needed on either database.
    geometry: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    parent: Mapped[OrgNode | None] = relationship(remote_side=[id], lazy="raise")

    def display_name(self, language: str) -> str:
        if language == "zh_Hant" and self.name_zh_hant:
            return self.name_zh_hant
        if language == "en" and self.name_en:
            return self.name_en
        return self.name


class GroupChat(Base):
    """A Telegram group the bot is in, and the node it serves (one group ↔ one node)."""

    __tablename__ = "group_chat"
    __table_args__ = (
        CheckConstraint(f"language IN ({_in(LANGUAGE_CODES)})", name="language"),
    )

    chat_id: Mapped[int] = mapped_column(TelegramId, primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(String(255), default="")
    chat_type: Mapped[str] = mapped_column(String(16))
    is_forum: Mapped[bool] = mapped_column(Boolean, default=False)
    # False once the bot was removed or the group migrated away; kept for history.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    node_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_node.id", ondelete="SET NULL"), unique=True
    )
    language: Mapped[str] = mapped_column(String(8), default="zh_Hans")
    bound_by: Mapped[int | None] = mapped_column(TelegramId)
    bound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    node: Mapped[OrgNode | None] = relationship(lazy="raise")


class User(Base):
    """A person who talks to the bot in private. Personal fields stay minimal."""

    __tablename__ = "app_user"
    __table_args__ = (
        CheckConstraint(
            f"language IS NULL OR language IN ({_in(LANGUAGE_CODES)})", name="language"
        ),
    )

    id: Mapped[int] = mapped_column(TelegramId, primary_key=True, autoincrement=False)
    # The explicit choice from /language; None means "follow Telegram's language_code".
    language: Mapped[str | None] = mapped_column(String(8))
    telegram_language_code: Mapped[str | None] = mapped_column(String(35))
    # Set when Telegram says the user blocked the bot; cleared when they write again.
    unreachable: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProcessedUpdate(Base):
    """An update_id already handled, written in the transaction that handled it (DESIGN §7)."""

    __tablename__ = "processed_update"

    update_id: Mapped[int] = mapped_column(TelegramId, primary_key=True, autoincrement=False)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
