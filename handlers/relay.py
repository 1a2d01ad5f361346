"""Relay both ways (DESIGN §4): a worker's reply to a ticket message in the group (or anything
said in the ticket's forum topic) reaches the residents; a resident's reply, in private, to a
message about their ticket reaches the group, as a reply to the card.

Residents see the worker's role and display name, never the account: texts are re-sent and
files are copied (copyMessage shows no origin), never forwarded. Workers see the resident's
name, or "anonymous" when the resident chose so. Groups stay quiet: a relayed message gets no
confirmation there; only a message that could not be passed on gets a short reply.

Both handlers run in their own handler group (HANDLER_GROUP) before the ordinary handlers:
a message that is not about a ticket is left alone for them, a relayed one stops there.
"""

from __future__ import annotations

import enum
import functools
import html
import logging
from collections.abc import Awaitable, Callable

from telegram import Message, Update
from telegram import User as TelegramUser
from telegram.ext import Application, ApplicationHandlerStop, ContextTypes, MessageHandler, filters

from bot.i18n import Translator
from bot.runtime import Runtime, runtime
from bot.services import relay
from bot.services.relay import CAPTION_LIMIT, TEXT, TEXT_LIMIT, Content, Verdict
from handlers.cards import STATUS_LABELS, role_name
from handlers.common import translator_for
from handlers.notify import Notifier
from storage.models import OrgNode, Ticket
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

# Before the report flow (-5) and group 0 (commands, fallbacks); after my_tickets.DRAFT_GROUP
# (-20), so an "Add information" or "Withdraw" answer is never taken for a reply, and after
# tickets_group's prompt replies (-15) — replies to "*_prompt" messages are left alone here
# anyway, whichever runs first.
HANDLER_GROUP = -10

_NEW_MESSAGES = filters.UpdateType.MESSAGE
GROUP_MESSAGES = (filters.ChatType.GROUPS & _NEW_MESSAGES & ~filters.COMMAND
                  & ~filters.StatusUpdate.ALL & ~filters.IS_AUTOMATIC_FORWARD)
PRIVATE_REPLIES = filters.ChatType.PRIVATE & _NEW_MESSAGES & filters.REPLY & ~filters.COMMAND

# Checked in this order: an animation also carries a "document", a photo a list of sizes.
_MEDIA_KINDS = ("photo", "animation", "video", "document", "audio", "voice", "video_note",
                "sticker")
Callback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]

_TO_CARD = {"message_thread_id": "$topic",
            "reply_parameters": {"message_id": "$card", "allow_sending_without_reply": True}}


def register(app: Application) -> None:
    app.add_handler(MessageHandler(GROUP_MESSAGES, stop_on_error(from_group)),
                    group=HANDLER_GROUP)
    app.add_handler(MessageHandler(PRIVATE_REPLIES, stop_on_error(from_resident)),
                    group=HANDLER_GROUP)


def stop_on_error(handler: Callback) -> Callback:
    """For handlers in an early group: an error goes to the error handlers and ends the
    update there. Otherwise PTB carries on with the later groups, and the fallback would say
    "I did not understand" right after the apology."""

    @functools.wraps(handler)
    async def run(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            await handler(update, context)
        except ApplicationHandlerStop:
            raise
        except Exception as exc:  # handed to the error handlers
            await context.application.process_error(update, exc)
            raise ApplicationHandlerStop from None

    return run


def content_of(message: Message) -> Content:
    if message.text is not None:
        return Content(TEXT, message.text)
    for kind in _MEDIA_KINDS:
        media = getattr(message, kind, None)
        if media:
            item = media[-1] if kind == "photo" else media
            return Content(kind, message.caption or "", item.file_id, item.file_size)
    return Content("other")


# -- group → residents ----------------------------------------------------------------------------

async def from_group(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    worker = message.from_user
    # Bots, anonymous admins and channels speak as a chat, not as a worker the resident could
    # be told about.
    if worker is None or worker.is_bot or message.sender_chat is not None:
        return
    reply_to = message.reply_to_message
    topic = message.message_thread_id if message.is_topic_message else None
    if reply_to is None and topic is None:
        return
    rt = runtime(context)
    chat_id = update.effective_chat.id
    async with rt.uow() as uow:
        target = await relay.from_group(
            uow, chat_id=chat_id, reply_to_id=reply_to.message_id if reply_to else None,
            topic_id=topic)
        if target.verdict is Verdict.IGNORE:
            return  # not about a ticket: no noise in groups, and other handlers may want it
        ticket = target.ticket
        content = content_of(message)
        t = await translator_for(rt, uow, update)
        note = None
        if target.verdict is Verdict.MOVED:
            note = t("<b>No. {number}</b> is handled by another group now; nothing was sent "
                     "to the resident.", number=ticket.number)
        elif target.verdict is Verdict.CLOSED:
            note = t("<b>No. {number}</b> is no longer open ({status}); nothing was sent to "
                     "the resident.", number=ticket.number,
                     status=t(STATUS_LABELS[ticket.status]))
        elif not content.relayable:
            note = t("This kind of message cannot be passed on to the resident. Send text, a "
                     "photo, a video, a document or a voice message.")
        else:
            await _to_residents(rt, uow, ticket, chat_id, message, worker, content)
            await relay.record(uow, rt.clock, ticket, actor_id=worker.id, role="worker",
                               content=content)
            log.info("relayed message %s of group %s to the residents of ticket %s",
                     message.message_id, chat_id, ticket.id)
        await uow.commit()
    if note is not None:
        await message.reply_html(note)
    raise ApplicationHandlerStop


async def _to_residents(rt: Runtime, uow: UnitOfWork, ticket: Ticket, chat_id: int,
                        message: Message, worker: TelegramUser, content: Content) -> None:
    notifier = Notifier(rt, uow)
    group = await uow.groups.get(chat_id)
    node = await uow.nodes.get(group.node_id) if group and group.node_id else None
    name = relay.clean_name(worker.full_name)
    for user_id in await uow.tickets.residents(ticket):
        t = rt.translator(await notifier.resident_language(user_id))
        header = worker_header(t, ticket, node, name)
        enqueue_relay(rt, uow, ticket, chat_id=user_id, header=header, content=content,
                      source_chat=chat_id, source_message=message.message_id)


def worker_header(t: Translator, ticket: Ticket, node: OrgNode | None, name: str) -> str:
    """"No. X · Grid worker Wang:" — the role from the group's place, the Telegram name."""
    label = html.escape(role_name(t, node))
    if not name:
        return t("<b>No. {number}</b> · {role}:", number=ticket.number, role=label)
    return t("<b>No. {number}</b> · {role} {name}:", number=ticket.number, role=label,
             name=html.escape(name))


def enqueue_relay(rt: Runtime, uow: UnitOfWork, ticket: Ticket, *, chat_id: int, header: str,
                  content: Content, source_chat: int, source_message: int,
                  where: dict | None = None) -> None:
    """Outbox rows that show `content` in `chat_id` under `header` (HTML): text is re-sent,
    a file is copied with the header as its caption, or after the header when it can have no
    caption. `where` places the rows (topic, reply to the card) in a group."""
    where = where or {}

    def add(method: str, params: dict) -> None:
        uow.outbox.add(chat_id=chat_id, method=method,
                       params={"chat_id": chat_id, **params, **where}, now=rt.clock.now(),
                       ticket_id=ticket.id, purpose="relay")

    # The header is counted with its markup: a little short of the limit, never over it.
    header_cost = relay.utf16_len(header) + 1
    if content.kind == TEXT:
        body = relay.fit(relay.clean_text(content.text), TEXT_LIMIT - header_cost)
        add("sendMessage", {"text": _joined(header, body), "parse_mode": "HTML"})
        return
    copy = {"from_chat_id": source_chat, "message_id": source_message}
    if content.kind in relay.CAPTIONED:
        body = relay.fit(relay.clean_text(content.text), CAPTION_LIMIT - header_cost)
        copy.update(caption=_joined(header, body), parse_mode="HTML")
    else:
        add("sendMessage", {"text": header, "parse_mode": "HTML"})
    add("copyMessage", copy)


def _joined(header: str, body: str) -> str:
    return f"{header}\n{html.escape(body)}" if body else header


# -- resident → group -----------------------------------------------------------------------------

class Outcome(enum.Enum):
    SENT = "sent"
    CLOSED = "closed"
    UNSUPPORTED = "unsupported"
    TOO_LARGE = "too_large"


async def from_resident(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    user = update.effective_user
    rt = runtime(context)
    async with rt.uow() as uow:
        target = await relay.from_resident(uow, user_id=user.id,
                                           reply_to_id=message.reply_to_message.message_id)
        if target.verdict is Verdict.IGNORE:
            return  # a reply to something else: the ordinary handlers answer it
        t = await translator_for(rt, uow, update)
        outcome = await take_from_resident(rt, uow, target, user, message)
        await uow.commit()
    await message.reply_html(outcome_text(t, rt, target.ticket, outcome))
    raise ApplicationHandlerStop


async def take_from_resident(rt: Runtime, uow: UnitOfWork, target: relay.Target,
                             user: TelegramUser, message: Message) -> Outcome:
    """Pass a resident's message on to the ticket's group and log it, if it may go.
    The caller commits (also for My tickets' "Add information")."""
    if target.verdict is not Verdict.RELAY:
        return Outcome.CLOSED
    content = content_of(message)
    if not content.relayable:
        return Outcome.UNSUPPORTED
    if relay.too_large(content, rt.config.limits.max_file_bytes):
        return Outcome.TOO_LARGE
    ticket = target.ticket
    if ticket.group_chat_id is not None:
        group = await uow.groups.get(ticket.group_chat_id)
        t = rt.translator(group.language if group else rt.config.default_language)
        header = resident_header(t, ticket, user)
        if content.kind == TEXT:
            body = relay.fit(relay.clean_text(content.text),
                             TEXT_LIMIT - relay.utf16_len(header) - 1)
            await Notifier(rt, uow).to_group(ticket, _joined(header, body))
        else:
            enqueue_relay(rt, uow, ticket, chat_id=ticket.group_chat_id, header=header,
                          content=content, source_chat=message.chat_id,
                          source_message=message.message_id, where=_TO_CARD)
    await relay.record(uow, rt.clock, ticket, actor_id=user.id, role="resident",
                       content=content)
    log.info("relayed a resident's message to the group of ticket %s", ticket.id)
    return Outcome.SENT


def resident_header(t: Translator, ticket: Ticket, user: TelegramUser) -> str:
    """"No. X · resident Zhang:" — or "anonymous resident" when the reporter chose so, for
    everyone on that ticket: their name never reaches the group."""
    if ticket.anonymous:
        return t("<b>No. {number}</b> · anonymous resident:", number=ticket.number)
    name = ticket.reporter_name if user.id == ticket.reporter_id else None
    name = relay.clean_name(name or user.full_name) or t("Resident")
    return t("<b>No. {number}</b> · resident {name}:", number=ticket.number,
             name=html.escape(name))


def outcome_text(t: Translator, rt: Runtime, ticket: Ticket, outcome: Outcome) -> str:
    if outcome is Outcome.SENT:
        return t("Sent to the staff handling No. {number}.", number=ticket.number)
    if outcome is Outcome.CLOSED:
        return t("No. {number} is no longer open ({status}), so your message was not passed "
                 "on. If the problem is still there, please make a new report from the menu.",
                 number=ticket.number, status=t(STATUS_LABELS[ticket.status]))
    if outcome is Outcome.TOO_LARGE:
        return t("This file is larger than {size} MB and cannot be passed on. Please send a "
                 "smaller file.", size=_megabytes(rt.config.limits.max_file_bytes))
    return t("Only text, photos, videos, documents and voice messages can be passed on. "
             "Please send it in one of these forms.")


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".rstrip("0").rstrip(".")
