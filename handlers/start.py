"""/start, /help, /language and the main menu (use cases in bot.actions.menu, texts in
bot.views.menu)."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError

from bot.actions import menu
from bot.context import Context
from bot.services.console_access import is_signin
from bot.views import Answer
from bot.views.menu import LANGUAGE_PREFIX
from handlers import console
from handlers.binding import bind_in_group
from handlers.commands import publish_chat_menu
from handlers.common import is_group, who
from handlers.reply import send, show

log = logging.getLogger(__name__)


async def _reply(update: Update, context: Context, answer: Answer) -> None:
    """A command's answer: in a group, as a reply to the command (as many may be talking
    there); in a private chat, simply the next message."""
    if not is_group(update):
        await show(update, context, answer)
        return
    message = update.effective_message
    for view in answer.say:
        await send(context, update.effective_chat.id, view, reply_to=message.message_id)


async def start(update: Update, context: Context) -> None:
    if is_group(update):
        # A startgroup deep link arrives as "/start bind_<code>" from the admin who added us.
        payload = context.args[0] if context.args else ""
        if payload.startswith("bind_"):
            await bind_in_group(update, context, payload.removeprefix("bind_"))
            return
        await group_help(update, context)
        return
    payload = context.args[0] if context.args else ""
    if is_signin(payload):
        await console.signin(update, context, payload)
        return
    await show(update, context, await menu.start(context.runtime, who(update)))


async def help_command(update: Update, context: Context) -> None:
    if is_group(update):
        await group_help(update, context)
        return
    await show(update, context, await menu.private_help(context.runtime, who(update)))


async def group_help(update: Update, context: Context) -> None:
    await _reply(update, context, await menu.group_help(context.runtime, who(update)))


async def language_command(update: Update, context: Context) -> None:
    rt = context.runtime
    await _reply(update, context, await menu.language_menu(
        rt, who(update), admin=rt.is_admin(update.effective_user.id)))


async def menu_callback(update: Update, context: Context) -> None:
    # Sent to the chat rather than as a reply: the menu message may be too old to reply to.
    await show(update, context, await menu.menu(context.runtime, who(update),
                                                update.callback_query.data))


async def language_callback(update: Update, context: Context) -> None:
    rt = context.runtime
    chosen = await menu.choose_language(
        rt, who(update), update.callback_query.data.removeprefix(LANGUAGE_PREFIX),
        admin=rt.is_admin(update.effective_user.id))
    await show(update, context, chosen.answer)
    if chosen.t is None:
        return
    try:
        await publish_chat_menu(context.bot, chosen.t, update.effective_chat.id,
                                group=is_group(update))
    except TelegramError:
        # The menu is a convenience; the choice itself is saved.
        log.warning("could not publish the chat's command menu", exc_info=True)
