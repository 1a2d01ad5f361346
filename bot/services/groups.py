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


async def migrated(uow: UnitOfWork, clock: Clock, *, old_chat_id: int, new_chat_id: int,
                   title: str = "", is_forum: bool = False) -> GroupChat | None:
    """A group became a supergroup with a new id: the new id takes over the binding, the
    language, the tickets shown there and whatever waits in the outbox. Not committed here.

    Telegram sends the news twice (in the old group and in the new one), and the outbox sender
    may learn it from a ChatMigrated error first; every repetition is a no-op.
    """
    old = await uow.groups.get(old_chat_id)
    now = clock.now()
    new = None
    if old is not None:
        new = await uow.groups.get(new_chat_id)
        if new is None:
            new = GroupChat(chat_id=new_chat_id, title=title or old.title,
                            chat_type="supergroup", is_forum=is_forum, active=True,
                            language=old.language, created_at=now, updated_at=now)
            uow.groups.add(new)
        if old.node_id is not None and new.node_id is None:
            node_id, old.node_id = old.node_id, None
            await uow.groups.flush()  # free the unique node slot before the new id takes it
            new.node_id, new.bound_by, new.bound_at = node_id, old.bound_by, old.bound_at
            new.language = old.language
        old.active = False
        old.updated_at = new.updated_at = now
    await uow.outbox.retarget(old_chat_id, new_chat_id)
    await uow.tickets.move_group(old_chat_id, new_chat_id, now)
    return new


async def set_group_language(uow: UnitOfWork, clock: Clock, group: GroupInfo, language: str,
                             default_language: str) -> None:
    row = await uow.groups.seen(chat_id=group.chat_id, title=group.title,
                                chat_type=group.chat_type, is_forum=group.is_forum,
                                now=clock.now(), language=default_language)
    row.language = language
    await uow.commit()
