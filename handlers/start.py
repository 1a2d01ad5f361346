"""/start, /help, /language and the main menu."""

from __future__ import annotations

import html
import logging

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.context import runtime
from bot.i18n import LANGUAGE_NAMES, LANGUAGES, Translator
from bot.services import users
from bot.services.groups import set_group_language
from bot.views.places import place_html
from handlers import keyboards, report
from handlers.binding import bind_in_group
from handlers.commands import command_list, publish_chat_menu
from handlers.common import group_info, is_group, language_of, translator_for

log = logging.getLogger(__name__)


def _welcome(t: Translator) -> str:
    return t("<b>Welcome to Gridgate</b>\n\n"
             "Gridgate is the online entrance to your community's grid service.\n\n"
             "Choose from the menu below.")


def _private_help(t: Translator) -> str:
    # /mydata and /deletemydata are in the command list, with what they do: said once.
    return "\n\n".join([
        t("<b>How to use Gridgate</b>"),
        html.escape(command_list(t, group=False)),
        t("In an emergency call 110 (police), 119 (fire) or 120 (ambulance) first.")])


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if is_group(update):
        # A startgroup deep link arrives as "/start bind_<code>" from the admin who added us.
        payload = context.args[0] if context.args else ""
        if payload.startswith("bind_"):
            await bind_in_group(update, context, payload.removeprefix("bind_"))
            return
        await group_help(update, context)
        return
    rt = runtime(context)
    async with rt.uow() as uow:
        t = await translator_for(rt, uow, update)
        unfinished = await report.unfinished_report(uow, update.effective_user.id)
        await uow.commit()  # remember the person, and that this update was handled
    if unfinished is not None:
        await report.offer_unfinished(update, context, t, unfinished)
        return
    await update.effective_message.reply_html(_welcome(t), reply_markup=keyboards.main_menu(t))


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if is_group(update):
        await group_help(update, context)
        return
    rt = runtime(context)
    t = await language_of(rt, update)
    await update.effective_message.reply_html(_private_help(t),
                                              reply_markup=keyboards.main_menu(t))


async def group_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = runtime(context)
    chat = update.effective_chat
    async with rt.uow() as uow:
        t = await translator_for(rt, uow, update)
        group = await uow.groups.get(chat.id)
        node = await uow.nodes.get(group.node_id) if group and group.node_id else None
        path = await uow.nodes.path(node) if node else []
    if node is not None:
        status = t("This group serves: <b>{place}</b>.", place=place_html(path, t.language))
        if not group.active:
            status += "\n" + t("It is marked inactive; a Gridgate administrator can bind it again.")
    else:
        status = t("This group is not bound yet.")
    await update.effective_message.reply_html("\n\n".join([
        status, t("<b>Group commands</b>"), html.escape(command_list(t, group=True)),
        t("Reply to a ticket's card, or to a resident's message about it, to write to the "
          "resident. 👌 on your reply means it has reached them.")]))


async def language_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = runtime(context)
    t = await language_of(rt, update)
    if is_group(update) and not rt.is_admin(update.effective_user.id):
        await update.effective_message.reply_html(
            t("Only a Gridgate administrator can change the language of a group."))
        return
    await update.effective_message.reply_html(
        t("Choose a language:"), reply_markup=keyboards.language_menu(t.language))


async def menu_callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    rt = runtime(context)
    t = await language_of(rt, update)
    await query.answer()
    # Sent to the chat rather than as a reply: the menu message may be too old to reply to.
    chat = update.effective_chat
    if query.data == keyboards.MENU_LANGUAGE:
        await chat.send_message(t("Choose a language:"), parse_mode="HTML",
                                reply_markup=keyboards.language_menu(t.language))
    else:
        await chat.send_message(_private_help(t), parse_mode="HTML",
                                reply_markup=keyboards.main_menu(t))


async def language_callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    rt = runtime(context)
    language = query.data.removeprefix(keyboards.LANGUAGE_PREFIX)
    user = update.effective_user
    group = is_group(update)
    t = await language_of(rt, update)
    if language not in LANGUAGES:
        await query.answer(t("This button is no longer valid."), show_alert=True)
        return
    if group and not rt.is_admin(user.id):
        await query.answer(
            t("Only a Gridgate administrator can change the language of a group."),
            show_alert=True)
        return
    async with rt.uow() as uow:
        if group:
            await set_group_language(uow, rt.clock, group_info(update.effective_chat), language,
                                     rt.config.default_language, admin_id=user.id)
        else:
            await users.choose_language(uow, rt.clock, user_id=user.id,
                                        telegram_code=user.language_code, language=language)
        await uow.commit()
    t = rt.translator(language)
    await query.answer()
    text = t("The language is now {language}.", language=LANGUAGE_NAMES[language])
    await query.edit_message_text(text, reply_markup=None if group else keyboards.main_menu(t))
    try:
        await publish_chat_menu(context.bot, t, update.effective_chat.id, group=group)
    except TelegramError:
        # The menu is a convenience; the choice itself is saved.
        log.warning("could not publish the chat's command menu", exc_info=True)
