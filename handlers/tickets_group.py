"""Grid workers acting on ticket cards in their group: claim, release,
start, resolve with a note, transfer through the org tree with a reason, escalate, details.

Every press is checked before anything changes: the button must be well formed, its ticket
must be handled in this very group, and the person must be a member of the group (asked of
Telegram, cached for a few minutes, before any transaction begins). A ticket someone holds is
started, resolved, released, transferred and escalated by its holder only. Notes and reasons
are asked with a ForceReply prompt in the group; the worker's reply is matched to their draft
row, so a restart between the press and the reply loses nothing, and someone else's reply to
the prompt is not taken.

Telegram is never called while a unit of work is open (see "saying things in the group").
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from telegram import (
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
    Update,
)
from telegram.constants import CallbackQueryLimit, MessageLimit, ParseMode
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    ContextTypes,
)
from telegram.helpers import mention_html

from bot.actions.notifier import Notifier, bring_copy_up_to_date
from bot.config import Config
from bot.context import runtime
from bot.i18n import N_, Translator
from bot.logs import bind_log_context
from bot.runtime import Runtime
from bot.services import routing, surveys, tickets
from bot.services.grids import path_label
from bot.services.relay import clean_name
from bot.services.text import user_html, utf16_len
from bot.services.tickets import Refusal, TicketRefused
from bot.views.cards import (
    ACTION_PREFIX,
    STATUS_LABELS,
    SYSTEM_REASONS,
    local_time,
    role_name,
    trimmed,
    your_request,
)
from bot.views.places import place_html
from handlers.common import is_group, translator_for
from handlers.membership_check import Membership, membership
from handlers.survey import rating_words
from storage.models import OPEN_STATUSES, OrgNode, Ticket, TicketEvent
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

# Replies to our prompts are taken in this handler group: after the residents' private drafts
# (my_tickets, -20), before the relay of replies (-10) and group 0. A reply to a prompt is an
# answer to the bot, not a message for the resident; any other reply is left alone.
HISTORY_TEXT_LIMIT = 200  # characters of a relayed message shown in Details

CARD_ACTIONS = ("claim", "start", "resolve", "release", "transfer", "escalate", "details")
PICK_OPEN, PICK_CHOOSE, PICK_CANCEL = "tt", "tc", "tx"  # the transfer picker's buttons
PICKER_ACTIONS = (PICK_OPEN, PICK_CHOOSE, PICK_CANCEL)
# Sending a ticket elsewhere: while someone holds it, only they may (tickets.move_refusal).
MOVE_ACTIONS = ("transfer", "escalate", *PICKER_ACTIONS)
PICKER_PAGE = 20  # places per page: Telegram keyboards stay small and readable

# ForceReply prompts, as remembered in ticket_message.purpose, and their draft flows.
PROMPT_FLOWS = {"resolve_prompt": "resolve", "transfer_prompt": "transfer"}
PROMPT_STEPS = {"resolve": "note", "transfer": "reason"}
NOTE_MIN_CHARS, NOTE_MAX_CHARS = 2, 1000

_DATA = re.compile(r"tk:([a-z]+):(\d{1,18})(?::(\d{1,18}))?(?::(\d{1,4}))?", re.ASCII)
_ARITY = {**dict.fromkeys(CARD_ACTIONS, (1,)), PICK_OPEN: (2, 3), PICK_CHOOSE: (2,),
          PICK_CANCEL: (1,)}

@dataclass(frozen=True)
class ButtonData:
    action: str
    ticket_id: int
    node_id: int | None = None
    page: int = 0


def parse_button(data: str | None) -> ButtonData | None:
    """`tk:<action>:<ticket>` on cards, `tk:tt:<ticket>:<node>[:<page>]`, `tk:tc:<ticket>:<node>`
    and `tk:tx:<ticket>` in the transfer picker; anything else is forged or from an old
    version."""
    match = _DATA.fullmatch(data or "")
    if match is None:
        return None
    action, *numbers = match.groups()
    numbers = [int(n) for n in numbers if n is not None]
    if len(numbers) not in _ARITY.get(action, ()):
        return None
    return ButtonData(action, numbers[0], *numbers[1:])


# -- who the worker is, as residents and other groups see them -------------------------------

def worker_name(update: Update) -> str:
    """The worker's name for cards, notices and mentions: one line, without the control and
    bidi characters a name could use to garble or disguise the text around it."""
    return clean_name(update.effective_user.full_name)[:128] or "?"


def role_label(node: OrgNode | None) -> Callable[[Translator], str]:
    """The role of the group that acts: "grid worker", "community centre", … or the desk's name,
    in whichever language the reader needs."""
    return lambda t: role_name(t, node)


async def group_node(uow: UnitOfWork, chat_id: int) -> OrgNode | None:
    group = await uow.groups.get(chat_id)
    return await uow.nodes.get(group.node_id) if group and group.node_id else None


# -- saying things in the group --------------------------------------------------------------
#
# Nothing here talks to Telegram while a unit of work is open: on SQLite every transaction
# holds the database's single write lock from its first statement, so waiting for Telegram
# inside one would stall every other chat and the outbox. Handlers read and write in the
# unit of work, commit (or let it close), and only then answer, send or edit.

Step = Callable[[], Awaitable[object]]


def thread_of(message: Message | None, topic_id: int | None) -> int | None:
    """The forum topic to answer in: the ticket's own, else the one the press came from."""
    if topic_id is not None:
        return topic_id
    if message is not None and getattr(message, "is_topic_message", False):
        return message.message_thread_id
    return None


async def say(context: ContextTypes.DEFAULT_TYPE, chat_id: int, text: str, *,
              reply_to: int | None, thread: int | None, markup=None) -> Message:
    reply = (ReplyParameters(reply_to, allow_sending_without_reply=True)
             if reply_to is not None else None)
    return await context.bot.send_message(chat_id, text, parse_mode=ParseMode.HTML,
                                          reply_markup=markup, message_thread_id=thread,
                                          reply_parameters=reply)


def short(text: str) -> str:
    """Callback answers are plain text of at most 200 characters."""
    limit = CallbackQueryLimit.ANSWER_CALLBACK_QUERY_TEXT_LENGTH
    return text if len(text) <= limit else text[: limit - 1] + "…"


def state_text(t: Translator, ticket: Ticket) -> str:
    return t("No. {number} is now: {status}.", number=ticket.number,
             status=t(STATUS_LABELS[ticket.status]))


def refusal_text(t: Translator, exc: TicketRefused, user_id: int) -> str:
    ticket, refusal = exc.ticket, exc.refusal
    if ticket is None or refusal is Refusal.NOT_FOUND:
        return t("This button is no longer valid.")
    number = ticket.number
    if refusal is Refusal.TAKEN:
        if ticket.holder_id == user_id:
            return t("You already hold No. {number}.", number=number)
        return t("No. {number} is already held by {name}.", number=number,
                 name=ticket.holder_name or "?")
    if refusal is Refusal.NOT_HOLDER:
        if ticket.holder_name:
            return t("Only {name}, who holds No. {number}, can do that.",
                     name=ticket.holder_name, number=number)
        return t("Claim No. {number} first.", number=number)
    if refusal is Refusal.TOP_REACHED:
        return t("No. {number} is already at the top, with the district centre.",
                 number=number)
    if refusal is Refusal.SAME_NODE:
        return t("No. {number} is already there.", number=number)
    return state_text(t, ticket)


# -- asking the worker for a note or a reason --------------------------------------------------

@dataclass(frozen=True)
class Prompt:
    """A ForceReply question for the worker who pressed, and the draft that takes the answer."""

    purpose: str           # a key of PROMPT_FLOWS
    ticket_id: int
    data: dict             # the draft's data, but for the prompt's message id
    question: str          # HTML
    placeholder: str
    reply_to: int | None
    thread: int | None


async def ask(context: ContextTypes.DEFAULT_TYPE, update: Update, prompt: Prompt) -> None:
    """Send the prompt, then in one transaction start the worker's draft (with the prompt's
    message id) and remember the prompt as the ticket's. It is the update's first commit, so
    the update_id is recorded with them (storage.uow): callers commit nothing before.

    Why the send comes first: the prompt's id is known only once it is sent, and Telegram is
    never waited for inside a transaction. A crash after the send and before the commit leaves
    nothing recorded, not even the update_id, so Telegram delivers the update again and the
    worker gets a second prompt, which works; the first is an orphan whose replies nobody takes
    as the answer (in a forum topic the relay may pass them on as an ordinary message). Once
    the commit is done, a redelivered update is dropped by the update processor before any
    handler runs: no second prompt. The other order (commit the draft and the update_id, send,
    then remember the prompt) would lose the only prompt for good on a crash in between: the
    update is not delivered again and no reply to the unknown prompt is ever taken."""
    rt = runtime(context)
    user = update.effective_user
    # With selective=True Telegram opens the reply field only for the people mentioned.
    text = mention_html(user.id, worker_name(update)) + "\n" + prompt.question
    sent = await say(context, update.effective_chat.id, text, reply_to=prompt.reply_to,
                     thread=prompt.thread,
                     markup=ForceReply(selective=True,
                                       input_field_placeholder=prompt.placeholder[:64]))
    flow = PROMPT_FLOWS[prompt.purpose]
    async with rt.uow() as uow:
        await uow.drafts.start(user.id, flow, step=PROMPT_STEPS[flow],
                               data={**prompt.data, "prompt_id": sent.message_id},
                               now=rt.clock.now())
        await uow.tickets.remember_message(sent.chat_id, sent.message_id, prompt.ticket_id,
                                           prompt.purpose)
        await uow.commit()


def resolve_question(t: Translator, ticket: Ticket) -> tuple[str, str]:
    """The question for a resolution note, and the reply field's placeholder."""
    return (t("Reply to this message with the resolution note for No. {number}.",
              number=ticket.number), t("Resolution note"))


def transfer_question(t: Translator, ticket: Ticket, place: str) -> tuple[str, str]:
    """The question for a transfer's reason (`place` is HTML), and the placeholder. The reason
    reaches the residents word for word: the worker is told so before writing it."""
    question = t("Reply to this message with the reason for transferring No. {number} to "
                 "{place}.", number=ticket.number, place=place)
    return (question + "\n" + t("The resident will see this reason as you write it."),
            t("Reason for the transfer"))


# -- button presses --------------------------------------------------------------------------

@dataclass
class Press:
    """A checked press: well-formed data, the ticket of this group, a member of this group.
    Actions work in the unit of work and queue what Telegram is to be told in `after`, which
    runs once the transaction is over."""

    update: Update
    context: ContextTypes.DEFAULT_TYPE
    rt: Runtime
    uow: UnitOfWork
    t: Translator
    data: ButtonData
    ticket: Ticket
    thread: int | None  # as the press found the ticket: a move takes it out of its topic
    after: list[Step] = field(default_factory=list)

    @property
    def query(self):
        return self.update.callback_query

    @property
    def chat_id(self) -> int:
        return self.update.effective_chat.id

    @property
    def user_id(self) -> int:
        return self.update.effective_user.id

    def answer(self, text: str | None = None, *, alert: bool = False) -> None:
        query = self.query
        if text is None:
            self.after.append(lambda: query.answer())
        elif alert:
            self.after.append(lambda: query.answer(short(text), show_alert=True))
        else:
            self.after.append(lambda: query.answer(short(text)))

    def alert(self, text: str) -> None:
        self.answer(text, alert=True)

    def refused(self, exc: TicketRefused) -> None:
        text = refusal_text(self.t, exc, self.user_id)
        # Pressing Claim on one's own ticket again is harmless: a toast, not an alert.
        mine = exc.refusal is Refusal.TAKEN and exc.ticket.holder_id == self.user_id
        self.answer(text, alert=not mine)

    def say(self, text: str, markup=None) -> None:
        """A message in the group, replying to the message pressed (in the ticket's topic)."""
        context, chat_id, reply_to = self.context, self.chat_id, self.query.message.message_id
        thread = self.thread
        self.after.append(lambda: say(context, chat_id, text, reply_to=reply_to, thread=thread,
                                      markup=markup))

    def edit(self, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
        """Edit the message pressed (a picker)."""
        query = self.query
        self.after.append(lambda: edit_picker(query, text, markup))

    def ask(self, purpose: str, data: dict, question: str, placeholder: str) -> None:
        prompt = Prompt(purpose, self.ticket.id, data, question, placeholder,
                        reply_to=self.query.message.message_id, thread=self.thread)
        context, update = self.context, self.update
        self.after.append(lambda: ask(context, update, prompt))


async def card_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = runtime(context)
    query = update.callback_query
    data = parse_button(query.data)
    if not (is_group(update) and query.message is not None):
        data = None
    # Asked before the unit of work opens: never wait for Telegram holding the write lock.
    member = (await membership(context, update.effective_chat.id, update.effective_user.id)
              if data is not None else None)
    after: list[Step] = []
    async with rt.uow() as uow:
        t = await translator_for(rt, uow, update)
        ticket = await uow.tickets.get(data.ticket_id) if data is not None else None
        refusal = await _press_refusal(uow, update, t, data, ticket, member)
        if refusal is not None:
            after.append(lambda: query.answer(short(refusal), show_alert=True))
        else:
            press = Press(update, context, rt, uow, t, data, ticket,
                          thread_of(query.message, ticket.topic_id), after)
            if data.action in MOVE_ACTIONS and (
                    moving := tickets.move_refusal(ticket, press.user_id)) is not None:
                press.refused(TicketRefused(moving, ticket))
            else:
                await _ACTIONS[data.action](press)
    for step in after:
        await step()
    if data is not None and data.action in CARD_ACTIONS and member is Membership.MEMBER:
        await bring_copy_up_to_date(rt, query.message, query.data, data.ticket_id)


async def _press_refusal(uow: UnitOfWork, update: Update, t: Translator,
                         data: ButtonData | None, ticket: Ticket | None,
                         member: Membership | None) -> str | None:
    """Why the press is refused outright (plain text), or None."""
    if ticket is None:
        return t("This button is no longer valid.")
    if ticket.group_chat_id != update.effective_chat.id:
        return t("No. {number} is handled in another group now.", number=ticket.number)
    if member is Membership.UNKNOWN:
        return t("I could not check that you are a member of this group. Please try again "
                 "in a moment.")
    if member is not Membership.MEMBER:
        return t("Only members of this group can act on its tickets.")
    if data.action in PICKER_ACTIONS and not await _is_picker(uow, ticket,
                                                              update.callback_query.message):
        return t("This button is no longer valid.")
    if data.action != "details" and ticket.status not in OPEN_STATUSES:
        return state_text(t, ticket) + " " + t("Only Details is available now.")
    return None


async def _is_picker(uow: UnitOfWork, ticket: Ticket, message: Message) -> bool:
    """Picker buttons edit the message they are pressed on. Pickers are sent as answers and
    never remembered, so a forged picker button on the card, or on any message the bot keeps
    for a ticket (cards, relayed messages, prompts), must not rewrite it."""
    if message.message_id == ticket.card_message_id:
        return False
    return await uow.tickets.message(message.chat.id, message.message_id) is None


async def _claim(p: Press) -> None:
    name = worker_name(p.update)
    try:
        ticket = await tickets.claim(p.uow, p.rt.clock, p.ticket.id, p.user_id, name)
    except TicketRefused as exc:
        p.refused(exc)
        return
    await _refresh_and_tell(p, ticket, name, N_("{role} {name} has taken on {request}."))
    await p.uow.commit()
    p.answer(p.t("You have claimed No. {number}.", number=ticket.number))


async def _refresh_and_tell(p: Press, ticket: Ticket, name: str, msgid: str) -> None:
    """The card shows the new state; residents hear it from "<role> <name>" in their
    language. `msgid` takes {role}, {name} and {request}."""
    notifier = Notifier(p.rt, p.uow)
    await notifier.refresh_card(ticket)
    role = role_label(await group_node(p.uow, p.chat_id))
    await notifier.tell_residents_with(ticket, lambda t: t(
        msgid, role=html.escape(role(t)), name=user_html(name),
        request=your_request(t, ticket)))


async def _release(p: Press) -> None:
    try:
        ticket = await tickets.release(p.uow, p.rt.clock, p.ticket.id, p.user_id,
                                        config=p.rt.config)
    except TicketRefused as exc:
        p.refused(exc)
        return
    await Notifier(p.rt, p.uow).refresh_card(ticket)
    await p.uow.commit()
    p.answer(p.t("You have released No. {number}; it waits to be claimed again.",
                 number=ticket.number))


async def _start(p: Press) -> None:
    try:
        ticket = await tickets.start(p.uow, p.rt.clock, p.ticket.id, p.user_id)
    except TicketRefused as exc:
        p.refused(exc)
        return
    await _refresh_and_tell(p, ticket, ticket.holder_name or worker_name(p.update),
                            N_("{role} {name} has started work on {request}."))
    await p.uow.commit()
    p.answer(p.t("Work on No. {number} has started.", number=ticket.number))


async def _resolve(p: Press) -> None:
    refusal = tickets.resolve_refusal(p.ticket, p.user_id)
    if refusal is not None:
        p.refused(TicketRefused(refusal, p.ticket))
        return
    # Nothing is written now: the draft is saved with the prompt, once it is sent (see ask).
    p.answer()
    question, placeholder = resolve_question(p.t, p.ticket)
    p.ask("resolve_prompt", {"ticket_id": p.ticket.id, "chat_id": p.chat_id}, question,
          placeholder)


async def _escalate(p: Press) -> None:
    outcome = await move_ticket(p.rt, p.uow, p.update, p.t, p.ticket, to_node_id=None,
                                reason="", kind="escalated")
    if not outcome.moved:
        p.alert(outcome.text)
        return
    p.answer(outcome.text)
    p.say(outcome.note)


async def _details(p: Press) -> None:
    text = await history_text(p.uow, p.rt, p.t, p.ticket)
    p.answer()
    p.say(text)


# -- transfer: picking a place in the org tree -----------------------------------------------

async def _transfer(p: Press) -> None:
    root = await p.uow.nodes.root()
    if root is None:
        p.alert(p.t("This button is no longer valid."))
        return
    text, markup = await picker(p.uow, p.t, p.ticket, root, 0)
    p.answer()
    p.say(text, markup=markup)


async def picker(uow: UnitOfWork, t: Translator, ticket: Ticket, node: OrgNode,
                 page: int) -> tuple[str, InlineKeyboardMarkup]:
    """One level of the tree: the places under `node` (open one to go down), choose `node`
    itself, go up, or cancel. Desks hang under the district, so they are listed there."""
    path = await uow.nodes.path(node)
    current = await uow.nodes.get(ticket.node_id)
    here = current.display_name(t.language) if current else "?"
    text = t("↪️ Where should No. {number} go? Open a place to see what lies under it, then "
             "choose it.\nIt is now with: <b>{current}</b>\nLooking at: <b>{place}</b>",
             number=ticket.number, current=html.escape(here),
             place=place_html(path, t.language))
    children = await uow.nodes.children(node.id)
    pages = max(1, -(-len(children) // PICKER_PAGE))
    page = min(max(page, 0), pages - 1)
    shown = children[page * PICKER_PAGE:(page + 1) * PICKER_PAGE]

    def button(label: str, *parts: int, action: str = PICK_OPEN) -> InlineKeyboardButton:
        data = ":".join([f"{ACTION_PREFIX}{action}", str(ticket.id), *map(str, parts)])
        return InlineKeyboardButton(label, callback_data=data)

    rows = [[button(child.display_name(t.language), child.id) for child in shown[i:i + 2]]
            for i in range(0, len(shown), 2)]
    if pages > 1:
        turn = [button("‹", node.id, page - 1)] if page > 0 else []
        if page + 1 < pages:
            turn.append(button("›", node.id, page + 1))
        rows.append(turn)
    if node.id != ticket.node_id:
        rows.append([button(t("✅ Choose {place}", place=node.display_name(t.language)),
                            node.id, action=PICK_CHOOSE)])
    last = [button(t("⬆️ Up"), node.parent_id)] if node.parent_id else []
    last.append(button(t("✖️ Cancel"), action=PICK_CANCEL))
    rows.append(last)
    return text, InlineKeyboardMarkup(rows)


async def edit_picker(query, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Edit the picker message; a double press showing the same view again is no error."""
    try:
        await query.edit_message_text(text, parse_mode=ParseMode.HTML, reply_markup=markup)
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            raise


async def _pick_open(p: Press) -> None:
    node = await p.uow.nodes.get(p.data.node_id)
    if node is None:
        p.alert(p.t("This button is no longer valid."))
        return
    text, markup = await picker(p.uow, p.t, p.ticket, node, p.data.page)
    p.answer()
    p.edit(text, markup)


async def _pick_choose(p: Press) -> None:
    node = await p.uow.nodes.get(p.data.node_id)
    if node is None:
        p.alert(p.t("This button is no longer valid."))
        return
    if node.id == p.ticket.node_id:
        p.refused(TicketRefused(Refusal.SAME_NODE, p.ticket))
        return
    path = await p.uow.nodes.path(node)
    _, group = await routing.handling_group(p.uow, node)
    if group is None:
        p.alert(p.t("No group serves {place} yet; choose another place.",
                    place=path_label(path, p.t.language)))
        return
    place = place_html(path, p.t.language)
    p.answer()
    p.edit(p.t("↪️ No. {number} will go to <b>{place}</b> once the reason is given.",
               number=p.ticket.number, place=place))
    # Nothing is written now: the draft is saved with the prompt, once it is sent (see ask).
    question, placeholder = transfer_question(p.t, p.ticket, place)
    p.ask("transfer_prompt", {"ticket_id": p.ticket.id, "chat_id": p.chat_id,
                              "node_id": node.id}, question, placeholder)


async def _pick_cancel(p: Press) -> None:
    p.answer()
    p.edit(html.escape(p.t("Transfer of No. {number} cancelled.", number=p.ticket.number)))


_ACTIONS = {
    "claim": _claim, "release": _release, "start": _start, "resolve": _resolve,
    "transfer": _transfer, "escalate": _escalate, "details": _details,
    PICK_OPEN: _pick_open, PICK_CHOOSE: _pick_choose, PICK_CANCEL: _pick_cancel,
}


# -- moving a ticket to another place (transfer and escalation) ------------------------------

@dataclass(frozen=True)
class MoveOutcome:
    """What to say once the transaction is over. Nothing moved: `text` is why (plain text).
    Moved: `text` is the short confirmation for a button, `note` (HTML) tells the group who
    sent the ticket where."""

    moved: bool
    text: str
    note: str = ""


async def move_ticket(rt: Runtime, uow: UnitOfWork, update: Update, t: Translator,
                      ticket: Ticket, *, to_node_id: int | None, reason: str,
                      kind: str) -> MoveOutcome:
    """Move the ticket and show the move as every mover does (``Notifier.moved``: the card
    retired here, its forum topic closed and a new card in the group that serves its new
    place, or the card refreshed when that is this same group; the residents told), and
    commit. A refusal changes and commits nothing. Telegram is told
    nothing here: the caller does that once the unit of work is closed."""
    name = worker_name(update)
    user_id = update.effective_user.id
    refusal = tickets.move_refusal(ticket, user_id)
    if refusal is not None:
        return MoveOutcome(False, refusal_text(t, TicketRefused(refusal, ticket), user_id))

    # Where it would go, before anything changes: a refusal that names the place.
    source = await uow.nodes.get(ticket.node_id)
    if to_node_id is None and source is not None:
        if await routing.escalation_target(uow, source) is None:
            handler, _ = await routing.handling_group(uow, source)
            if handler.parent_id is not None:  # levels above, but no group there yet
                parent = await uow.nodes.get(handler.parent_id)
                return MoveOutcome(False, t(
                    "No group serves {place} yet; choose another place.",
                    place=path_label(await uow.nodes.path(parent), t.language)))
    elif to_node_id is not None:
        target = await uow.nodes.get(to_node_id)
        if target is not None and (await routing.handling_group(uow, target))[1] is None:
            return MoveOutcome(False, t(
                "No group serves {place} yet; choose another place.",
                place=path_label(await uow.nodes.path(target), t.language)))
    try:
        ticket, source, target = await tickets.move(
            uow, rt.clock, rt.config, ticket.id, to_node_id=to_node_id, actor_id=user_id,
            role="worker", reason=reason, kind=kind)
    except TicketRefused as exc:
        return MoveOutcome(False, refusal_text(t, exc, user_id))
    # As the locked row has them; showing the move points the ticket at its new group.
    old_chat, old_card, old_topic = (ticket.group_chat_id, ticket.card_message_id,
                                     ticket.topic_id)
    target_path = await uow.nodes.path(target)
    source_path = await uow.nodes.path(source)
    here = _moved_note(t, kind, name=name, place=place_html(target_path, t.language),
                       reason=reason, number=ticket.number)
    await Notifier(rt, uow).moved(
        ticket, old_chat=old_chat, old_card=old_card, old_topic=old_topic,
        left=lambda _: here, announce=False,  # the handler answers the worker with it
        arrived=lambda gt: _arrived_note(gt, kind, name=name, reason=reason,
                                         place=place_html(source_path, gt.language)),
        residents=lambda rt_: _resident_note(
            rt_, kind, place=place_html(target_path, rt_.language), reason=reason,
            request=your_request(rt_, ticket)))
    await uow.commit()
    bind_log_context(ticket=ticket.number)
    log.info("ticket %s %s from node %s to node %s", ticket.number, kind, source.code,
             target.code)
    return MoveOutcome(True, t("No. {number} has gone to {place}.", number=ticket.number,
                               place=path_label(target_path, t.language)), here)


def _moved_note(t: Translator, kind: str, *, name: str, place: str, reason: str,
                number: str) -> str:
    if kind == "escalated":
        return t("⬆️ {name} escalated No. {number} to <b>{place}</b>.",
                 name=user_html(name), number=number, place=place)
    return t("↪️ {name} transferred No. {number} to <b>{place}</b>. Reason: {reason}",
             name=user_html(name), number=number, place=place, reason=user_html(reason))


def _arrived_note(t: Translator, kind: str, *, name: str, place: str, reason: str) -> str:
    if kind == "escalated":
        return t("⬆️ Escalated from {place} by {name}.", place=place, name=user_html(name))
    return t("↪️ Transferred from {place} by {name}. Reason: {reason}", place=place,
             name=user_html(name), reason=user_html(reason))


def _resident_note(t: Translator, kind: str, *, place: str, reason: str, request: str) -> str:
    if kind == "escalated":
        return t("We have passed {request} up to {place}.", request=request, place=place)
    return t("We have passed {request} on to {place}.\nReason: {reason}", request=request,
             place=place,
             reason=user_html(reason))


# -- replies to our prompts ------------------------------------------------------------------

@dataclass(frozen=True)
class Answered:
    """What a reply to a prompt comes to, said once the transaction is over: a message in
    the group (HTML), or the question again."""

    thread: int | None
    reply: str | None = None
    again: Prompt | None = None


async def prompt_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A reply in a group: if it answers one of our prompts, take it (and stop there);
    otherwise leave it to the relay and the handlers of group 0."""
    message = update.effective_message
    user = update.effective_user
    replied = message.reply_to_message if message else None
    if replied is None or user is None:
        return
    rt = runtime(context)
    chat_id = update.effective_chat.id
    async with rt.uow() as uow:
        known = await uow.tickets.message(chat_id, replied.message_id)
        if known is None or known.purpose not in PROMPT_FLOWS:
            return
        t = await translator_for(rt, uow, update)
        answered = await _take_answer(rt, uow, update, t, known.ticket_id, known.purpose)
    if answered.reply is not None:
        await say(context, chat_id, answered.reply, reply_to=message.message_id,
                  thread=answered.thread)
    if answered.again is not None:
        await ask(context, update, answered.again)
    raise ApplicationHandlerStop


async def _take_answer(rt: Runtime, uow: UnitOfWork, update: Update, t: Translator,
                       ticket_id: int, purpose: str) -> Answered:
    message = update.effective_message
    user_id = update.effective_user.id
    chat_id = update.effective_chat.id
    flow = PROMPT_FLOWS[purpose]
    draft = await uow.drafts.get(user_id, flow)
    ticket = await uow.tickets.get(ticket_id)
    thread = thread_of(message, ticket.topic_id if ticket else None)
    if (draft is None or ticket is None or draft.data.get("ticket_id") != ticket.id
            or draft.data.get("chat_id") != chat_id):
        return Answered(thread, t(
            "Only the worker who pressed the button can answer this question, and only "
            "its latest version. Press the button on the card again if needed."))
    if ticket.group_chat_id != chat_id:
        await uow.drafts.discard(user_id, flow)
        await uow.commit()
        return Answered(thread, html.escape(t(
            "No. {number} is handled in another group now.", number=ticket.number)))
    text = (message.text or "").strip()
    if text.split("@", 1)[0].split(" ", 1)[0] == "/cancel":
        await uow.drafts.discard(user_id, flow)
        await uow.commit()
        return Answered(thread, html.escape(t(
            "Cancelled. No. {number} stays as it is.", number=ticket.number)))
    if not NOTE_MIN_CHARS <= len(text) <= NOTE_MAX_CHARS:
        # Nothing is written now: the draft is renewed with the new prompt (see ask).
        return Answered(thread, again=await _question_again(
            uow, t, ticket, purpose, dict(draft.data), reply_to=message.message_id,
            thread=thread))
    if flow == "resolve":
        return Answered(thread, await _resolve_with(rt, uow, update, t, ticket, text))
    await uow.drafts.discard(user_id, flow)
    outcome = await move_ticket(rt, uow, update, t, ticket, to_node_id=draft.data["node_id"],
                                reason=text, kind="transferred")
    if not outcome.moved:
        await uow.commit()  # nothing moved; the question is closed all the same
        return Answered(thread, html.escape(outcome.text))
    return Answered(thread, outcome.note)


async def _question_again(uow: UnitOfWork, t: Translator, ticket: Ticket, purpose: str,
                          data: dict, *, reply_to: int, thread: int | None) -> Prompt:
    problem = t("Please reply with a text of {min} to {max} characters.", min=NOTE_MIN_CHARS,
                max=NOTE_MAX_CHARS)
    if purpose == "resolve_prompt":
        question, placeholder = resolve_question(t, ticket)
    else:
        node = await uow.nodes.get(data.get("node_id") or ticket.node_id)
        path = await uow.nodes.path(node) if node else []
        question, placeholder = transfer_question(t, ticket, place_html(path, t.language))
    data.pop("prompt_id", None)
    return Prompt(purpose, ticket.id, data, problem + "\n" + question, placeholder,
                  reply_to=reply_to, thread=thread)


async def _resolve_with(rt: Runtime, uow: UnitOfWork, update: Update, t: Translator,
                        ticket: Ticket, note: str) -> str:
    """Resolve with the note and commit; what to say in the group (HTML)."""
    user = update.effective_user
    chat_id = update.effective_chat.id
    await uow.drafts.discard(user.id, "resolve")
    try:
        ticket = await tickets.resolve(uow, rt.clock, ticket.id, user.id, note)
    except TicketRefused as exc:
        await uow.commit()  # the draft is done with either way
        return html.escape(refusal_text(t, exc, user.id))
    await surveys.plan(uow, rt.clock, rt.config, ticket)
    notifier = Notifier(rt, uow)
    await notifier.refresh_card(ticket)
    role = role_label(await group_node(uow, chat_id))
    name = ticket.holder_name or worker_name(update)
    await notifier.tell_residents_with(ticket, lambda t: t(
        "{role} {name} has resolved {request}.\nResolution: {note}",
        role=html.escape(role(t)), name=user_html(name), request=your_request(t, ticket),
        note=user_html(note)))
    await uow.commit()
    if ticket.enterprise_id is not None:
        return t("✅ No. {number} is resolved. The enterprise contact has been told.",
                 number=ticket.number)
    return t("✅ No. {number} is resolved. The resident has been told.", number=ticket.number)


# -- the history, in plain words -------------------------------------------------------------

# Check-up bookings (bot.services.bookings) log these; {time} is the slot concerned.
_BOOKING_WORDS = {
    "booking_confirmed": N_("Check-up confirmed by {name}"),
    "booking_proposed": N_("{name} proposed another time: {time}"),
    "booking_moved": N_("The enterprise moved the check-up to {time}"),
    "proposal_accepted": N_("The enterprise accepted the new time: {time}"),
    "proposal_declined": N_("The enterprise kept its time"),
}

async def history_text(uow: UnitOfWork, rt: Runtime, t: Translator, ticket: Ticket) -> str:
    events = await uow.tickets.events(ticket.id)
    names = {e.actor_id: e.data.get("name") for e in events
             if e.kind == "claimed" and e.data.get("name")}
    places: dict[str, str] = {}

    async def place(code: str | None) -> str:
        if not code:
            return "?"
        if code not in places:
            node = await uow.nodes.by_code(code)
            places[code] = html.escape(node.display_name(t.language) if node else code)
        return places[code]

    lines = []
    for event in events:
        words = await _event_words(t, ticket, event, names, place, rt.config)
        lines.append(f"{local_time(rt.config, event.at)} · {words}")
    head = [t("<b>No. {number}</b> · history", number=ticket.number),
            t("Status: {status}", status=t(STATUS_LABELS[ticket.status]))]
    return _fit(head, lines)


# A request made for an enterprise (an enterprise matter, a check-up) comes from the
# enterprise's contacts, not from residents of the grid: the history says so.
_CONTACT_WORDS = {
    "created": N_("Reported by the enterprise contact"),
    "co_reporter": N_("Another contact of the enterprise joined the request"),
    "resident_unreachable": N_("The enterprise contact blocked the bot and can no longer be "
                               "reached"),
    "unanswered": N_("Closed: the enterprise contact did not answer the follow-up"),
    "erased": N_("The enterprise contact had their personal data erased"),
}
_RESIDENT_WORDS = {
    "created": N_("Reported by the resident"),
    "co_reporter": N_("Another resident joined the request"),
    "resident_unreachable": N_("The resident blocked the bot and can no longer be reached"),
    "unanswered": N_("Closed: the resident did not answer the follow-up"),
    "erased": N_("The resident had their personal data erased"),
}


async def _event_words(t: Translator, ticket: Ticket, event: TicketEvent, names: dict,
                       place: Callable, rt_config: Config) -> str:
    data = event.data or {}
    contact = ticket.enterprise_id is not None
    who = _CONTACT_WORDS if contact else _RESIDENT_WORDS
    name = user_html(names.get(event.actor_id) or data.get("name") or t("a worker"))
    if event.actor_role == "system":
        name = t("the system")
    kind = event.kind
    if kind == "created" and ticket.kind == "checkup":
        return t("Check-up booked by the enterprise contact")
    if kind in ("created", "co_reporter", "resident_unreachable"):
        return t(who[kind])
    if kind == "claimed":
        return t("Claimed by {name}", name=name)
    if kind == "released":
        return t("Released by {name}", name=name)
    if kind == "started":
        return t("Work started by {name}", name=name)
    if kind == "resolved":
        return t("Resolved by {name}: {note}", name=name,
                 note=user_html(data.get("note") or ""))
    if kind in ("transferred", "escalated"):
        source, target = await place(data.get("from_node")), await place(data.get("to_node"))
        if kind == "escalated":
            text = t("Escalated from {source} to {target} by {name}", source=source,
                     target=target, name=name)
        else:
            text = t("Transferred from {source} to {target} by {name}", source=source,
                     target=target, name=name)
        reason = data.get("reason")
        if event.actor_role == "system" and reason in SYSTEM_REASONS:
            return text + ": " + t(SYSTEM_REASONS[reason])
        return text + (": " + user_html(reason) if reason else "")
    if kind == "withdrawn":
        if contact:
            return t("Withdrawn by the enterprise contact: {reason}",
                     reason=user_html(data.get("reason") or ""))
        return t("Withdrawn by the resident: {reason}",
                 reason=user_html(data.get("reason") or ""))
    if kind == "rerouted":
        if data.get("holder"):
            return t("Passed on to {target}: the group that had it can no longer be reached; "
                     "{name}, who held it there, no longer does",
                     target=await place(data.get("to_node")),
                     name=user_html(data["holder"]))
        return t("Passed on to {target}: the group that had it can no longer be reached",
                 target=await place(data.get("to_node")))
    if kind == "card_failed":  # bot.delivery.facts
        return t("Its card could not be delivered to the group; the district centre was told")
    if kind == "card_arrived":  # bot.delivery.facts
        return t("Its card reached the group after all")
    if kind == "reopened":
        source, target = await place(data.get("from_node")), await place(data.get("to_node"))
        # At the top a reopened ticket stays where it was: no "passed from X to X".
        if data.get("from_node") == data.get("to_node"):
            if contact:
                return t("Reopened by the enterprise contact at {place}", place=target)
            return t("Reopened by the resident at {place}", place=target)
        if contact:
            return t("Reopened by the enterprise contact and passed from {source} to "
                     "{target}", source=source, target=target)
        return t("Reopened by the resident and passed from {source} to {target}",
                 source=source, target=target)
    if kind in _BOOKING_WORDS:
        when = data.get("starts_at")
        moment = local_time(rt_config, datetime.fromisoformat(when)) if when else "—"
        return t(_BOOKING_WORDS[kind], name=name, time=moment)
    if kind == "rated":
        answer = rating_words(t, bool(data.get("solved")), int(data.get("score") or 0),
                              ticket.kind)
        if contact:
            return t("Rated by an enterprise contact: {answer}", answer=answer)
        return t("Rated by a resident: {answer}", answer=answer)
    if kind == "closed":
        if data.get("reason") == "unanswered":
            return t(who["unanswered"])
        if data.get("reason") == "erased":
            return t("Closed: the resident had their personal data erased")
        return t("Closed")
    if kind == "erased":  # bot.services.privacy
        if data.get("by") == "retention":
            return t("Personal data erased: the retention period is over")
        if data.get("scope") == "co_reporter":
            return t("A co-reporter had their personal data erased")
        return t(who["erased"])
    # Relayed messages and added information (their kinds belong to the relay).
    message = user_html(trimmed(str(data.get("text") or ""), HISTORY_TEXT_LIMIT))
    if data.get("file"):
        message = (message + " " if message else "") + "📎"
    if event.actor_role == "resident" and contact:
        return t("The enterprise contact: {message}", message=message or "…")
    if event.actor_role == "resident":
        return t("The resident: {message}", message=message or "…")
    if event.actor_role == "worker":
        return t("{name}: {message}", name=name, message=message or "…")
    return t("Other update")


def _fit(head: Sequence[str], lines: Sequence[str]) -> str:
    """Whole lines only (no cut tags); the newest lines win when the history is long."""
    # Counted on the HTML source in UTF-16 units: never less than what Telegram counts.
    budget = MessageLimit.MAX_TEXT_LENGTH - sum(utf16_len(h) + 1 for h in head) - 2
    kept: list[str] = []
    for line in reversed(lines):
        size = utf16_len(line) + 1
        if size > budget:
            kept.append("…")
            break
        kept.append(line)
        budget -= size
    return "\n".join([*head, *reversed(kept)])


def register(app: Application) -> None:
    """Before the fallback for unknown callbacks (group 0); the answers to prompts come
    through the router (prompt_reply)."""
    app.add_handler(CallbackQueryHandler(card_button, pattern=f"^{ACTION_PREFIX}"))


