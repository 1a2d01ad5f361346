"""/bind and /unbind: administrators attach a group to a grid, centre or desk."""

from __future__ import annotations

import html
import logging

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes
from telegram.helpers import create_deep_linked_url

from bot.context import runtime
from bot.services import binding
from bot.services.binding import Outcome
from bot.services.text import user_html
from bot.views.places import place_html
from handlers import keyboards
from handlers.common import group_info, is_group, language_of

log = logging.getLogger(__name__)


async def bind_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    code = context.args[0] if context.args else ""
    if is_group(update):
        await bind_in_group(update, context, code)
    else:
        await _bind_link_in_private(update, context, code)


async def bind_in_group(update: Update, context: ContextTypes.DEFAULT_TYPE, code: str) -> None:
    rt = runtime(context)
    message = update.effective_message
    t = await language_of(rt, update)
    if not rt.is_admin(update.effective_user.id):
        await message.reply_html(t("Only a Gridgate administrator can bind a group."))
        return
    if not code:
        await message.reply_html(t(
            "Send <code>/bind CODE</code> with the code of the grid, centre or desk this "
            "group serves. The codes are listed by <code>gridgate grids list</code>."))
        return
    async with rt.uow() as uow:
        result = await binding.bind(
            uow, rt.clock, is_admin=True, group=group_info(update.effective_chat),
            user_id=update.effective_user.id, code=code, confirmed=False,
            default_language=rt.config.default_language)
    await _report(update, context, result, code)


async def bind_move_callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = runtime(context)
    query = update.callback_query
    t = await language_of(rt, update)
    if not is_group(update) or not rt.is_admin(update.effective_user.id):
        await query.answer(t("Only a Gridgate administrator can bind a group."),
                           show_alert=True)
        return
    if query.data == keyboards.BIND_KEEP:
        await query.answer()
        await query.edit_message_text(t("Nothing was changed."))
        return
    raw = query.data.removeprefix(keyboards.BIND_MOVE_PREFIX)
    if not raw.isdigit():
        await query.answer(t("This button is no longer valid."), show_alert=True)
        return
    async with rt.uow() as uow:
        result = await binding.bind(
            uow, rt.clock, is_admin=True, group=group_info(update.effective_chat),
            user_id=update.effective_user.id, node_id=int(raw), confirmed=True,
            default_language=rt.config.default_language)
    await query.answer()
    await _report(update, context, result, raw)


async def unbind_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = runtime(context)
    t = await language_of(rt, update)
    if not is_group(update):
        await update.effective_message.reply_html(
            t("Send /unbind in the group you want to unbind."))
        return
    async with rt.uow() as uow:
        result = await binding.unbind(uow, rt.clock, is_admin=rt.is_admin(
            update.effective_user.id), chat_id=update.effective_chat.id,
            user_id=update.effective_user.id)
    if result.outcome is Outcome.NOT_ADMIN:
        text = t("Only a Gridgate administrator can unbind a group.")
    elif result.outcome is Outcome.NOT_BOUND:
        text = t("This group is not bound to anything.")
    else:
        text = t("This group no longer serves <b>{place}</b>. New matters go to the nearest "
                 "centre above it.", place=place_html(result.path, t.language))
    await update.effective_message.reply_html(text)


async def _report(update: Update, context: ContextTypes.DEFAULT_TYPE,
                  result: binding.BindResult, code: str) -> None:
    rt = runtime(context)
    t = rt.translator(result.group_language or rt.config.default_language)
    query = update.callback_query
    place = place_html(result.path, t.language) if result.path else ""
    markup = None
    if result.outcome is Outcome.UNKNOWN_NODE:
        text = t("No grid, centre or desk has the code <code>{code}</code>. The codes are "
                 "listed by <code>gridgate grids list</code>.", code=html.escape(code))
    elif result.outcome is Outcome.ALREADY_BOUND:
        text = t("This group already serves <b>{place}</b>.", place=place)
    elif result.outcome is Outcome.NEEDS_CONFIRMATION:
        lines = []
        if result.displaced_group is not None and result.displaced_group.active:
            lines.append(t("<b>{place}</b> is served by the group “{group}” now.", place=place,
                           group=user_html(result.displaced_group.title)))
        if result.previous_node is not None:
            lines.append(t("This group serves <b>{previous}</b> now and would stop serving it "
                           "if you bind it here.",
                           previous=html.escape(result.previous_node.display_name(t.language))))
        lines.append(t("Move <b>{place}</b> to this group?", place=place))
        text = "\n".join(lines)
        markup = keyboards.bind_confirmation(t, result.node.id)
    else:
        text = t("Done: this group now serves <b>{place}</b>. Matters for it will arrive here.",
                 place=place)
        log.info("group bound to node %s", result.node.code)
        await _tell_displaced(context, result, place)
    if query is not None:
        await query.edit_message_text(text, parse_mode="HTML", reply_markup=markup)
    else:
        await update.effective_message.reply_html(text, reply_markup=markup)


async def _tell_displaced(context: ContextTypes.DEFAULT_TYPE, result: binding.BindResult,
                          place: str) -> None:
    group = result.displaced_group
    if group is None or not group.active:
        return
    t = runtime(context).translator(group.language)
    try:
        await context.bot.send_message(
            group.chat_id, t("An administrator moved <b>{place}</b> to another group; this "
                             "group no longer serves it.", place=place), parse_mode="HTML")
    except TelegramError:
        log.warning("could not tell the displaced group about the move", exc_info=True)


async def _bind_link_in_private(update: Update, context: ContextTypes.DEFAULT_TYPE,
                                code: str) -> None:
    """In private, an administrator gets a link that adds the bot to a group and binds it."""
    rt = runtime(context)
    t = await language_of(rt, update)
    if not rt.is_admin(update.effective_user.id):
        await update.effective_message.reply_html(
            t("Only a Gridgate administrator can bind a group."))
        return
    async with rt.uow() as uow:
        node = await uow.nodes.by_code(code) if code else None
        path = await uow.nodes.path(node) if node else []
    if node is None:
        await update.effective_message.reply_html(t(
            "Send <code>/bind CODE</code> with the code of a grid, centre or desk, and I will "
            "give you a link that adds me to its group."))
        return
    url = create_deep_linked_url(context.bot.username, f"bind_{node.code}", group=True)
    await update.effective_message.reply_html(
        t("Open the link below, choose the group for <b>{place}</b>, and I will bind it.",
          place=place_html(path, t.language)),
        reply_markup=keyboards.add_to_group(t, url))
