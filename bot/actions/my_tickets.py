"""My tickets: a resident's tickets (as reporter or co-reporter), page by page; one ticket with
its history; "Add information" and "Withdraw", each a one-step draft (the words:
bot.views.my_tickets).

The drafts ("addinfo", "withdraw") take the next private message. A person has one private
conversation at a time (storage.repositories.drafts): starting one of these discards an
unfinished report, and starting a report discards them.
"""

from __future__ import annotations

import logging
import math
import re
from datetime import timedelta

from bot.actions import relay as relay_actions
from bot.actions.notifier import Notifier
from bot.actions.people import Who, translator
from bot.actions.relay import Outcome, Said
from bot.i18n import Translator
from bot.logs import bind_log_context
from bot.runtime import Runtime
from bot.services import relay, reporting, tickets
from bot.services.relay import TEXT, Verdict
from bot.services.tickets import TicketRefused
from bot.views import Answer, View
from bot.views import my_tickets as views
from bot.views.my_tickets import ADD_INFO, MY_FLOWS, WITHDRAW
from bot.views.relay import outcome_text
from storage.models import OPEN_STATUSES, Draft, Ticket
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

PAGE_SIZE = 5
# A draft of ours is forgotten after a day (abandoned).
DRAFT_TTL = timedelta(hours=24)

LIST, CANCEL, PAGE, TICKET, ADD, WITHDRAW_BUTTON = "list", "cancel", "page", "t", "add", "wd"


async def listing(rt: Runtime, who: Who) -> Answer:
    """/mytickets: the first page, as a new message."""
    async with rt.uow() as uow:
        t = await translator(rt, uow, who)
        view = await _page(rt, uow, t, who.user_id, 0)
        await uow.commit()  # remember the person, and that this update was handled
    return Answer(say=[view])


_DATA = re.compile(r"my:(?:(list|cancel)|(page|t|add|wd):(\d{1,12}))")


async def press_data(rt: Runtime, who: Who, data: str) -> Answer:
    """A button of my tickets by its data: my:list, my:cancel, my:page:<n>, my:t:<id>,
    my:add:<id>, my:wd:<id> (anything else is an unknown button)."""
    match = _DATA.fullmatch(data or "")
    button, number = None, 0
    if match is not None:
        word, action, raw = match.groups()
        button, number = (word, 0) if word else (action, int(raw))
    return await press(rt, who, button, number)


async def press(rt: Runtime, who: Who, button: str | None, number: int = 0) -> Answer:
    """A button of ours: ``button`` one of list, cancel (no number), page, t, add, wd (with
    ``number``: a page, or a ticket's id); None: data that is none of ours."""
    async with rt.uow() as uow:
        t = await translator(rt, uow, who)
        invalid = Answer(alert=t("This button is no longer valid."))
        # A person's tickets are shown to them alone: never in a group, whatever the data.
        if button is None or who.in_group or who.user_id is None:
            return invalid
        user_id = who.user_id
        if button == LIST:
            return Answer(say=[await _page(rt, uow, t, user_id, 0)])
        if button == CANCEL:
            return await _cancel_button(rt, uow, t, user_id)
        if button == PAGE:
            view = await _page(rt, uow, t, user_id, number)
            return invalid if view is None else Answer(edit=view)
        target = await relay.for_resident(uow, ticket_id=number, user_id=user_id)
        if target.verdict is Verdict.IGNORE:  # someone else's, or no ticket at all
            return invalid
        ticket = target.ticket
        if button == TICKET:
            return Answer(edit=await _detail(rt, uow, t, ticket, user_id))
        if button not in (ADD, WITHDRAW_BUTTON):
            return invalid
        return await _start_draft(rt, uow, t, user_id, ticket,
                                  ADD_INFO if button == ADD else WITHDRAW)


async def _page(rt: Runtime, uow: UnitOfWork, t: Translator, user_id: int,
                page: int) -> View | None:
    """Page `page` (from 0) of the person's tickets, newest first; None for a page that
    cannot exist (the number of tickets only grows, so such data was forged)."""
    total = await uow.tickets.count_of_resident(user_id)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    if not 0 <= page < pages:
        return None
    found = (await uow.tickets.of_resident(user_id, offset=page * PAGE_SIZE, limit=PAGE_SIZE)
             if total else [])
    return views.listing(t, rt.config, found, page, pages)


async def _detail(rt: Runtime, uow: UnitOfWork, t: Translator, ticket: Ticket,
                  user_id: int) -> View:
    node = await uow.nodes.get(ticket.grid_id or ticket.node_id)
    path = await uow.nodes.path(node) if node is not None else []
    events = await uow.tickets.events(ticket.id)
    places = {}
    for event in events:
        code = (event.data or {}).get("to_node")
        if code and code not in places:
            places[code] = await uow.nodes.by_code(code)
    history = views.history(t, rt.config, events, ticket, user_id,
                            {code: node for code, node in places.items() if node is not None})
    return views.detail(t, rt.config, ticket, path, user_id, history,
                        may_add=relay.may_add(ticket),
                        may_withdraw=relay.may_withdraw(ticket, user_id))


# -- the two drafts -------------------------------------------------------------------------------

async def _start_draft(rt: Runtime, uow: UnitOfWork, t: Translator, user_id: int,
                       ticket: Ticket, flow: str) -> Answer:
    if flow == WITHDRAW and ticket.reporter_id != user_id:
        return Answer(alert=t("This button is no longer valid."))
    if ticket.status not in OPEN_STATUSES:
        return Answer(alert=views.not_open(t, ticket))
    # The person's one conversation from now on: whatever they were doing before is dropped.
    dropped = await uow.drafts.discard_other_private(user_id, flow)
    await uow.drafts.start(user_id, flow, "wait", {"ticket_id": ticket.id}, rt.clock.now())
    await uow.commit()
    before = views.report_dropped(t) if reporting.FLOW in dropped else ""
    return Answer(say=[views.asking(t, flow, ticket, before=before)])


async def _cancel_button(rt: Runtime, uow: UnitOfWork, t: Translator, user_id: int) -> Answer:
    draft = await _our_draft(rt, uow, user_id)
    if draft is None:
        return Answer(alert=t("This button is no longer valid."))
    view = await _cancel(uow, t, draft)
    await uow.commit()
    return Answer(edit=view)


async def _cancel(uow: UnitOfWork, t: Translator, draft: Draft) -> View:
    """Cancelling ends this draft only (another flow's draft is not ours to touch)."""
    await uow.drafts.discard(draft.user_id, draft.flow)
    ticket = None
    if draft.flow == WITHDRAW:
        ticket = await uow.tickets.get(int(draft.data.get("ticket_id") or 0))
    return views.cancelled(t, ticket)


async def _our_draft(rt: Runtime, uow: UnitOfWork, user_id: int) -> Draft | None:
    """The person's conversation if it is one of ours and still current."""
    draft = await uow.drafts.any_of(user_id)
    if draft is None or draft.flow not in MY_FLOWS:
        return None
    if draft.updated_at < rt.clock.now() - DRAFT_TTL:
        return None
    return draft


async def take(rt: Runtime, uow: UnitOfWork, t: Translator, who: Who, newest: Draft,
               said: Said, *, cancel: bool) -> Answer:
    """Inside the caller's unit of work (the caller commits): the person's message while
    ``newest``, their newest draft, is one of ours and still current; not ours otherwise."""
    if newest.flow not in MY_FLOWS or newest.updated_at < rt.clock.now() - DRAFT_TTL:
        return Answer.not_mine()
    if cancel:
        view = await _cancel(uow, t, newest)
    elif newest.flow == ADD_INFO:
        view = await _add_info(rt, uow, t, newest, said)
    else:
        view = await _withdraw(rt, uow, t, newest, said)
    return Answer(say=[view])


async def _add_info(rt: Runtime, uow: UnitOfWork, t: Translator, draft: Draft,
                    said: Said) -> View:
    user_id = said.user_id
    target = await relay.for_resident(uow, ticket_id=int(draft.data.get("ticket_id") or 0),
                                      user_id=user_id)
    if target.verdict is Verdict.IGNORE:
        await uow.drafts.discard(user_id, ADD_INFO)
        return views.gone(t)
    outcome = await relay_actions.pass_on(rt, uow, target, user_id, said.name, said.content,
                                          source_chat=said.chat_id,
                                          source_message=said.message_id)
    ticket = target.ticket
    if outcome in (Outcome.SENT, Outcome.SAVED):
        await uow.drafts.discard(user_id, ADD_INFO)
        return views.added(t, ticket, sent=outcome is Outcome.SENT)
    text = outcome_text(t, rt.config, ticket, outcome)
    if outcome is Outcome.CLOSED:
        await uow.drafts.discard(user_id, ADD_INFO)
        return View(text)
    # Wrong kind of message or too large: say why, and ask again.
    return views.asking(t, ADD_INFO, ticket, before=text)


async def _withdraw(rt: Runtime, uow: UnitOfWork, t: Translator, draft: Draft,
                    said: Said) -> View:
    user_id = said.user_id
    ticket_id = int(draft.data.get("ticket_id") or 0)
    reason = relay.clean_text(said.content.text if said.content.kind == TEXT else "")
    if not relay.reason_ok(reason):
        ticket = await uow.tickets.get(ticket_id)
        if ticket is None:
            await uow.drafts.discard(user_id, WITHDRAW)
            return views.gone(t)
        return views.asking(t, WITHDRAW, ticket, before=views.reason_needed(t))
    await uow.drafts.discard(user_id, WITHDRAW)
    try:
        ticket = await tickets.withdraw(uow, rt.clock, ticket_id, user_id, reason)
    except TicketRefused as refused:
        if refused.ticket is None:
            return views.gone(t)
        return views.cannot_withdraw(t, refused.ticket)
    await _tell_about_withdrawal(rt, uow, ticket, reason)
    bind_log_context(ticket=ticket.number)
    log.info("ticket %s withdrawn by its reporter", ticket.number)
    return views.withdrawn(t, ticket)


async def _tell_about_withdrawal(rt: Runtime, uow: UnitOfWork, ticket: Ticket,
                                 reason: str) -> None:
    """The card shows it, the group is told why, and co-reporters learn it is over."""
    notifier = Notifier(rt, uow)
    await notifier.refresh_card(ticket)
    if ticket.group_chat_id is not None:
        group = await uow.groups.get(ticket.group_chat_id)
        gt = rt.translator(group.language if group else rt.config.default_language)
        await notifier.to_group(ticket, views.withdrawn_for_group(gt, ticket, reason))
    for user_id in await uow.tickets.residents(ticket):
        if user_id == ticket.reporter_id:
            continue  # answered inline
        ct = rt.translator(await notifier.resident_language(user_id))
        uow.outbox.add(chat_id=user_id, method="sendMessage",
                       params={"chat_id": user_id, "text": views.withdrawn_for_co_reporter(
                           ct, ticket), "parse_mode": "HTML"},
                       now=rt.clock.now(), ticket_id=ticket.id, purpose="relay")
