"""The bot joining or leaving chats, people blocking it, and groups migrating."""

from __future__ import annotations

from telegram import Chat, ChatMember, Update

from bot.actions import groups_membership
from bot.context import Context
from handlers.common import group_info
from handlers.reply import send

_PRESENT = {ChatMember.MEMBER, ChatMember.ADMINISTRATOR, ChatMember.OWNER, ChatMember.RESTRICTED}


async def my_chat_member(update: Update, context: Context) -> None:
    rt = context.runtime
    change = update.my_chat_member
    chat = change.chat
    now_present = change.new_chat_member.status in _PRESENT
    if change.new_chat_member.status == ChatMember.RESTRICTED:
        now_present = bool(getattr(change.new_chat_member, "is_member", True))
    was_present = change.old_chat_member.status in _PRESENT
    if chat.type == Chat.PRIVATE:
        await groups_membership.blocked(rt, chat.id, change.from_user.language_code,
                                        not now_present)
        return
    if chat.type == Chat.CHANNEL:
        return
    if not now_present:
        await groups_membership.left(rt, chat.id)
        return
    greeting = await groups_membership.joined(
        rt, group_info(chat), can_manage_topics=_may_create_topics(change.new_chat_member),
        greet=not was_present)
    if greeting is not None:
        await send(context, chat.id, greeting)


async def migrated(update: Update, context: Context) -> None:
    """A group became a supergroup: Telegram says so in the old chat and in the new one."""
    message = update.effective_message
    if message.migrate_to_chat_id:
        old_id, new_id = message.chat.id, message.migrate_to_chat_id
    else:
        old_id, new_id = message.migrate_from_chat_id, message.chat.id
    await groups_membership.migrated(context.runtime, old_id=old_id, new_id=new_id,
                                     title=message.chat.title or "")


def _may_create_topics(member: ChatMember) -> bool:
    """What an update about the bot's own membership says about its right to create forum
    topics (an administrator with can_manage_topics; the owner may anything)."""
    if member.status == ChatMember.OWNER:
        return True
    return member.status == ChatMember.ADMINISTRATOR and bool(
        getattr(member, "can_manage_topics", False))
