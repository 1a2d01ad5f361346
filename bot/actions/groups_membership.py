"""The bot's own membership of chats: joining or leaving groups, people blocking it, groups
becoming supergroups; and whether a person is a member of a group (which only Telegram
knows: the door asks it, ``handlers.membership_check``)."""

from __future__ import annotations

import enum
import logging

from bot.actions.notifier import rerouted_card_poster
from bot.delivery.facts import group_gone
from bot.runtime import Runtime
from bot.services import groups
from bot.services.binding import GroupInfo
from bot.views import View

log = logging.getLogger(__name__)


class Membership(enum.Enum):
    MEMBER = "member"
    NOT_MEMBER = "not_member"
    UNKNOWN = "unknown"  # Telegram could not be asked; treated as "not allowed, try again"


async def blocked(rt: Runtime, user_id: int, language_code: str | None,
                  is_blocked: bool) -> None:
    """A person blocked (kicked) or unblocked the bot."""
    async with rt.uow() as uow:
        user = await uow.users.seen(user_id, language_code, rt.clock.now())
        user.unreachable = is_blocked
        await uow.commit()


async def joined(rt: Runtime, group: GroupInfo, *, can_manage_topics: bool,
                 greet: bool) -> View | None:
    """The bot is in the group (it joined, or its rights changed); with ``greet`` (it was not
    there before) the greeting to send there."""
    async with rt.uow() as uow:
        await groups.bot_joined(uow, rt.clock, group, rt.config.default_language,
                                can_manage_topics=can_manage_topics)
        await uow.commit()
    if not greet:
        return None
    t = rt.translator(rt.config.default_language)
    return View(t(
        "Hello! I am Gridgate. A Gridgate administrator can bind this group to its grid, "
        "centre or desk with <code>/bind CODE</code>; matters will then arrive here."))


async def left(rt: Runtime, chat_id: int) -> None:
    """The bot was removed from the group: it turns inactive, and its open tickets go to the
    nearest group above that still works."""
    async with rt.uow() as uow:
        moved = await group_gone(uow, rt.clock, rt.config, chat_id,
                                 post_card=rerouted_card_poster(rt))
        await uow.commit()
    log.warning("bot removed from group %s; %d open ticket(s) re-routed", chat_id, len(moved))


async def migrated(rt: Runtime, *, old_id: int, new_id: int, title: str) -> None:
    """A group became a supergroup: the new id takes over from the old one."""
    async with rt.uow() as uow:
        row = await groups.migrated(uow, rt.clock, old_chat_id=old_id, new_chat_id=new_id,
                                    title=title, post_card=rerouted_card_poster(rt))
        await uow.commit()
    if row is not None:
        log.info("group %s migrated to %s", old_id, new_id)
