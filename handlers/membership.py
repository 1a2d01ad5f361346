"""The bot joining or leaving chats, people blocking it, and groups migrating."""

from __future__ import annotations

import logging

from telegram import Chat, ChatMember, Update
from telegram.ext import ContextTypes

from bot.actions.notifier import rerouted_card_poster
from bot.context import runtime
from bot.delivery.facts import group_gone
from bot.services import groups
from handlers.common import group_info

log = logging.getLogger(__name__)

_PRESENT = {ChatMember.MEMBER, ChatMember.ADMINISTRATOR, ChatMember.OWNER, ChatMember.RESTRICTED}


async def my_chat_member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = runtime(context)
    change = update.my_chat_member
    chat = change.chat
    now_present = change.new_chat_member.status in _PRESENT
    if change.new_chat_member.status == ChatMember.RESTRICTED:
        now_present = bool(getattr(change.new_chat_member, "is_member", True))
    was_present = change.old_chat_member.status in _PRESENT
    async with rt.uow() as uow:
        if chat.type == Chat.PRIVATE:
            # A person blocked (kicked) or unblocked the bot.
            user = await uow.users.seen(chat.id, change.from_user.language_code, rt.clock.now())
            user.unreachable = not now_present
            await uow.commit()
            return
        if chat.type == Chat.CHANNEL:
            return
        if now_present:
            await groups.bot_joined(uow, rt.clock, group_info(chat), rt.config.default_language,
                                    can_manage_topics=_may_create_topics(change.new_chat_member))
            await uow.commit()
        else:
            # Inactive, and its open tickets go to the nearest group above that still works.
            moved = await group_gone(uow, rt.clock, rt.config, chat.id,
                                     post_card=rerouted_card_poster(rt))
            await uow.commit()
            log.warning("bot removed from group %s; %d open ticket(s) re-routed", chat.id,
                        len(moved))
            return
    if now_present and not was_present:
        t = rt.translator(rt.config.default_language)
        await context.bot.send_message(chat.id, t(
            "Hello! I am Gridgate. A Gridgate administrator can bind this group to its grid, "
            "centre or desk with <code>/bind CODE</code>; matters will then arrive here."),
            parse_mode="HTML")


async def migrated(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A group became a supergroup: Telegram says so in the old chat and in the new one."""
    rt = runtime(context)
    message = update.effective_message
    if message.migrate_to_chat_id:
        old_id, new_id = message.chat.id, message.migrate_to_chat_id
    else:
        old_id, new_id = message.migrate_from_chat_id, message.chat.id
    async with rt.uow() as uow:
        row = await groups.migrated(uow, rt.clock, old_chat_id=old_id, new_chat_id=new_id,
                                    title=message.chat.title or "",
                                    post_card=rerouted_card_poster(rt))
        await uow.commit()
    if row is not None:
        log.info("group %s migrated to %s", old_id, new_id)


def _may_create_topics(member: ChatMember) -> bool:
    """What an update about the bot's own membership says about its right to create forum
    topics (an administrator with can_manage_topics; the owner may anything)."""
    if member.status == ChatMember.OWNER:
        return True
    return member.status == ChatMember.ADMINISTRATOR and bool(
        getattr(member, "can_manage_topics", False))
