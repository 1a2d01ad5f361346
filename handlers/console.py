"""The centres' console in Telegram: "/start console_<nonce>" from the console's sign-in page
confirms that browser as this person (bot.actions.console), if they are an admin or in a
centre's or desk's group, which Telegram is asked here (getChatMember, cached)."""

from __future__ import annotations

import asyncio

from telegram import Bot, Update

from bot.actions import console
from bot.actions.groups_membership import Membership
from bot.context import BotData, Context
from handlers.common import who
from handlers.membership_check import membership_of
from handlers.reply import show

# getChatMember calls at once: a district has a few hundred centre groups.
_AT_ONCE = 8


async def signin(update: Update, context: Context, payload: str) -> None:
    rt = context.runtime
    user = update.effective_user
    member_of: list[int] = []
    if not rt.is_admin(user.id) and await console.waiting(rt, payload):
        member_of = await member_nodes(context.bot, context.bot_data, user.id)
    answer = await console.confirm(rt, who(update), user.full_name, payload, member_of)
    await show(update, context, answer)


async def member_nodes(bot: Bot, bot_data: BotData, user_id: int) -> list[int]:
    """The nodes of the centre and desk groups the person is in."""
    groups = await console.centre_groups(bot_data.runtime)
    gate = asyncio.Semaphore(_AT_ONCE)

    async def check(chat_id: int) -> Membership:
        async with gate:
            return await membership_of(bot, bot_data, chat_id, user_id)

    answers = await asyncio.gather(*(check(chat_id) for chat_id, _ in groups))
    return [node for (_, node), answer in zip(groups, answers, strict=True)
            if answer is Membership.MEMBER]
