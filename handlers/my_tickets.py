"""My tickets: a resident's tickets (as reporter or co-reporter), page by page; one ticket with
its history in plain words; "Add information" and "Withdraw", each a one-step draft.

Callback data: my:list (from the main menu: a new message), my:page:<n> (edits in place),
my:t:<id>, my:add:<id>, my:wd:<id>, my:cancel.

The drafts ("addinfo", "withdraw") take the next private message. A person has one private
conversation at a time (storage.repositories.drafts): starting one of these discards an
unfinished report, and starting a report discards them. The conversation router
(handlers/router.py) hands their handler the person's messages, replies included, while one
of these drafts is their conversation.

A co-reporter (someone who joined another resident's report) sees what the ticket is and how
it went — category, place, status and its changes — but not the description, the address or
anyone else's messages: those are the reporter's.

Every handler reads and writes in its unit of work, closes it, and only then talks to
Telegram.
"""

from __future__ import annotations

import html
import logging
import math
import re
from dataclasses import dataclass
from datetime import timedelta

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    filters,
)

from bot.actions.notifier import Notifier
from bot.context import runtime
from bot.i18n import N_, Translator
from bot.logs import bind_log_context
from bot.runtime import Runtime
from bot.services import relay, reporting, tickets
from bot.services.relay import Verdict
from bot.services.text import user_html
from bot.services.tickets import TicketRefused
from bot.views.cards import (
    STATUS_LABELS,
    SYSTEM_REASONS,
    category_name,
    local_time,
    trimmed,
)
from bot.views.places import place_html
from handlers import relay as relay_handlers
from handlers.common import command_of, translator_for
from handlers.survey import rating_words
from storage.models import OPEN_STATUSES, Draft, Ticket, TicketEvent
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

MENU_MY_TICKETS = "my:list"
PREFIX = "my:"
PAGE_SIZE = 5
ADD_INFO = "addinfo"
WITHDRAW = "withdraw"
MY_FLOWS = (ADD_INFO, WITHDRAW)
# A draft of ours is forgotten after a day (abandoned).
DRAFT_TTL = timedelta(hours=24)

DESCRIPTION_LIMIT = 500
EVENT_TEXT_LIMIT = 300
DETAIL_LIMIT = 3900  # of 4096: what the markup and the note about cut history may need

_PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
_DATA = re.compile(r"my:(?:(list|cancel)|(page|t|add|wd):(\d{1,12}))")

_FILE_LABELS = {
    "photo": N_("[photo]"),
    "video": N_("[video]"),
    "document": N_("[document]"),
    "voice": N_("[voice message]"),
    "video_note": N_("[video message]"),
}


def register(app: Application) -> None:
    """In group 0; the drafts' messages come through the router (draft_message)."""
    app.add_handler(CommandHandler("mytickets", mytickets_command, filters=_PRIVATE))
    app.add_handler(CallbackQueryHandler(my_callback, pattern=f"^{PREFIX}"))


# -- list and detail ------------------------------------------------------------------------------

async def mytickets_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = runtime(context)
    async with rt.uow() as uow:
        t = await translator_for(rt, uow, update)
        text, markup = await _list_view(rt, uow, t, update.effective_user.id, 0)
        await uow.commit()  # remember the person, and that this update was handled
    await update.effective_message.reply_html(text, reply_markup=markup)


@dataclass
class _Answer:
    """What to tell Telegram about a pressed button, once the unit of work is closed."""

    alert: str | None = None                                 # a pop-up instead of a change
    show: tuple[str, InlineKeyboardMarkup | None] | None = None  # edits the pressed message
    send: tuple[str, InlineKeyboardMarkup | None] | None = None  # a new message

    async def deliver(self, update: Update) -> None:
        query = update.callback_query
        await query.answer(self.alert, show_alert=self.alert is not None)
        if self.show is not None:
            await _show(query, *self.show)
        if self.send is not None:
            await update.effective_chat.send_message(self.send[0], parse_mode="HTML",
                                                     reply_markup=self.send[1])


async def my_callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = runtime(context)
    async with rt.uow() as uow:
        t = await translator_for(rt, uow, update)
        answer = await _on_button(rt, uow, t, update)
    await answer.deliver(update)


async def _on_button(rt: Runtime, uow: UnitOfWork, t: Translator, update: Update) -> _Answer:
    """Read, and for the drafts write and commit; nothing here talks to Telegram."""
    query = update.callback_query
    user_id = update.effective_user.id
    match = _DATA.fullmatch(query.data or "")
    invalid = _Answer(alert=t("This button is no longer valid."))
    # A person's tickets are shown to them alone: never in a group, whatever the data.
    chat = update.effective_chat
    if match is None or chat is None or chat.type != "private":
        return invalid
    word, action, raw = match.groups()
    if word == "list":
        return _Answer(send=await _list_view(rt, uow, t, user_id, 0))
    if word == "cancel":
        return await _cancel_button(rt, uow, t, user_id)
    number = int(raw)
    if action == "page":
        view = await _list_view(rt, uow, t, user_id, number)
        return invalid if view is None else _Answer(show=view)
    target = await relay.for_resident(uow, ticket_id=number, user_id=user_id)
    if target.verdict is Verdict.IGNORE:  # someone else's, or no ticket at all
        return invalid
    ticket = target.ticket
    if action == "t":
        return _Answer(show=await _detail_view(rt, uow, t, ticket, user_id))
    return await _start_draft(rt, uow, t, user_id, ticket, ADD_INFO if action == "add"
                              else WITHDRAW)


async def _show(query, text: str, markup: InlineKeyboardMarkup | None) -> None:
    """Edit the message in place; a message too old to edit gets a new one instead."""
    try:
        await query.edit_message_text(text, parse_mode="HTML", reply_markup=markup)
    except BadRequest as exc:
        if "not modified" in exc.message:
            return
        await query.message.chat.send_message(text, parse_mode="HTML", reply_markup=markup)


async def _list_view(rt: Runtime, uow: UnitOfWork, t: Translator, user_id: int,
                     page: int) -> tuple[str, InlineKeyboardMarkup | None] | None:
    """Page `page` (from 0) of the person's tickets, newest first; None for a page that
    cannot exist (the number of tickets only grows, so such data was forged)."""
    total = await uow.tickets.count_of_resident(user_id)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    if not 0 <= page < pages:
        return None
    if total == 0:
        return t("You have no tickets yet. To report an issue, open the main menu with "
                 "/start."), None
    lines = [t("<b>My tickets</b> · page {page} of {pages}", page=page + 1, pages=pages)]
    buttons = []
    for ticket in await uow.tickets.of_resident(user_id, offset=page * PAGE_SIZE,
                                                limit=PAGE_SIZE):
        number = t("No. {number}", number=ticket.number)
        status = t(STATUS_LABELS[ticket.status])
        category = category_name(rt.config, ticket.category, t.language)
        created = local_time(rt.config, ticket.created_at)
        lines.append(f"\n<b>{number}</b> · {html.escape(category)}\n{status} · {created}")
        buttons.append([InlineKeyboardButton(f"{number} · {status}",
                                             callback_data=f"{PREFIX}t:{ticket.id}")])
    nav = []
    if page > 0:
        nav.append(InlineKeyboardButton(t("‹ Newer"), callback_data=f"{PREFIX}page:{page - 1}"))
    if page < pages - 1:
        nav.append(InlineKeyboardButton(t("Older ›"), callback_data=f"{PREFIX}page:{page + 1}"))
    if nav:
        buttons.append(nav)
    return "\n".join(lines), InlineKeyboardMarkup(buttons)


async def _detail_view(rt: Runtime, uow: UnitOfWork, t: Translator, ticket: Ticket,
                       user_id: int) -> tuple[str, InlineKeyboardMarkup]:
    number = t("No. {number}", number=ticket.number)
    category = html.escape(category_name(rt.config, ticket.category, t.language))
    head = [f"<b>{number}</b> · {category}",
            t("Status: {status}", status=t(STATUS_LABELS[ticket.status]))]
    node = await uow.nodes.get(ticket.grid_id or ticket.node_id)
    if node is not None:
        head.append(f"📍 {place_html(await uow.nodes.path(node), t.language)}")
    # The address and the description are the reporter's words, not a co-reporter's.
    if ticket.reporter_id == user_id:
        if ticket.address:
            head.append(f"🏠 {user_html(ticket.address)}")
        if ticket.description:
            head.append(f"📝 {user_html(trimmed(ticket.description, DESCRIPTION_LIMIT))}")
    else:
        head.append(t("You joined this report; what the resident who made it wrote stays "
                      "with them and the staff."))
    history = await _history(rt, uow, t, ticket, user_id)
    text = _fitted(t, "\n".join(head), history)

    actions = []
    if relay.may_add(ticket):
        actions.append(InlineKeyboardButton(t("➕ Add information"),
                                            callback_data=f"{PREFIX}add:{ticket.id}"))
    if relay.may_withdraw(ticket, user_id):
        actions.append(InlineKeyboardButton(t("✖️ Withdraw"),
                                            callback_data=f"{PREFIX}wd:{ticket.id}"))
    rows = [actions] if actions else []
    rows.append([InlineKeyboardButton(t("‹ Back to the list"), callback_data=f"{PREFIX}page:0")])
    return text, InlineKeyboardMarkup(rows)


def _fitted(t: Translator, head: str, history: list[str]) -> str:
    """The head and as much of the history as fits, dropping the oldest entries first."""
    title = t("<b>History</b>")
    kept = list(history)
    while True:
        lines = [head, "", title]
        if len(kept) < len(history):
            lines.append(t("… earlier entries are not shown."))
        text = "\n".join(lines + kept)
        if relay.utf16_len(text) <= DETAIL_LIMIT or not kept:
            return text
        kept.pop(0)


async def _history(rt: Runtime, uow: UnitOfWork, t: Translator, ticket: Ticket,
                   viewer_id: int) -> list[str]:
    lines = []
    reporter = ticket.reporter_id == viewer_id
    for event in await uow.tickets.events(ticket.id):
        sentence = await _sentence(uow, t, event, ticket, viewer_id, reporter=reporter)
        if sentence is not None:
            lines.append(f"<i>{local_time(rt.config, event.at)}</i> · {sentence}")
    return lines


async def _sentence(uow: UnitOfWork, t: Translator, event: TicketEvent, ticket: Ticket,
                    viewer_id: int, *, reporter: bool) -> str | None:
    """One event in plain words. Workers appear by what they did, never by name or account.
    Each resident sees their own messages only; the workers' messages are the reporter's
    conversation, and a co-reporter (`reporter` False) sees the status changes alone."""
    data = event.data or {}
    kind = event.kind

    def text(key: str) -> str:
        value = relay.clean_text(str(data.get(key) or ""))
        return user_html(trimmed(value, EVENT_TEXT_LIMIT))

    async def place(key: str) -> str:
        node = await uow.nodes.by_code(data[key]) if data.get(key) else None
        return html.escape(node.display_name(t.language)) if node else "—"

    if kind == "created":
        return t("Reported.")
    if kind == "co_reporter":
        if event.actor_id == viewer_id:
            return t("You joined this report.")
        return t("Another resident joined this report.") if reporter else None
    if kind == "claimed":
        return t("Claimed by a worker.")
    if kind == "released":
        return t("The worker handed it back; it waits for another worker.")
    if kind == "started":
        return t("Work started.")
    if kind in ("transfer", "transferred", "escalate", "escalated"):
        to = await place("to_node")
        reason = text("reason")
        if event.actor_role == "system" and data.get("reason") in SYSTEM_REASONS:
            reason = t(SYSTEM_REASONS[data["reason"]])
        if kind.startswith("transfer"):
            if reason:
                return t("Transferred to {place}. Reason: {reason}", place=to, reason=reason)
            return t("Transferred to {place}.", place=to)
        if reason:
            return t("Escalated to {place}. Reason: {reason}", place=to, reason=reason)
        return t("Escalated to {place}.", place=to)
    if kind == "rerouted" and data.get("to_node"):
        return t("Passed on to {place}.", place=await place("to_node"))
    if kind == "resolved":
        return t("Resolved: {note}", note=text("note"))
    if kind == "reopened":
        if data.get("to_node") == data.get("from_node"):  # at the top it stays where it was
            return t("Reopened at {place}.", place=await place("to_node"))
        return t("Reopened and passed to {place}.", place=await place("to_node"))
    if kind == "rated":
        if event.actor_id != viewer_id:
            return None
        return t("You rated it: {answer}",
                 answer=rating_words(t, bool(data.get("solved")), int(data.get("score") or 0),
                                    ticket.kind))
    if kind == "closed":
        return t("Closed.")
    if kind == "withdrawn":
        if not reporter:
            return t("Withdrawn by the resident who reported it.")
        return t("Withdrawn. Reason: {reason}", reason=text("reason"))
    if kind in (relay.RESIDENT_MESSAGE, relay.WORKER_MESSAGE):
        mine = kind == relay.RESIDENT_MESSAGE and event.actor_id == viewer_id
        if not mine and not (reporter and kind == relay.WORKER_MESSAGE):
            return None
        label = _FILE_LABELS.get(data.get("file") or "")
        message = " ".join(part for part in (t(label) if label else "", text("text")) if part)
        message = message or t("[media]")
        if mine:
            return t("You: {message}", message=message)
        return t("Worker: {message}", message=message)
    return None  # internal events (reminders, reroutes without a place) stay internal


# -- the two drafts -------------------------------------------------------------------------------

def _prompt(t: Translator, flow: str, ticket: Ticket) -> str:
    if flow == ADD_INFO:
        return t("Send what you want to add to No. {number}: a text, a photo, a video, a "
                 "document or a voice message. Send /cancel to stop.", number=ticket.number)
    return t("Why do you want to withdraw No. {number}? Please write the reason in a few "
             "words ({min} to {max} characters). Send /cancel to keep the ticket open.",
             number=ticket.number, min=relay.REASON_MIN_CHARS, max=relay.REASON_MAX_CHARS)


def _cancel_keyboard(t: Translator) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(t("Cancel"),
                                                       callback_data=f"{PREFIX}cancel")]])


async def _start_draft(rt: Runtime, uow: UnitOfWork, t: Translator, user_id: int,
                       ticket: Ticket, flow: str) -> _Answer:
    if flow == WITHDRAW and ticket.reporter_id != user_id:
        return _Answer(alert=t("This button is no longer valid."))
    if ticket.status not in OPEN_STATUSES:
        return _Answer(alert=t("No. {number} is no longer open ({status}).",
                               number=ticket.number, status=t(STATUS_LABELS[ticket.status])))
    # The person's one conversation from now on: whatever they were doing before is dropped.
    dropped = await uow.drafts.discard_other_private(user_id, flow)
    await uow.drafts.start(user_id, flow, "wait", {"ticket_id": ticket.id}, rt.clock.now())
    await uow.commit()
    text = _prompt(t, flow, ticket)
    if reporting.FLOW in dropped:
        text = t("Your unfinished report was discarded.") + "\n\n" + text
    return _Answer(send=(text, _cancel_keyboard(t)))


async def _cancel_button(rt: Runtime, uow: UnitOfWork, t: Translator, user_id: int) -> _Answer:
    draft = await _our_draft(rt, uow, user_id)
    if draft is None:
        return _Answer(alert=t("This button is no longer valid."))
    text = await _cancel(uow, t, draft)
    await uow.commit()
    return _Answer(show=(text, None))


async def _cancel(uow: UnitOfWork, t: Translator, draft: Draft) -> str:
    """Cancelling ends this draft only (another flow's draft is not ours to touch)."""
    await uow.drafts.discard(draft.user_id, draft.flow)
    if draft.flow == WITHDRAW:
        ticket = await uow.tickets.get(int(draft.data.get("ticket_id") or 0))
        if ticket is not None:
            return t("Cancelled. No. {number} stays as it is.", number=ticket.number)
    return t("Cancelled. Nothing was added.")


async def _our_draft(rt: Runtime, uow: UnitOfWork, user_id: int) -> Draft | None:
    """The person's conversation if it is one of ours and still current."""
    draft = await uow.drafts.any_of(user_id)
    if draft is None or draft.flow not in MY_FLOWS:
        return None
    if draft.updated_at < rt.clock.now() - DRAFT_TTL:
        return None
    return draft


async def draft_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    user = update.effective_user
    if user is None:
        return
    rt = runtime(context)
    command = command_of(message)
    async with rt.uow() as uow:
        draft = await _our_draft(rt, uow, user.id)
        if draft is None or command not in (None, "cancel"):
            # Not ours; and other commands (/start, /help …) keep their meaning, the draft
            # still waits for its answer afterwards.
            return
        t = await translator_for(rt, uow, update)
        markup = None
        if command == "cancel":
            text = await _cancel(uow, t, draft)
        elif draft.flow == ADD_INFO:
            text, markup = await _add_info(rt, uow, t, draft, message)
        else:
            text, markup = await _withdraw(rt, uow, t, draft, message)
        await uow.commit()
    await message.reply_html(text, reply_markup=markup)
    raise ApplicationHandlerStop


async def _add_info(rt: Runtime, uow: UnitOfWork, t: Translator, draft: Draft,
                    message: Message) -> tuple[str, InlineKeyboardMarkup | None]:
    user = message.from_user
    target = await relay.for_resident(uow, ticket_id=int(draft.data.get("ticket_id") or 0),
                                      user_id=user.id)
    if target.verdict is Verdict.IGNORE:
        await uow.drafts.discard(user.id, ADD_INFO)
        return t("This ticket is no longer available."), None
    outcome = await relay_handlers.take_from_resident(rt, uow, target, user, message)
    ticket = target.ticket
    if outcome is relay_handlers.Outcome.SENT:
        await uow.drafts.discard(user.id, ADD_INFO)
        return t("Added to No. {number} and sent to the staff handling it.",
                 number=ticket.number), None
    if outcome is relay_handlers.Outcome.SAVED:
        await uow.drafts.discard(user.id, ADD_INFO)
        return t("Added to No. {number}. No staff group has taken the ticket yet; they will "
                 "see it when it reaches one.", number=ticket.number), None
    text = relay_handlers.outcome_text(t, rt, ticket, outcome)
    if outcome is relay_handlers.Outcome.CLOSED:
        await uow.drafts.discard(user.id, ADD_INFO)
        return text, None
    # Wrong kind of message or too large: say why, and ask again.
    return text + "\n\n" + _prompt(t, ADD_INFO, ticket), _cancel_keyboard(t)


async def _withdraw(rt: Runtime, uow: UnitOfWork, t: Translator, draft: Draft,
                    message: Message) -> tuple[str, InlineKeyboardMarkup | None]:
    user = message.from_user
    ticket_id = int(draft.data.get("ticket_id") or 0)
    reason = relay.clean_text(message.text or "")
    if not relay.reason_ok(reason):
        ticket = await uow.tickets.get(ticket_id)
        if ticket is None:
            await uow.drafts.discard(user.id, WITHDRAW)
            return t("This ticket is no longer available."), None
        return (t("Please write the reason as text, {min} to {max} characters.",
                  min=relay.REASON_MIN_CHARS, max=relay.REASON_MAX_CHARS)
                + "\n\n" + _prompt(t, WITHDRAW, ticket), _cancel_keyboard(t))
    await uow.drafts.discard(user.id, WITHDRAW)
    try:
        ticket = await tickets.withdraw(uow, rt.clock, ticket_id, user.id, reason)
    except TicketRefused as refused:
        if refused.ticket is None:
            return t("This ticket is no longer available."), None
        return t("No. {number} can no longer be withdrawn: it is {status}.",
                 number=refused.ticket.number,
                 status=t(STATUS_LABELS[refused.ticket.status])), None
    await _tell_about_withdrawal(rt, uow, ticket, reason)
    bind_log_context(ticket=ticket.number)
    log.info("ticket %s withdrawn by its reporter", ticket.number)
    return t("No. {number} is withdrawn. Thank you for letting us know.",
             number=ticket.number), None


async def _tell_about_withdrawal(rt: Runtime, uow: UnitOfWork, ticket: Ticket,
                                 reason: str) -> None:
    """The card shows it, the group is told why, and co-reporters learn it is over."""
    notifier = Notifier(rt, uow)
    await notifier.refresh_card(ticket)
    if ticket.group_chat_id is not None:
        group = await uow.groups.get(ticket.group_chat_id)
        gt = rt.translator(group.language if group else rt.config.default_language)
        await notifier.to_group(ticket, gt(
            "<b>No. {number}</b> was withdrawn by the resident. Reason: {reason}",
            number=ticket.number, reason=user_html(reason)))
    for user_id in await uow.tickets.residents(ticket):
        if user_id == ticket.reporter_id:
            continue  # answered inline
        ct = rt.translator(await notifier.resident_language(user_id))
        text = ct("<b>No. {number}</b> was withdrawn by the resident who reported it; it is "
                  "closed now.", number=ticket.number)
        uow.outbox.add(chat_id=user_id, method="sendMessage",
                       params={"chat_id": user_id, "text": text, "parse_mode": "HTML"},
                       now=rt.clock.now(), ticket_id=ticket.id, purpose="relay")
