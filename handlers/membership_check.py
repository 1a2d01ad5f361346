"""Is this person a member of this group? Asked of Telegram (getChatMember) and remembered for
`telegram.membership_cache_ttl`, so a busy group does not cost one API call per button press.

The cache lives in the Application's bot data (``BotData.caches``): it is per process and
starts empty after a restart, which only means Telegram is asked again.
"""

from __future__ import annotations

import logging
from datetime import datetime

from telegram import Bot, ChatMember
from telegram.error import TelegramError

from bot.actions.groups_membership import Membership
from bot.context import BotData, Context

log = logging.getLogger(__name__)

__all__ = ["Membership", "MembershipCache", "cache_of", "is_member_status", "membership",
           "membership_of"]

_CACHE_KEY = "membership_cache"
_MEMBER_STATUSES = {ChatMember.OWNER, ChatMember.ADMINISTRATOR, ChatMember.MEMBER}
# Past this many entries, expired ones are swept out on the next write.
_SWEEP_ABOVE = 5000


class MembershipCache:
    def __init__(self) -> None:
        self._entries: dict[tuple[int, int], tuple[bool, datetime]] = {}

    def get(self, chat_id: int, user_id: int, now: datetime) -> bool | None:
        entry = self._entries.get((chat_id, user_id))
        if entry is None or now >= entry[1]:
            return None
        return entry[0]

    def put(self, chat_id: int, user_id: int, is_member: bool, until: datetime,
            now: datetime) -> None:
        if len(self._entries) > _SWEEP_ABOVE:
            self._entries = {k: v for k, v in self._entries.items() if now < v[1]}
        self._entries[(chat_id, user_id)] = (is_member, until)

    def forget(self, chat_id: int, user_id: int) -> None:
        self._entries.pop((chat_id, user_id), None)


def cache_of(context: Context) -> MembershipCache:
    return _cache(context.bot_data)


def _cache(bot_data: BotData) -> MembershipCache:
    return bot_data.caches.setdefault(_CACHE_KEY, MembershipCache())


def is_member_status(member: ChatMember) -> bool:
    if member.status in _MEMBER_STATUSES:
        return True
    # A restricted user may still be in the group (is_member) or may have left it.
    return member.status == ChatMember.RESTRICTED and bool(getattr(member, "is_member", False))


async def membership(context: Context, chat_id: int, user_id: int) -> Membership:
    """Whether the person is in the group. It may ask Telegram (getChatMember), so call it
    before opening a unit of work, never inside one: on SQLite an open transaction holds the
    write lock, and every other chat and the outbox would wait for Telegram's answer too."""
    return await membership_of(context.bot, context.bot_data, chat_id, user_id)


async def membership_of(bot: Bot, bot_data: BotData, chat_id: int, user_id: int) -> Membership:
    """``membership`` outside an update's handling (the console asks it too)."""
    rt = bot_data.runtime
    cache = _cache(bot_data)
    now = rt.clock.now()
    known = cache.get(chat_id, user_id, now)
    if known is not None:
        return Membership.MEMBER if known else Membership.NOT_MEMBER
    try:
        member = await bot.get_chat_member(chat_id, user_id)
    except TelegramError:
        # Not cached: the next press asks again.
        log.warning("could not check membership in chat %s", chat_id, exc_info=True)
        return Membership.UNKNOWN
    allowed = is_member_status(member)
    cache.put(chat_id, user_id, allowed, now + rt.config.telegram.membership_cache_ttl, now)
    return Membership.MEMBER if allowed else Membership.NOT_MEMBER
