"""Grid workers acting on ticket cards in their group: claim, release, start, resolve with a
note, transfer through the org tree with a reason, escalate, details.

Every press is checked before anything changes: the button must be well formed, its ticket
must be handled in this very group, and the person must be a member of the group (the door
asks Telegram before the action runs). A ticket someone holds is started, resolved, released,
transferred and escalated by its holder only. Notes and reasons are asked with a question in
the group that the worker answers with a reply (``Prompt``): the door sends it, then
``remember_prompt`` starts the worker's draft with the question's message id, so a restart
between the press and the reply loses nothing, and someone else's reply is not taken
(``bot.actions.prompts``).
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.actions.groups_membership import Membership
from bot.actions.moving import move_and_show
from bot.actions.notifier import Notifier
from bot.actions.people import Who, translator
from bot.actions.updates import defer
from bot.i18n import N_, Translator
from bot.runtime import Runtime
from bot.services import routing, tickets
from bot.services.grids import path_label
from bot.services.text import user_html
from bot.services.tickets import Refusal, TicketRefused
from bot.views import Answer, View
from bot.views import worker as words
from bot.views.cards import role_name, your_request
from bot.views.history import history_text, places_named
from bot.views.places import place_html
from bot.views.worker import (
    MOVE_ACTIONS,
    PICK_CANCEL,
    PICK_CHOOSE,
    PICK_OPEN,
    PICKER_ACTIONS,
    ButtonData,
    refusal_text,
    short,
    state_text,
)
from storage.models import OPEN_STATUSES, OrgNode, Ticket
from storage.uow import UnitOfWork

# The questions, as remembered in ticket_message.purpose, and their draft flows.
PROMPT_FLOWS = {"resolve_prompt": "resolve", "transfer_prompt": "transfer"}
PROMPT_STEPS = {"resolve": "note", "transfer": "reason"}


@dataclass(frozen=True)
class Press:
    """A press as the door read it: who pressed (``name``: as cards and residents show
    them), on which message (``message_thread``: the forum topic it is in, if any), the
    button's data (None: not a card's button) and whether the person is in the group."""

    who: Who
    name: str
    message_id: int
    message_thread: int | None
    data: ButtonData | None
    member: Membership | None


@dataclass(frozen=True)
class Prompt:
    """A question for the worker, answered with a reply, and the draft that takes the answer
    (``data``, but for the question's message id: known once the door has sent it)."""

    purpose: str  # a key of PROMPT_FLOWS
    ticket_id: int
    data: dict
    view: View
    thread: int | None


@dataclass
class Outcome:
    """What the door shows (``answer``), then the question it sends and remembers, if any."""

    answer: Answer
    prompt: Prompt | None = None
    # Whether the pressed message may be a second copy of the card, for the door to bring up
    # to date (notifier.bring_copy_up_to_date); False when it is the ticket's card itself,
    # which spares that look-up its own transaction.
    maybe_copy: bool = True


def refused(t: Translator, exc: TicketRefused, user_id: int | None,
            thread: int | None = None) -> Outcome:
    text = short(refusal_text(t, exc, user_id))
    # Pressing Claim on one's own ticket again is harmless: a toast, not an alert.
    if exc.refusal is Refusal.TAKEN and exc.ticket.holder_id == user_id:
        return Outcome(Answer(toast=text, thread=thread))
    return Outcome(Answer(alert=text, thread=thread))


def alert(text: str) -> Outcome:
    return Outcome(Answer(alert=short(text)))


@dataclass
class _Pressed:
    rt: Runtime
    uow: UnitOfWork
    t: Translator
    press: Press
    data: ButtonData
    ticket: Ticket
    thread: int | None  # as the press found the ticket: a move takes it out of its topic

    @property
    def user_id(self) -> int:
        return self.press.who.user_id

    @property
    def chat_id(self) -> int:
        return self.press.who.chat_id

    def refused(self, exc: TicketRefused) -> Outcome:
        return refused(self.t, exc, self.user_id, self.thread)

    def answer(self, **kwargs) -> Answer:
        return Answer(thread=self.thread, **kwargs)

    def prompt(self, purpose: str, data: dict, question: str, placeholder: str) -> Prompt:
        view = words.prompt_view(self.user_id, self.press.name, question, placeholder)
        return Prompt(purpose, self.ticket.id, data, view, self.thread)


async def press(rt: Runtime, pressed: Press) -> Outcome:
    """A card's or the transfer picker's button pressed in a group."""
    data = pressed.data
    async with rt.uow() as uow:
        t = await translator(rt, uow, pressed.who)
        ticket = await uow.tickets.get(data.ticket_id) if data is not None else None
        refusal = await _press_refusal(uow, t, pressed, ticket)
        if refusal is not None:
            return alert(refusal)
        p = _Pressed(rt, uow, t, pressed, data, ticket,
                     ticket.topic_id if ticket.topic_id is not None else pressed.message_thread)
        if data.action in MOVE_ACTIONS and (
                moving := tickets.move_refusal(ticket, p.user_id)) is not None:
            return p.refused(TicketRefused(moving, ticket))
        outcome = await _ACTIONS[data.action](p)
        # The card as the press found it (a move may put it elsewhere: then it is looked at).
        if data.action not in MOVE_ACTIONS and (p.chat_id, pressed.message_id) == (
                ticket.group_chat_id, ticket.card_message_id):
            outcome.maybe_copy = False
        if outcome.prompt is not None:
            await defer(uow)  # the question's commit records the update (remember_prompt)
        return outcome


async def _press_refusal(uow: UnitOfWork, t: Translator, pressed: Press,
                         ticket: Ticket | None) -> str | None:
    """Why the press is refused outright (plain text), or None."""
    if ticket is None:
        return t("This button is no longer valid.")
    if ticket.group_chat_id != pressed.who.chat_id:
        return t("No. {number} is handled in another group now.", number=ticket.number)
    if pressed.member is Membership.UNKNOWN:
        return t("I could not check that you are a member of this group. Please try again "
                 "in a moment.")
    if pressed.member is not Membership.MEMBER:
        return t("Only members of this group can act on its tickets.")
    if pressed.data.action in PICKER_ACTIONS and not await _is_picker(uow, ticket, pressed):
        return t("This button is no longer valid.")
    if pressed.data.action != "details" and ticket.status not in OPEN_STATUSES:
        return state_text(t, ticket) + " " + t("Only Details is available now.")
    return None


async def _is_picker(uow: UnitOfWork, ticket: Ticket, pressed: Press) -> bool:
    """Picker buttons edit the message they are pressed on. Pickers are sent as answers and
    never remembered, so a forged picker button on the card, or on any message the bot keeps
    for a ticket (cards, relayed messages, prompts), must not rewrite it."""
    if pressed.message_id == ticket.card_message_id:
        return False
    return await uow.tickets.message(pressed.who.chat_id, pressed.message_id) is None


def role_label(node: OrgNode | None) -> Callable[[Translator], str]:
    """The role of the group that acts: "grid worker", "community centre", … or the desk's name,
    in whichever language the reader needs."""
    return lambda t: role_name(t, node)


async def group_node(uow: UnitOfWork, chat_id: int) -> OrgNode | None:
    group = await uow.groups.get(chat_id)
    return await uow.nodes.get(group.node_id) if group and group.node_id else None


async def refresh_and_tell(rt: Runtime, uow: UnitOfWork, chat_id: int, ticket: Ticket,
                           name: str, msgid: str, **values: str) -> None:
    """The card shows the new state; residents hear it from "<role> <name>" in their
    language. `msgid` takes {role}, {name} and {request} (and ``values``, escaped here)."""
    notifier = Notifier(rt, uow)
    await notifier.refresh_card(ticket)
    role = role_label(await group_node(uow, chat_id))
    extra = {key: user_html(value) for key, value in values.items()}
    await notifier.tell_residents_with(ticket, lambda t: t(
        msgid, role=html.escape(role(t)), name=user_html(name),
        request=your_request(t, ticket), **extra))


async def _claim(p: _Pressed) -> Outcome:
    name = p.press.name
    try:
        ticket = await tickets.claim(p.uow, p.rt.clock, p.ticket.id, p.user_id, name)
    except TicketRefused as exc:
        return p.refused(exc)
    await refresh_and_tell(p.rt, p.uow, p.chat_id, ticket, name,
                           N_("{role} {name} has taken on {request}."))
    await p.uow.commit()
    return Outcome(p.answer(toast=short(p.t("You have claimed No. {number}.",
                                            number=ticket.number))))


async def _release(p: _Pressed) -> Outcome:
    try:
        ticket = await tickets.release(p.uow, p.rt.clock, p.ticket.id, p.user_id,
                                        config=p.rt.config)
    except TicketRefused as exc:
        return p.refused(exc)
    await Notifier(p.rt, p.uow).refresh_card(ticket)
    await p.uow.commit()
    return Outcome(p.answer(toast=short(p.t(
        "You have released No. {number}; it waits to be claimed again.",
        number=ticket.number))))


async def _start(p: _Pressed) -> Outcome:
    try:
        ticket = await tickets.start(p.uow, p.rt.clock, p.ticket.id, p.user_id)
    except TicketRefused as exc:
        return p.refused(exc)
    await refresh_and_tell(p.rt, p.uow, p.chat_id, ticket, ticket.holder_name or p.press.name,
                           N_("{role} {name} has started work on {request}."))
    await p.uow.commit()
    return Outcome(p.answer(toast=short(p.t("Work on No. {number} has started.",
                                            number=ticket.number))))


async def _resolve(p: _Pressed) -> Outcome:
    refusal = tickets.resolve_refusal(p.ticket, p.user_id)
    if refusal is not None:
        return p.refused(TicketRefused(refusal, p.ticket))
    # Nothing is written now: the draft is saved with the prompt, once it is sent.
    question, placeholder = words.resolve_question(p.t, p.ticket)
    return Outcome(p.answer(), p.prompt(
        "resolve_prompt", {"ticket_id": p.ticket.id, "chat_id": p.chat_id}, question,
        placeholder))


async def _escalate(p: _Pressed) -> Outcome:
    outcome = await move_ticket(p.rt, p.uow, p.t, p.press.who, p.press.name, p.ticket,
                                to_node_id=None, reason="", kind="escalated")
    if not outcome.moved:
        return Outcome(p.answer(alert=short(outcome.text)))
    return Outcome(p.answer(toast=short(outcome.text), say=[View(outcome.note)]))


async def _details(p: _Pressed) -> Outcome:
    events = await p.uow.tickets.events(p.ticket.id)
    nodes = {}
    for code in places_named(events):
        node = await p.uow.nodes.by_code(code)
        if node is not None:
            nodes[code] = node
    text = history_text(p.t, p.rt.config, p.ticket, events, nodes)
    return Outcome(p.answer(say=[View(text)]))


# -- transfer: picking a place in the org tree -----------------------------------------------

async def _picker(uow: UnitOfWork, t: Translator, ticket: Ticket, node: OrgNode,
                  page: int) -> View:
    path = await uow.nodes.path(node)
    current = await uow.nodes.get(ticket.node_id)
    children = await uow.nodes.children(node.id)
    return words.picker(t, ticket, current, path, children, page)


async def _transfer(p: _Pressed) -> Outcome:
    root = await p.uow.nodes.root()
    if root is None:
        return alert(p.t("This button is no longer valid."))
    view = await _picker(p.uow, p.t, p.ticket, root, 0)
    return Outcome(p.answer(say=[view]))


async def _pick_open(p: _Pressed) -> Outcome:
    node = await p.uow.nodes.get(p.data.node_id)
    if node is None:
        return alert(p.t("This button is no longer valid."))
    view = await _picker(p.uow, p.t, p.ticket, node, p.data.page)
    return Outcome(p.answer(edit=view))


async def _pick_choose(p: _Pressed) -> Outcome:
    node = await p.uow.nodes.get(p.data.node_id)
    if node is None:
        return alert(p.t("This button is no longer valid."))
    if node.id == p.ticket.node_id:
        return p.refused(TicketRefused(Refusal.SAME_NODE, p.ticket))
    path = await p.uow.nodes.path(node)
    _, group = await routing.handling_group(p.uow, node)
    if group is None:
        return alert(p.t("No group serves {place} yet; choose another place.",
                         place=path_label(path, p.t.language)))
    place = place_html(path, p.t.language)
    # Nothing is written now: the draft is saved with the prompt, once it is sent.
    question, placeholder = words.transfer_question(p.t, p.ticket, place)
    return Outcome(p.answer(edit=words.chosen(p.t, p.ticket, place)), p.prompt(
        "transfer_prompt", {"ticket_id": p.ticket.id, "chat_id": p.chat_id, "node_id": node.id},
        question, placeholder))


async def _pick_cancel(p: _Pressed) -> Outcome:
    return Outcome(p.answer(edit=words.transfer_cancelled(p.t, p.ticket)))


_ACTIONS: dict[str, Callable[[_Pressed], Awaitable[Outcome]]] = {
    "claim": _claim, "release": _release, "start": _start, "resolve": _resolve,
    "transfer": _transfer, "escalate": _escalate, "details": _details,
    PICK_OPEN: _pick_open, PICK_CHOOSE: _pick_choose, PICK_CANCEL: _pick_cancel,
}


async def remember_prompt(rt: Runtime, who: Who, prompt: Prompt, message_id: int) -> None:
    """The question was sent as ``message_id``: in one transaction, start the worker's draft
    (with the question's message id) and remember the question as the ticket's. It is the
    update's first commit, so the update_id is recorded with them (storage.uow): the action
    that asked commits nothing before.

    Why the send comes first: the question's id is known only once it is sent, and Telegram
    is never waited for inside a transaction. A crash after the send and before the commit
    leaves nothing recorded, not even the update_id, so Telegram delivers the update again
    and the worker gets a second question, which works; the first is an orphan whose replies
    nobody takes as the answer (in a forum topic the relay may pass them on as an ordinary
    message). Once the commit is done, a redelivered update is stopped by the pressing
    action (``bot.actions.updates.defer``) before the question is sent: no second question.
    The other order (commit the draft and the update_id, send, then remember the question)
    would lose the only question
    for good on a crash in between: the update is not delivered again and no reply to the
    unknown question is ever taken."""
    flow = PROMPT_FLOWS[prompt.purpose]
    async with rt.uow() as uow:
        await uow.drafts.start(who.user_id, flow, step=PROMPT_STEPS[flow],
                               data={**prompt.data, "prompt_id": message_id},
                               now=rt.clock.now())
        await uow.tickets.remember_message(who.chat_id, message_id, prompt.ticket_id,
                                           prompt.purpose)
        await uow.commit()


# -- moving a ticket to another place (transfer and escalation) ------------------------------

@dataclass(frozen=True)
class MoveOutcome:
    """Nothing moved: `text` is why (plain text). Moved: `text` is the short confirmation for
    a button, `note` (HTML) tells the group who sent the ticket where."""

    moved: bool
    text: str
    note: str = ""


async def move_ticket(rt: Runtime, uow: UnitOfWork, t: Translator, who: Who, name: str,
                      ticket: Ticket, *, to_node_id: int | None, reason: str,
                      kind: str) -> MoveOutcome:
    """A worker moves the ticket (``bot.actions.moving``), and it is committed; the group
    that sent it hears of it from the answer to the worker (``note``). A refusal changes and
    commits nothing."""
    user_id = who.user_id
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
    number = ticket.number

    def here(reader: Translator, place: str) -> str:
        return words.moved_note(reader, kind, name=name, place=place, reason=reason,
                                number=number)

    try:
        moved = await move_and_show(
            rt, uow, ticket.id, to_node_id=to_node_id, actor_id=user_id, role="worker",
            reason=reason, kind=kind, announce=False, left=here,
            arrived=lambda reader, place: words.arrived_note(reader, kind, name=name,
                                                             place=place, reason=reason),
            residents=lambda reader, place: words.resident_note(
                reader, kind, place=place, reason=reason,
                request=your_request(reader, ticket)))
    except TicketRefused as exc:
        return MoveOutcome(False, refusal_text(t, exc, user_id))
    target_path = await uow.nodes.path(moved.target)
    await uow.commit()
    return MoveOutcome(True, t("No. {number} has gone to {place}.", number=number,
                               place=path_label(target_path, t.language)),
                       here(t, place_html(target_path, t.language)))
