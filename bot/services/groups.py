"""What happens to a group's row when the bot joins, leaves, or the group migrates."""

from __future__ import annotations

from bot.clock import Clock
from bot.services.binding import GroupInfo
from storage.models import GroupChat
from storage.uow import UnitOfWork


async def bot_joined(uow: UnitOfWork, clock: Clock, group: GroupInfo,
                     default_language: str) -> GroupChat:
    row = await uow.groups.seen(chat_id=group.chat_id, title=group.title,
                                chat_type=group.chat_type, is_forum=group.is_forum,
                                now=clock.now(), language=default_language)
    await uow.commit()
    return row


async def bot_left(uow: UnitOfWork, clock: Clock, chat_id: int) -> GroupChat | None:
    """The bot was removed: the group stays bound on paper but is inactive, so routing passes it
    by and an admin sees what it served; adding the bot back makes it active again."""
    row = await uow.groups.get(chat_id)
    if row is None:
        return None
    if row.active:
        row.active = False
        row.updated_at = clock.now()
    await uow.commit()
    return row


async def migrated(uow: UnitOfWork, clock: Clock, *, old_chat_id: int, new_chat_id: int,
                   title: str, is_forum: bool = False) -> GroupChat | None:
    """A group became a supergroup with a new id: the new id takes over binding and language.

    Telegram sends the news twice (in the old group and in the new one); the second is a no-op.
    """
    old = await uow.groups.get(old_chat_id)
    if old is None:
        return None
    now = clock.now()
    new = await uow.groups.get(new_chat_id)
    if new is None:
        new = GroupChat(chat_id=new_chat_id, title=title or old.title, chat_type="supergroup",
                        is_forum=is_forum, active=True, language=old.language,
                        created_at=now, updated_at=now)
        uow.groups.add(new)
    if old.node_id is not None and new.node_id is None:
        node_id, old.node_id = old.node_id, None
        await uow.groups.flush()  # free the unique node slot before the new id takes it
        new.node_id, new.bound_by, new.bound_at = node_id, old.bound_by, old.bound_at
        new.language = old.language
    old.active = False
    old.updated_at = new.updated_at = now
    await uow.commit()
    return new


async def set_group_language(uow: UnitOfWork, clock: Clock, group: GroupInfo, language: str,
                             default_language: str) -> None:
    row = await uow.groups.seen(chat_id=group.chat_id, title=group.title,
                                chat_type=group.chat_type, is_forum=group.is_forum,
                                now=clock.now(), language=default_language)
    row.language = language
    await uow.commit()
