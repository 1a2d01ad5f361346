"""Telegram groups the bot is in and the node each one serves."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import GroupChat


class GroupRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, chat_id: int, *, for_update: bool = False) -> GroupChat | None:
        stmt = select(GroupChat).where(GroupChat.chat_id == chat_id)
        if for_update:
            stmt = stmt.with_for_update()
        return await self._s.scalar(stmt)

    async def for_node(self, node_id: int) -> GroupChat | None:
        return await self._s.scalar(select(GroupChat).where(GroupChat.node_id == node_id))

    async def for_nodes(self, node_ids: Sequence[int]) -> dict[int, GroupChat]:
        """The groups bound to these nodes, by node (one query for a whole path)."""
        stmt = select(GroupChat).where(GroupChat.node_id.in_(list(node_ids)))
        return {group.node_id: group for group in (await self._s.scalars(stmt)).all()
                if group.node_id is not None}

    async def bound(self) -> Sequence[GroupChat]:
        stmt = select(GroupChat).where(GroupChat.node_id.is_not(None)).order_by(GroupChat.chat_id)
        return (await self._s.scalars(stmt)).all()

    async def seen(self, *, chat_id: int, title: str, chat_type: str, is_forum: bool,
                   now: datetime, language: str) -> GroupChat:
        """Record that the bot is in this group, creating or refreshing its row."""
        group = await self.get(chat_id)
        if group is None:
            group = GroupChat(chat_id=chat_id, title=title, chat_type=chat_type,
                              is_forum=is_forum, active=True, language=language,
                              created_at=now, updated_at=now)
            self._s.add(group)
        else:
            changed = (group.title, group.chat_type, group.is_forum, group.active) != (
                title, chat_type, is_forum, True)
            if changed:
                group.title, group.chat_type, group.is_forum = title, chat_type, is_forum
                group.active = True
                group.updated_at = now
        return group

    def add(self, group: GroupChat) -> None:
        self._s.add(group)

    async def flush(self) -> None:
        await self._s.flush()
