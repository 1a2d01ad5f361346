"""Relay both ways: a worker's reply to a ticket message in the group (or anything
said in the ticket's forum topic) reaches the resident who reported it; a resident's reply, in
private, to a message about their ticket reaches the group, as a reply to the card.

The conversation is the reporter's: co-reporters (who joined the report later) get the status
notices, not the workers' messages — except a worker's reply to a co-reporter's own message,
which goes back to that co-reporter alone. Residents see the worker's role and display name,
never the account: texts are re-sent and files are copied (copyMessage shows no origin), never
forwarded. Workers see the reporter's name, or "anonymous" when the reporter chose so, and a
co-reporter only as "co-reporter" (whether they wanted to stay anonymous is not known). Groups
stay quiet: a worker's message that reached the resident gets a 👌 reaction (reactions notify
nobody), and only a message that could not be passed on gets a short reply.

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
from telegram.ext import ApplicationHandlerStop, ContextTypes, filters

from bot.actions.notifier import Notifier
from bot.context import runtime
from bot.delivery.calls import REACT_WHEN_SENT
from bot.i18n import Translator
from bot.logs import bind_log_context
from bot.runtime import Runtime
from bot.services import freetext, relay, tickets
from bot.services.relay import CAPTION_LIMIT, TEXT, TEXT_LIMIT, Content, Verdict
from bot.services.text import user_html
from bot.views.cards import STATUS_LABELS, role_name
from handlers import freetext_keyboards
from handlers.common import translator_for
from handlers.report import emergency_text
from storage.models import OrgNode, Ticket
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)


_NEW_MESSAGES = filters.UpdateType.MESSAGE
GROUP_MESSAGES = (filters.ChatType.GROUPS & _NEW_MESSAGES & ~filters.COMMAND
                  & ~filters.StatusUpdate.ALL & ~filters.IS_AUTOMATIC_FORWARD)
PRIVATE_REPLIES = filters.ChatType.PRIVATE & _NEW_MESSAGES & filters.REPLY & ~filters.COMMAND

# Checked in this order: an animation also carries a "document", a photo a list of sizes.
_MEDIA_KINDS = ("photo", "animation", "video", "document", "audio", "voice", "video_note",
                "sticker")
Callback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]

# The reaction a worker's message gets in the group once the resident has it: "got it"
# without a message (reactions notify nobody; groups stay quiet).
DELIVERED = "👌"

_BY_FILE_ID = {"photo": ("sendPhoto", "photo"), "video": ("sendVideo", "video"),
               "voice": ("sendVoice", "voice"), "video_note": ("sendVideoNote", "video_note")}

_TO_CARD = {"message_thread_id": "$topic",
            "reply_parameters": {"message_id": "$card", "allow_sending_without_reply": True}}


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
            await _to_resident(rt, uow, ticket, target.resident_id, chat_id, message, worker,
                               content)
            await relay.record(uow, rt.clock, ticket, actor_id=worker.id, role="worker",
                               content=content, name=relay.clean_name(worker.full_name))
            bind_log_context(ticket=ticket.number)
            log.info("relayed message %s of group %s to a resident of ticket %s",
                     message.message_id, chat_id, ticket.number)
        await uow.commit()
    if note is not None:
        await message.reply_html(note)
    raise ApplicationHandlerStop


async def _to_resident(rt: Runtime, uow: UnitOfWork, ticket: Ticket, user_id: int,
                       chat_id: int, message: Message, worker: TelegramUser,
                       content: Content) -> None:
    group = await uow.groups.get(chat_id)
    node = await uow.nodes.get(group.node_id) if group and group.node_id else None
    t = rt.translator(await Notifier(rt, uow).resident_language(user_id))
    header = worker_header(t, ticket, node, relay.clean_name(worker.full_name))
    enqueue_relay(rt, uow, ticket, chat_id=user_id, header=header, content=content,
                  source_chat=chat_id, source_message=message.message_id,
                  react_when_sent={"chat_id": chat_id, "message_id": message.message_id,
                                   "emoji": DELIVERED})


def worker_header(t: Translator, ticket: Ticket, node: OrgNode | None, name: str) -> str:
    """"No. X · Grid worker Wang:" — the role from the group's place, the Telegram name."""
    label = html.escape(role_name(t, node))
    if not name:
        return t("<b>No. {number}</b> · {role}:", number=ticket.number, role=label)
    return t("<b>No. {number}</b> · {role} {name}:", number=ticket.number, role=label,
             name=user_html(name))


def enqueue_relay(rt: Runtime, uow: UnitOfWork, ticket: Ticket, *, chat_id: int, header: str,
                  content: Content, source_chat: int, source_message: int,
                  where: dict | None = None, purpose: str = "relay",
                  react_when_sent: dict | None = None) -> None:
    """Outbox rows that show `content` in `chat_id` under `header` (HTML): text is re-sent,
    a file is copied with the header as its caption, or after the header when it can have no
    caption. `where` places the rows (topic, reply to the card) in a group; `purpose` is how
    the sent messages are remembered (a reply to them is about this ticket);
    `react_when_sent` is the reaction the sender puts on the original once the last row
    has arrived."""
    where = where or {}

    def add(method: str, params: dict, *, last: bool = True) -> None:
        extra = {REACT_WHEN_SENT: react_when_sent} if react_when_sent and last else {}
        uow.outbox.add(chat_id=chat_id, method=method,
                       params={"chat_id": chat_id, **params, **where, **extra},
                       now=rt.clock.now(), ticket_id=ticket.id, purpose=purpose)

    # The header is counted with its markup: a little short of the limit, never over it.
    header_cost = relay.utf16_len(header) + 1
    if content.kind == TEXT:
        body = relay.fit(relay.clean_text(content.text), TEXT_LIMIT - header_cost)
        add("sendMessage", {"text": _joined(header, body), "parse_mode": "HTML"})
        return
    if source_message:
        method, params = "copyMessage", {"from_chat_id": source_chat,
                                         "message_id": source_message}
    else:
        # Kept from an earlier message (a photo sent outside any conversation, passed on when
        # the person chose so): sent again by its file id, nothing was downloaded.
        method, field = _BY_FILE_ID[content.kind]
        params = {field: content.file_id}
    if content.kind in relay.CAPTIONED:
        body = relay.fit(relay.clean_text(content.text), CAPTION_LIMIT - header_cost)
        params.update(caption=_joined(header, body), parse_mode="HTML")
    else:
        add("sendMessage", {"text": header, "parse_mode": "HTML"}, last=False)
    add(method, params)


def _joined(header: str, body: str) -> str:
    return f"{header}\n{user_html(body)}" if body else header


# -- resident → group -----------------------------------------------------------------------------

class Outcome(enum.Enum):
    SENT = "sent"
    SAVED = "saved"  # kept with the ticket: no group has it yet
    CLOSED = "closed"
    UNSUPPORTED = "unsupported"
    TOO_LARGE = "too_large"


async def from_resident(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    user = update.effective_user
    replied = message.reply_to_message
    rt = runtime(context)
    markup = None
    danger = False
    async with rt.uow() as uow:
        in_form = await _in_a_form(uow, user.id)
        target = await relay.from_resident(uow, user_id=user.id,
                                           reply_to_id=replied.message_id, in_form=in_form)
        if target.verdict is Verdict.IGNORE and replied.from_user is not None \
                and replied.from_user.id == context.bot.id and not in_form:
            # One of the bot's own answers that is not remembered with a ticket (such as
            # "registered as No. X"): the ticket it names, if it is the person's.
            target = await relay.named_in(uow, user_id=user.id,
                                          text=replied.text or replied.caption or "")
        if target.verdict is Verdict.IGNORE:
            return  # a reply to something else: the ordinary handlers answer it
        t = await translator_for(rt, uow, update)
        outcome = await take_from_resident(rt, uow, target, user, message)
        if outcome is Outcome.CLOSED and message.text:
            # The words are kept, so that they can be reported as a new problem.
            offer = await freetext.keep(uow, rt.clock, rt.config, user.id, message.text)
            if offer is not None:
                markup = freetext_keyboards.report_instead(t, offer.token)
            # Nobody on staff reads these words: if they signal danger, the emergency numbers
            # come first, as for any text outside a conversation (handlers.freetext).
            danger = tickets.words_signal_danger(rt.config, message.text)
        await uow.commit()
    if danger:
        await message.reply_html(emergency_text(t))
    await message.reply_html(outcome_text(t, rt, target.ticket, outcome), reply_markup=markup)
    raise ApplicationHandlerStop


async def _in_a_form(uow: UnitOfWork, user_id: int) -> bool:
    """Whether the person is answering the questions of a form (a report, a consultation,
    a booking…): a reply to an old message that merely names a ticket is then an answer
    swiped onto whatever message was at hand, not words for that ticket's staff. A reply to
    a worker's relayed message or to a notice about the ticket is a conversation, and stays
    one."""
    current = await uow.drafts.any_of(user_id)
    return current is not None and current.flow != freetext.FLOW


async def take_from_resident(rt: Runtime, uow: UnitOfWork, target: relay.Target,
                             user: TelegramUser, message: Message) -> Outcome:
    """Pass a resident's message on to the ticket's group and log it, if it may go.
    The caller commits (also for My tickets' "Add information")."""
    return await take_content(rt, uow, target, user, content_of(message),
                              source_chat=message.chat_id, source_message=message.message_id)


async def take_content(rt: Runtime, uow: UnitOfWork, target: relay.Target, user: TelegramUser,
                       content: Content, *, source_chat: int, source_message: int) -> Outcome:
    """Like take_from_resident, for content kept from an earlier message (a text: the
    source is where a file would be copied from)."""
    if target.verdict is not Verdict.RELAY:
        return Outcome.CLOSED
    if not content.relayable:
        return Outcome.UNSUPPORTED
    if relay.too_large(content, rt.config.limits.max_file_bytes):
        return Outcome.TOO_LARGE
    ticket = target.ticket
    bind_log_context(ticket=ticket.number)
    await relay.record(uow, rt.clock, ticket, actor_id=user.id, role="resident",
                       content=content)
    if ticket.group_chat_id is None:
        # No group anywhere up the tree: the log (and the attachments) keep it, and the
        # workers see it there once the ticket reaches a group.
        log.info("kept a resident's message with ticket %s, which has no group",
                 ticket.number)
        return Outcome.SAVED
    group = await uow.groups.get(ticket.group_chat_id)
    t = rt.translator(group.language if group else rt.config.default_language)
    co_reporter = user.id != ticket.reporter_id
    enqueue_relay(rt, uow, ticket, chat_id=ticket.group_chat_id,
                  header=resident_header(t, ticket, user), content=content,
                  source_chat=source_chat, source_message=source_message,
                  where=_TO_CARD,
                  purpose=relay.co_reporter_purpose(user.id) if co_reporter else "relay")
    log.info("relayed a resident's message to the group of ticket %s", ticket.number)
    return Outcome.SENT


def resident_header(t: Translator, ticket: Ticket, user: TelegramUser) -> str:
    """"No. X · resident Zhang:" for the reporter — "anonymous resident" when they chose so —
    and "co-reporter" for anyone who joined the report: whether a co-reporter wanted to stay
    anonymous is not known, so their name never reaches the group. A request made for an
    enterprise (a check-up, an enterprise matter) comes from its contacts, not from residents
    of the grid: "enterprise contact Zhou", or without a name for a colleague of the one who
    made it (their contact name is not on the ticket)."""
    if ticket.enterprise_id is not None:
        name = (relay.clean_name(ticket.reporter_name or user.full_name)
                if user.id == ticket.reporter_id else "")
        if not name:
            return t("<b>No. {number}</b> · enterprise contact:", number=ticket.number)
        return t("<b>No. {number}</b> · enterprise contact {name}:", number=ticket.number,
                 name=user_html(name))
    if user.id != ticket.reporter_id:
        return t("<b>No. {number}</b> · co-reporter:", number=ticket.number)
    if ticket.anonymous:
        return t("<b>No. {number}</b> · anonymous resident:", number=ticket.number)
    name = relay.clean_name(ticket.reporter_name or user.full_name) or t("Resident")
    return t("<b>No. {number}</b> · resident {name}:", number=ticket.number,
             name=user_html(name))


def outcome_text(t: Translator, rt: Runtime, ticket: Ticket, outcome: Outcome) -> str:
    if outcome is Outcome.SENT:
        return t("Sent to the staff handling No. {number}.", number=ticket.number)
    if outcome is Outcome.SAVED:
        return t("Saved with No. {number}. No staff group has taken the ticket yet; they "
                 "will see your message when it reaches one.", number=ticket.number)
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
