"""Grid workers acting on ticket cards in their group (issue 3, items 5 and 9): claim, release,
start, resolve with a note, transfer through the org tree with a reason, escalate, details.

Every press is checked before anything changes: the button must be well formed, its ticket
must be handled in this very group, and the person must be a member of the group (asked of
Telegram, cached for a few minutes). Notes and reasons are asked with a ForceReply prompt in
the group; the worker's reply is matched to their draft row, so a restart between the press and
the reply loses nothing, and someone else's reply to the prompt is not taken.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

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
    MessageHandler,
    filters,
)
from telegram.helpers import mention_html

from bot.apispec import utf16_len
from bot.i18n import Translator
from bot.runtime import Runtime, runtime
from bot.services import routing, tickets
from bot.services.grids import path_label
from bot.services.tickets import Refusal, TicketRefused
from handlers.cards import ACTION_PREFIX, STATUS_LABELS, local_time, role_name, trimmed
from handlers.common import is_group, place_html, translator_for
from handlers.membership_check import Membership, membership
from handlers.notify import Notifier
from storage.models import OPEN_STATUSES, Draft, GroupChat, OrgNode, Ticket, TicketEvent
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

# Replies to our prompts are taken in this handler group: after the residents' private drafts
# (my_tickets, -20), before the relay of replies (-10) and group 0. A reply to a prompt is an
# answer to the bot, not a message for the resident; any other reply is left alone.
PROMPT_HANDLER_GROUP = -15
HISTORY_TEXT_LIMIT = 200  # characters of a relayed message shown in Details

CARD_ACTIONS = ("claim", "start", "resolve", "release", "transfer", "escalate", "details")
PICK_OPEN, PICK_CHOOSE, PICK_CANCEL = "tt", "tc", "tx"  # the transfer picker's buttons
PICKER_PAGE = 20  # places per page: Telegram keyboards stay small and readable

# ForceReply prompts, as remembered in ticket_message.purpose, and their draft flows.
PROMPT_FLOWS = {"resolve_prompt": "resolve", "transfer_prompt": "transfer"}
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
    return update.effective_user.full_name[:128]


def role_label(node: OrgNode | None) -> Callable[[Translator], str]:
    """The role of the group that acts: "grid worker", "community centre", … or the desk's name,
    in whichever language the reader needs."""
    return lambda t: role_name(t, node)


async def group_node(uow: UnitOfWork, chat_id: int) -> OrgNode | None:
    group = await uow.groups.get(chat_id)
    return await uow.nodes.get(group.node_id) if group and group.node_id else None


# -- saying things in the group --------------------------------------------------------------

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


# -- button presses --------------------------------------------------------------------------

@dataclass
class Press:
    """A checked press: well-formed data, the ticket of this group, a member of this group."""

    update: Update
    context: ContextTypes.DEFAULT_TYPE
    rt: Runtime
    uow: UnitOfWork
    t: Translator
    data: ButtonData
    ticket: Ticket

    @property
    def query(self):
        return self.update.callback_query

    @property
    def chat_id(self) -> int:
        return self.update.effective_chat.id

    @property
    def user_id(self) -> int:
        return self.update.effective_user.id

    @property
    def thread(self) -> int | None:
        return thread_of(self.query.message, self.ticket.topic_id)

    async def alert(self, text: str) -> None:
        await self.query.answer(short(text), show_alert=True)

    async def refused(self, exc: TicketRefused) -> None:
        text = refusal_text(self.t, exc, self.user_id)
        # Pressing Claim on one's own ticket again is harmless: a toast, not an alert.
        mine = exc.refusal is Refusal.TAKEN and exc.ticket.holder_id == self.user_id
        await self.query.answer(short(text), show_alert=not mine)


async def card_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = runtime(context)
    query = update.callback_query
    data = parse_button(query.data)
    async with rt.uow() as uow:
        t = await translator_for(rt, uow, update)
        ticket = None
        if data is not None and is_group(update) and query.message is not None:
            ticket = await uow.tickets.get(data.ticket_id)
        if ticket is None:
            await query.answer(t("This button is no longer valid."), show_alert=True)
            return
        chat_id = update.effective_chat.id
        if ticket.group_chat_id != chat_id:
            await query.answer(short(t("No. {number} is handled in another group now.",
                                       number=ticket.number)), show_alert=True)
            return
        member = await membership(context, chat_id, update.effective_user.id)
        if member is Membership.UNKNOWN:
            await query.answer(t("I could not check that you are a member of this group. "
                                 "Please try again in a moment."), show_alert=True)
            return
        if member is Membership.NOT_MEMBER:
            await query.answer(t("Only members of this group can act on its tickets."),
                               show_alert=True)
            return
        if data.action != "details" and ticket.status not in OPEN_STATUSES:
            await query.answer(short(state_text(t, ticket) + " " + t(
                "Only Details is available now.")), show_alert=True)
            return
        press = Press(update, context, rt, uow, t, data, ticket)
        await _ACTIONS[data.action](press)


async def _claim(p: Press) -> None:
    name = worker_name(p.update)
    try:
        ticket = await tickets.claim(p.uow, p.rt.clock, p.ticket.id, p.user_id, name)
    except TicketRefused as exc:
        await p.refused(exc)
        return
    notifier = Notifier(p.rt, p.uow)
    await notifier.refresh_card(ticket)
    role = role_label(await group_node(p.uow, p.chat_id))
    await notifier.tell_residents_with(ticket, lambda t: t(
        "{role} {name} has taken on your request.", role=html.escape(role(t)),
        name=html.escape(name)))
    await p.uow.commit()
    await p.query.answer(short(p.t("You have claimed No. {number}.", number=ticket.number)))


async def _release(p: Press) -> None:
    try:
        ticket = await tickets.release(p.uow, p.rt.clock, p.ticket.id, p.user_id)
    except TicketRefused as exc:
        await p.refused(exc)
        return
    await Notifier(p.rt, p.uow).refresh_card(ticket)
    await p.uow.commit()
    await p.query.answer(short(p.t("You have released No. {number}; it waits to be claimed "
                                   "again.", number=ticket.number)))


async def _start(p: Press) -> None:
    try:
        ticket = await tickets.start(p.uow, p.rt.clock, p.ticket.id, p.user_id)
    except TicketRefused as exc:
        await p.refused(exc)
        return
    notifier = Notifier(p.rt, p.uow)
    await notifier.refresh_card(ticket)
    role = role_label(await group_node(p.uow, p.chat_id))
    name = ticket.holder_name or worker_name(p.update)
    await notifier.tell_residents_with(ticket, lambda t: t(
        "{role} {name} has started work on your request.", role=html.escape(role(t)),
        name=html.escape(name)))
    await p.uow.commit()
    await p.query.answer(short(p.t("Work on No. {number} has started.",
                                   number=ticket.number)))


async def _resolve(p: Press) -> None:
    refusal = tickets.resolve_refusal(p.ticket, p.user_id)
    if refusal is not None:
        await p.refused(TicketRefused(refusal, p.ticket))
        return
    draft = await p.uow.drafts.start(p.user_id, "resolve", step="note", data={
        "ticket_id": p.ticket.id, "chat_id": p.chat_id, "prompt_id": None}, now=p.rt.clock.now())
    await p.uow.commit()
    await p.query.answer()
    question = p.t("Reply to this message with the resolution note for No. {number}.",
                   number=p.ticket.number)
    await ask(p.context, p.uow, p.update, p.ticket, draft, "resolve_prompt", question,
              reply_to=p.query.message.message_id, thread=p.thread,
              placeholder=p.t("Resolution note"))


async def ask(context: ContextTypes.DEFAULT_TYPE, uow: UnitOfWork, update: Update,
              ticket: Ticket, draft: Draft, purpose: str, question: str, *, reply_to: int | None,
              thread: int | None, placeholder: str) -> None:
    """Send a ForceReply prompt to the worker and remember it (a second, small transaction
    after the one that saved the draft: the prompt's message id is known only once sent)."""
    rt = runtime(context)
    user = update.effective_user
    # With selective=True Telegram opens the reply field only for the people mentioned.
    text = mention_html(user.id, worker_name(update)) + "\n" + question
    prompt = await say(context, update.effective_chat.id, text, reply_to=reply_to,
                       thread=thread, markup=ForceReply(selective=True,
                                                        input_field_placeholder=placeholder[:64]))
    await uow.tickets.remember_message(prompt.chat_id, prompt.message_id, ticket.id, purpose)
    uow.drafts.save(draft, step=draft.step, data={**draft.data, "prompt_id": prompt.message_id},
                    now=rt.clock.now())
    await uow.commit()


async def _escalate(p: Press) -> None:
    await move_ticket(p.context, p.uow, p.update, p.t, p.ticket, to_node_id=None, reason="",
                      kind="escalated", reply_to=p.query.message.message_id,
                      answer=p.query.answer)


async def _details(p: Press) -> None:
    text = await history_text(p.uow, p.rt, p.t, p.ticket)
    await p.query.answer()
    await say(p.context, p.chat_id, text, reply_to=p.query.message.message_id, thread=p.thread)


# -- transfer: picking a place in the org tree -----------------------------------------------

async def _transfer(p: Press) -> None:
    root = await p.uow.nodes.root()
    if root is None:
        await p.alert(p.t("This button is no longer valid."))
        return
    text, markup = await picker(p.uow, p.t, p.ticket, root, 0)
    await p.query.answer()
    await say(p.context, p.chat_id, text, reply_to=p.query.message.message_id, thread=p.thread,
              markup=markup)


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


async def edit_picker(p: Press, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Edit the picker message; a double press showing the same view again is no error."""
    try:
        await p.query.edit_message_text(text, parse_mode=ParseMode.HTML, reply_markup=markup)
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            raise


async def _pick_open(p: Press) -> None:
    node = await p.uow.nodes.get(p.data.node_id)
    if node is None:
        await p.alert(p.t("This button is no longer valid."))
        return
    text, markup = await picker(p.uow, p.t, p.ticket, node, p.data.page)
    await p.query.answer()
    await edit_picker(p, text, markup)


async def _pick_choose(p: Press) -> None:
    node = await p.uow.nodes.get(p.data.node_id)
    if node is None:
        await p.alert(p.t("This button is no longer valid."))
        return
    if node.id == p.ticket.node_id:
        await p.refused(TicketRefused(Refusal.SAME_NODE, p.ticket))
        return
    path = await p.uow.nodes.path(node)
    _, group = await routing.handling_group(p.uow, node)
    if group is None:
        await p.alert(p.t("No group serves {place} yet; choose another place.",
                          place=path_label(path, p.t.language)))
        return
    draft = await p.uow.drafts.start(p.user_id, "transfer", step="reason", data={
        "ticket_id": p.ticket.id, "chat_id": p.chat_id, "node_id": node.id, "prompt_id": None},
        now=p.rt.clock.now())
    await p.uow.commit()
    place = place_html(path, p.t.language)
    await p.query.answer()
    await edit_picker(p, p.t("↪️ No. {number} will go to <b>{place}</b> once the reason is "
                             "given.", number=p.ticket.number, place=place))
    question = p.t("Reply to this message with the reason for transferring No. {number} to "
                   "{place}.", number=p.ticket.number, place=place)
    await ask(p.context, p.uow, p.update, p.ticket, draft, "transfer_prompt", question,
              reply_to=p.query.message.message_id, thread=p.thread,
              placeholder=p.t("Reason for the transfer"))


async def _pick_cancel(p: Press) -> None:
    await p.query.answer()
    await edit_picker(p, html.escape(p.t("Transfer of No. {number} cancelled.",
                                         number=p.ticket.number)))


_ACTIONS = {
    "claim": _claim, "release": _release, "start": _start, "resolve": _resolve,
    "transfer": _transfer, "escalate": _escalate, "details": _details,
    PICK_OPEN: _pick_open, PICK_CHOOSE: _pick_choose, PICK_CANCEL: _pick_cancel,
}


# -- moving a ticket to another place (transfer and escalation) ------------------------------

async def move_ticket(context: ContextTypes.DEFAULT_TYPE, uow: UnitOfWork, update: Update,
                      t: Translator, ticket: Ticket, *, to_node_id: int | None, reason: str,
                      kind: str, reply_to: int | None,
                      answer: Callable[..., Awaitable] | None = None) -> bool:
    """Move the ticket, retire its card here and post a new one in the group that serves its
    new place (or refresh the card when that is this same group), tell the residents, commit,
    and say so here. `answer` is the callback's answer when a button was pressed. Returns
    False, having changed nothing and said why, when the ticket cannot move."""
    rt = runtime(context)
    name = worker_name(update)
    user_id = update.effective_user.id
    # Captured before the move: post_card points the ticket at its new group and card.
    old_chat, old_card = ticket.group_chat_id, ticket.card_message_id
    thread = thread_of(update.effective_message, ticket.topic_id)

    async def refuse(text: str) -> bool:
        if answer is not None:
            await answer(short(text), show_alert=True)
        else:
            await say(context, old_chat, html.escape(text), reply_to=reply_to, thread=thread)
        return False

    # Where it would go and who would get it, before anything changes.
    group: GroupChat | None = None
    target_id = to_node_id
    if target_id is None:
        source = await uow.nodes.get(ticket.node_id)
        target_id = source.parent_id if source else None
    target = await uow.nodes.get(target_id) if target_id is not None else None
    if target is not None:
        _, group = await routing.handling_group(uow, target)
        if group is None:
            return await refuse(t("No group serves {place} yet; choose another place.",
                                  place=path_label(await uow.nodes.path(target), t.language)))
    try:
        ticket, source, target = await tickets.move(
            uow, rt.clock, rt.config, ticket.id, to_node_id=to_node_id, actor_id=user_id,
            role="worker", reason=reason, kind=kind)
    except TicketRefused as exc:
        return await refuse(refusal_text(t, exc, user_id))
    target_path = await uow.nodes.path(target)
    source_path = await uow.nodes.path(source)
    notifier = Notifier(rt, uow)
    here = _moved_note(t, kind, name=name, place=place_html(target_path, t.language),
                       reason=reason, number=ticket.number)
    if group.chat_id == old_chat:
        await notifier.refresh_card(ticket)
    else:
        await notifier.retire_card(ticket, chat_id=old_chat, message_id=old_card, note=here)
        await notifier.post_card(ticket, note=_arrived_note(
            rt.translator(group.language), kind, name=name, reason=reason,
            place=place_html(source_path, group.language)))
    await notifier.tell_residents_with(ticket, lambda t: _resident_note(
        t, kind, place=place_html(target_path, t.language), reason=reason))
    await uow.commit()
    log.info("ticket %s %s from node %s to node %s", ticket.id, kind, source.id, target.id)
    if answer is not None:
        await answer(short(t("No. {number} has gone to {place}.", number=ticket.number,
                             place=path_label(target_path, t.language))))
    await say(context, old_chat, here, reply_to=reply_to, thread=thread)
    return True


def _moved_note(t: Translator, kind: str, *, name: str, place: str, reason: str,
                number: str) -> str:
    if kind == "escalated":
        return t("⬆️ {name} escalated No. {number} to <b>{place}</b>.",
                 name=html.escape(name), number=number, place=place)
    return t("↪️ {name} transferred No. {number} to <b>{place}</b>. Reason: {reason}",
             name=html.escape(name), number=number, place=place, reason=html.escape(reason))


def _arrived_note(t: Translator, kind: str, *, name: str, place: str, reason: str) -> str:
    if kind == "escalated":
        return t("⬆️ Escalated from {place} by {name}.", place=place, name=html.escape(name))
    return t("↪️ Transferred from {place} by {name}. Reason: {reason}", place=place,
             name=html.escape(name), reason=html.escape(reason))


def _resident_note(t: Translator, kind: str, *, place: str, reason: str) -> str:
    if kind == "escalated":
        return t("Your request has been passed up to {place}.", place=place)
    return t("Your request has been passed on to {place}.\nReason: {reason}", place=place,
             reason=html.escape(reason))


# -- replies to our prompts ------------------------------------------------------------------

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
        flow = PROMPT_FLOWS[known.purpose]
        draft = await uow.drafts.get(user.id, flow)
        ticket = await uow.tickets.get(known.ticket_id)
        thread = thread_of(message, ticket.topic_id if ticket else None)
        if (draft is None or ticket is None or draft.data.get("ticket_id") != ticket.id
                or draft.data.get("chat_id") != chat_id):
            await say(context, chat_id, t(
                "Only the worker who pressed the button can answer this question, and only "
                "its latest version. Press the button on the card again if needed."),
                reply_to=message.message_id, thread=thread)
            raise ApplicationHandlerStop
        if ticket.group_chat_id != chat_id:
            await uow.drafts.discard(user.id, flow)
            await uow.commit()
            await say(context, chat_id, html.escape(t(
                "No. {number} is handled in another group now.", number=ticket.number)),
                reply_to=message.message_id, thread=thread)
            raise ApplicationHandlerStop
        text = (message.text or "").strip()
        if text.split("@", 1)[0].split(" ", 1)[0] == "/cancel":
            await uow.drafts.discard(user.id, flow)
            await uow.commit()
            await say(context, chat_id, html.escape(t(
                "Cancelled. No. {number} stays as it is.", number=ticket.number)),
                reply_to=message.message_id, thread=thread)
            raise ApplicationHandlerStop
        if not NOTE_MIN_CHARS <= len(text) <= NOTE_MAX_CHARS:
            await _ask_again(context, uow, update, t, ticket, draft, known.purpose, thread)
            raise ApplicationHandlerStop
        if flow == "resolve":
            await _resolve_with(context, uow, update, t, ticket, text, thread)
        else:
            await uow.drafts.discard(user.id, flow)
            moved = await move_ticket(context, uow, update, t, ticket,
                                      to_node_id=draft.data["node_id"], reason=text,
                                      kind="transferred", reply_to=message.message_id)
            if not moved:
                await uow.commit()  # nothing moved; the question is closed all the same
    raise ApplicationHandlerStop


async def _ask_again(context: ContextTypes.DEFAULT_TYPE, uow: UnitOfWork, update: Update,
                     t: Translator, ticket: Ticket, draft: Draft, purpose: str,
                     thread: int | None) -> None:
    problem = t("Please reply with a text of {min} to {max} characters.", min=NOTE_MIN_CHARS,
                max=NOTE_MAX_CHARS)
    if purpose == "resolve_prompt":
        question = t("Reply to this message with the resolution note for No. {number}.",
                     number=ticket.number)
        placeholder = t("Resolution note")
    else:
        node = await uow.nodes.get(draft.data.get("node_id") or ticket.node_id)
        path = await uow.nodes.path(node) if node else []
        question = t("Reply to this message with the reason for transferring No. {number} to "
                     "{place}.", number=ticket.number, place=place_html(path, t.language))
        placeholder = t("Reason for the transfer")
    await ask(context, uow, update, ticket, draft, purpose, problem + "\n" + question,
              reply_to=update.effective_message.message_id, thread=thread,
              placeholder=placeholder)


async def _resolve_with(context: ContextTypes.DEFAULT_TYPE, uow: UnitOfWork, update: Update,
                        t: Translator, ticket: Ticket, note: str, thread: int | None) -> None:
    rt = runtime(context)
    user = update.effective_user
    message = update.effective_message
    await uow.drafts.discard(user.id, "resolve")
    try:
        ticket = await tickets.resolve(uow, rt.clock, ticket.id, user.id, note)
    except TicketRefused as exc:
        await uow.commit()  # the draft is done with either way
        await say(context, message.chat_id, html.escape(refusal_text(t, exc, user.id)),
                  reply_to=message.message_id, thread=thread)
        return
    notifier = Notifier(rt, uow)
    await notifier.refresh_card(ticket)
    role = role_label(await group_node(uow, message.chat_id))
    name = ticket.holder_name or worker_name(update)
    await notifier.tell_residents_with(ticket, lambda t: t(
        "{role} {name} has resolved your request.\nResolution: {note}",
        role=html.escape(role(t)), name=html.escape(name), note=html.escape(note)))
    await uow.commit()
    await say(context, message.chat_id, t("✅ No. {number} is resolved. The resident has been "
                                          "told.", number=ticket.number),
              reply_to=message.message_id, thread=thread)


# -- the history, in plain words -------------------------------------------------------------

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
        words = await _event_words(t, event, names, place)
        lines.append(f"{local_time(rt.config, event.at)} · {words}")
    head = [t("<b>No. {number}</b> · history", number=ticket.number),
            t("Status: {status}", status=t(STATUS_LABELS[ticket.status]))]
    return _fit(head, lines)


async def _event_words(t: Translator, event: TicketEvent, names: dict,
                       place: Callable) -> str:
    data = event.data or {}
    name = html.escape(names.get(event.actor_id) or data.get("name") or t("a worker"))
    if event.actor_role == "system":
        name = t("the system")
    kind = event.kind
    if kind == "created":
        return t("Reported by the resident")
    if kind == "co_reporter":
        return t("Another resident joined the request")
    if kind == "claimed":
        return t("Claimed by {name}", name=name)
    if kind == "released":
        return t("Released by {name}", name=name)
    if kind == "started":
        return t("Work started by {name}", name=name)
    if kind == "resolved":
        return t("Resolved by {name}: {note}", name=name,
                 note=html.escape(data.get("note") or ""))
    if kind in ("transferred", "escalated"):
        source, target = await place(data.get("from_node")), await place(data.get("to_node"))
        if kind == "escalated":
            text = t("Escalated from {source} to {target} by {name}", source=source,
                     target=target, name=name)
        else:
            text = t("Transferred from {source} to {target} by {name}", source=source,
                     target=target, name=name)
        reason = data.get("reason")
        return text + (": " + html.escape(reason) if reason else "")
    if kind == "withdrawn":
        return t("Withdrawn by the resident: {reason}",
                 reason=html.escape(data.get("reason") or ""))
    if kind == "rerouted":
        return t("Passed on to {target}: the group that had it can no longer be reached",
                 target=await place(data.get("to_node")))
    if kind == "reopened":
        return t("Reopened")
    if kind == "closed":
        return t("Closed")
    # Relayed messages and added information (their kinds belong to the relay).
    message = html.escape(trimmed(str(data.get("text") or ""), HISTORY_TEXT_LIMIT))
    if data.get("file"):
        message = (message + " " if message else "") + "📎"
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
    """Before the fallback for unknown callbacks (group 0); the prompt replies run in their
    own group before the relay of replies."""
    app.add_handler(CallbackQueryHandler(card_button, pattern=f"^{ACTION_PREFIX}"))
    app.add_handler(MessageHandler(
        filters.ChatType.GROUPS & filters.UpdateType.MESSAGE & filters.REPLY, prompt_reply),
        group=PROMPT_HANDLER_GROUP)


