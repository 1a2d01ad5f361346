"""What a resident types outside any conversation (rules in bot.services.freetext): the bot
offers to report it, to ask a lawyer about it, or to pass it on to the staff of one of the
person's open tickets, instead of saying it did not understand. A photo, a video, a voice
message or a shared location gets the same offer: many begin a report that way.

The offer's buttons carry the token of the draft that keeps the text ("ft:r:<token>"); an offer
that is no longer the person's conversation (they went on to something else, or it expired)
says so instead of acting.
"""

from __future__ import annotations

import logging
import re

from telegram import InlineKeyboardMarkup, Update
from telegram.error import BadRequest
from telegram.ext import Application, CallbackQueryHandler, ContextTypes

from bot.context import runtime
from bot.i18n import Translator
from bot.runtime import Runtime
from bot.services import freetext, relay, reporting, tickets
from bot.services.relay import TEXT, Content, Verdict
from handlers import freetext_keyboards as kb
from handlers import keyboards, report
from handlers import relay as relay_handlers
from handlers.common import command_of, translator_for
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

_DATA = re.compile(r"ft:(?:([rcx]):([0-9a-f]{8})|s:([0-9a-f]{8}):(\d{1,18}))")


def register(app: Application) -> None:
    """In group 0, before the fallback for unknown buttons."""
    app.add_handler(CallbackQueryHandler(offer_callback, pattern=f"^{kb.PREFIX}"))


async def take_cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """The router's taker while words wait for "report this?": /cancel forgets them; the
    rest reaches the fallback, which hands texts to ``take_text``."""
    if command_of(update.effective_message) != "cancel":
        return False
    return await take_text(update, context)


async def take_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """For the fallback: answer a private text no conversation took. False: not a text
    this can take (a command other than /cancel, a sticker); the fallback answers as
    before."""
    message = update.effective_message
    command = command_of(message)
    if message.text is None or command not in (None, "cancel"):
        return False
    rt = runtime(context)
    user_id = update.effective_user.id
    # Whatever is done with the words later, even when they cannot be taken now, someone may
    # be in danger: the emergency numbers come first, before any button is pressed.
    danger = command is None and tickets.words_signal_danger(rt.config, message.text)
    async with rt.uow() as uow:
        t = await translator_for(rt, uow, update)
        if command == "cancel":
            if await uow.drafts.get(user_id, freetext.FLOW) is None:
                return False
            await freetext.forget(uow, user_id)
            await uow.commit()
            answer, markup = t("OK, nothing was sent."), None
        else:
            offer = await freetext.keep(uow, rt.clock, rt.config, user_id, message.text)
            if offer is None:
                # Another conversation waits for an answer its handler did not see in this
                # message (a reply to an old message, say): it is not ours to drop.
                answer, markup = t("You are in the middle of something: please answer the "
                                   "last question above, or send /cancel to stop it."), None
            else:
                answer, markup = _offer(rt, t, offer)
                await uow.commit()
    if danger:
        await message.reply_html(report.emergency_text(t))
    await message.reply_html(answer, reply_markup=markup)
    return True


# What a message outside any conversation may carry besides words: kept as the report's photos
# or spoken description (bot.services.reporting's kinds), by Telegram's file id.
_FILE_KINDS = (*reporting.MEDIA_KINDS, *reporting.SPOKEN_KINDS)


async def take_media(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """For the fallback: a photo, video, voice message, video note or location no conversation
    took, offered like words (`take_text`); an album's photos make one offer. False: nothing
    this can take (a sticker, a file)."""
    message = update.effective_message
    kind = next((k for k in _FILE_KINDS if getattr(message, k, None)), None)
    if kind is None and message.location is None:
        return False
    rt = runtime(context)
    item = None
    if kind is not None:
        media = getattr(message, kind)
        item = max(media, key=lambda size: size.width * size.height) if kind == "photo" \
            else media
    location = ((message.location.latitude, message.location.longitude)
                if kind is None else None)
    caption = message.caption or ""
    danger = bool(caption) and tickets.words_signal_danger(rt.config, caption)
    limit = rt.config.limits.max_file_bytes
    async with rt.uow() as uow:
        t = await translator_for(rt, uow, update)
        if item is not None and item.file_size is not None and item.file_size > limit:
            mb = 1024 * 1024
            size, most = f"{item.file_size / mb:.1f}", f"{limit / mb:.0f}"
            answer, markup = t("That file is too large ({size} MB). Bots can receive files of "
                               "up to {limit} MB; please send a smaller one.",
                               size=size, limit=most), None
        else:
            offer = await freetext.keep_item(
                uow, rt.clock, rt.config, update.effective_user.id, text=caption, kind=kind,
                file_id=item.file_id if item is not None else None,
                album=message.media_group_id, location=location)
            if offer is None:
                answer, markup = t("You are in the middle of something: please answer the "
                                   "last question above, or send /cancel to stop it."), None
            else:
                await uow.commit()
                if offer.quiet:
                    return True
                answer, markup = _offer(rt, t, offer)
    if danger:
        await message.reply_html(report.emergency_text(t))
    await message.reply_html(answer, reply_markup=markup)
    return True


def _offer(rt: Runtime, t: Translator,
           offer: freetext.Offer) -> tuple[str, InlineKeyboardMarkup]:
    kept = offer.kept
    if kept.files or kept.location:
        return _media_offer(rt, t, offer)
    consultations = bool(rt.config.categories_of(reporting.CONSULTATION))
    markup = kb.offer(t, offer.token, describable=offer.describable,
                      consultations=consultations, tickets=offer.tickets)
    if offer.describable and offer.tickets:
        text = t("What shall I do with your message? I can report it as a new problem, or "
                 "pass it on to the staff handling one of your open requests.")
    elif offer.describable:
        text = t("Shall I report this as a problem? What you wrote becomes its description; "
                 "you then choose what it is about and where it is.")
    elif offer.tickets:
        text = t("Shall I pass your message on to the staff handling one of your open "
                 "requests? To report something new, describe it in a sentence or two.")
    elif _too_long(rt, offer.text):
        text = t("That is longer than a report can be ({max} characters at most). Please "
                 "describe the problem in fewer words, or choose from the menu.",
                 max=rt.config.limits.description_max_chars)
        return text, keyboards.main_menu(t)
    else:
        text = t("Hello! To report a problem, describe it in a sentence or two (at least "
                 "{min} characters) and I will offer to send it, or choose from the menu.",
                 min=rt.config.limits.description_min_chars)
        # A greeting, a word or two: too little to report, so the menu. The words are kept
        # all the same, and what comes next is added to them.
        return text, keyboards.main_menu(t)
    return text, markup


def _media_offer(rt: Runtime, t: Translator,
                 offer: freetext.Offer) -> tuple[str, InlineKeyboardMarkup]:
    kept = offer.kept
    if not kept.files:
        # A place alone is no message for the staff: it can only begin a report.
        return (t("Shall I report a problem at this place? You then choose what it is about "
                  "and describe it."),
                kb.offer(t, offer.token, describable=False, consultations=False, tickets=[]))
    markup = kb.offer(t, offer.token, describable=True, consultations=False,
                      tickets=offer.tickets)
    if offer.tickets:
        text = t("What shall I do with what you sent? I can report it as a new problem, or "
                 "pass it on to the staff handling one of your open requests.")
    elif kept.spoken is not None and not kept.media:
        text = t("Shall I report this as a problem? Your voice message becomes its "
                 "description; you then choose what it is about and where it is.")
    else:
        text = t("Shall I report this as a problem? Your photos or videos are attached to it "
                 "(and a caption of {min} characters or more becomes its description); you "
                 "then choose what it is about and where it is.",
                 min=rt.config.limits.description_min_chars)
    return text, markup


def _too_long(rt: Runtime, text: str) -> bool:
    problem = reporting.description_problem(rt.config, text)
    return problem is not None and problem[0] is reporting.Problem.TOO_LONG


async def offer_callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = runtime(context)
    query = update.callback_query
    reply = report.Reply()
    done = False
    async with rt.uow() as uow:
        t = await translator_for(rt, uow, update)
        chat = update.effective_chat
        match = _DATA.fullmatch(query.data or "")
        if match is None or chat is None or chat.type != chat.PRIVATE:
            reply.alert = t("This button is no longer valid.")
        else:
            done = await _on_button(reply, rt, uow, t, update, match)
    await reply.send(update, context)
    if done:
        # The offer is answered: its buttons go, so that an old one cannot act again.
        try:
            await query.edit_message_reply_markup(None)
        except BadRequest as exc:
            log.debug("offer's buttons stay: %s", exc.message)


async def _on_button(reply: report.Reply, rt: Runtime, uow: UnitOfWork, t: Translator,
                     update: Update, match: re.Match[str]) -> bool:
    """Act on a pressed button (and commit); True when the offer is answered."""
    action, token, send_token, ticket_id = match.groups()
    user = update.effective_user
    token = token or send_token
    kept = await freetext.kept(uow, user.id, token)
    if kept is None:
        # Answered already (a double tap: the first press removes the buttons, but the second
        # may be on its way) or dropped: not "send it again", which would invite a duplicate
        # of what the first press delivered.
        reply.alert = t("This offer has been answered or has expired: see the answer above, "
                        "or write again.")
        return True
    if action == kb.FORGET:
        await freetext.forget(uow, user.id)
        await uow.commit()
        reply.say(t("OK, nothing was sent."))
        return True
    if action in (kb.REPORT, kb.CONSULT):
        kind = reporting.REPORT if action == kb.REPORT else reporting.CONSULTATION
        described = kept.text if freetext.describable(rt.config, kept.text) else None
        await report.begin_with_text(reply, rt, uow, t, user.id, kind, described,
                                     media=kept.media, spoken=kept.spoken,
                                     location=kept.location)
        await uow.commit()
        return True
    target = await relay.for_resident(uow, ticket_id=int(ticket_id), user_id=user.id)
    contents = ([Content(TEXT, kept.text)] if kept.text else []) + [
        Content(kind, file_id=file_id) for kind, file_id in kept.files]
    if target.verdict is Verdict.IGNORE or not contents:
        reply.alert = t("This button is no longer valid.")
        return False
    for content in contents:
        # One ticket: the words and each file go the same way (or all are refused as closed).
        outcome = await relay_handlers.take_content(
            rt, uow, target, user, content, source_chat=user.id, source_message=0)
        if outcome is not relay_handlers.Outcome.SENT and \
                outcome is not relay_handlers.Outcome.SAVED:
            break
    if outcome is relay_handlers.Outcome.CLOSED:
        # Kept: the same words may still be reported as a new problem.
        reply.say(relay_handlers.outcome_text(t, rt, target.ticket, outcome),
                  kb.report_instead(t, token))
        return True
    await freetext.forget(uow, user.id)
    await uow.commit()
    reply.say(relay_handlers.outcome_text(t, rt, target.ticket, outcome))
    return True
