"""/mydata and /deletemydata: a resident's copy of their data, and its erasure after a
confirmation. What is erased, and what becomes of running tickets, is decided in
bot.services.privacy; here is the talk with the resident and what the groups see of it
(``announce``, used by the retention sweep too; the words: bot.views.privacy).

The confirmation button carries the moment it was offered and a MAC of it and the person's
id (keyed with the bot's token), so it needs no state: a forged button, someone else's, or
one older than CONFIRM_FOR gets a clear answer and nothing is erased.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass
from datetime import timedelta

from bot.actions.notifier import Notifier
from bot.actions.people import Who, translator
from bot.runtime import Runtime
from bot.services import privacy
from bot.services.privacy import TicketErasure
from bot.views import Answer, Attachment
from bot.views import privacy as views
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

CONFIRM_FOR = timedelta(minutes=15)
MAC_LENGTH = 16
DELETE_BATCH = 100  # deleteMessages takes 1-100 ids
CAPTION_LIMIT = 1024


# -- /mydata --------------------------------------------------------------------------------------

async def my_data(rt: Runtime, who: Who) -> Attachment:
    """The person's copy of their data: a JSON document, its summary as the caption."""
    async with rt.uow() as uow:
        t = await translator(rt, uow, who)
        now = rt.clock.now()
        data = await privacy.collect(uow, rt.config, who.user_id, now, t.language)
        await uow.commit()  # remember the person, and that this update was handled
    document = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
    day = now.astimezone(rt.config.timezone).strftime("%Y-%m-%d")
    return Attachment("document", data=document, filename=f"gridgate-my-data-{day}.json",
                      caption=views.summary(t, data)[:CAPTION_LIMIT])


# -- /deletemydata --------------------------------------------------------------------------------

def confirmation_mac(rt: Runtime, user_id: int, issued: int) -> str:
    key = hashlib.sha256(b"gridgate /deletemydata\0" + rt.config.telegram.token.encode()).digest()
    return hmac.new(key, f"{user_id}:{issued}".encode(), hashlib.sha256).hexdigest()[:MAC_LENGTH]


async def offer_erasure(rt: Runtime, who: Who) -> Answer:
    """What erasing would do, and the buttons to confirm it (for CONFIRM_FOR) or not."""
    async with rt.uow() as uow:
        t = await translator(rt, uow, who)
        plan = await privacy.erasure_plan(uow, who.user_id)
        await uow.commit()
    issued = int(rt.clock.now().timestamp())
    confirm = views.erase(issued, confirmation_mac(rt, who.user_id, issued))
    return Answer(say=[views.plan(t, plan, confirm)])


@dataclass(frozen=True)
class Confirmation:
    """The data of the pressed confirmation: when it was offered, and its MAC."""

    issued: int
    mac: str


_DATA = re.compile(r"dd:(?:(n)|y:(\d{1,12}):([0-9a-f]{16}))")


async def erase_data(rt: Runtime, who: Who, data: str) -> Answer:
    """A button of the erasure plan by its data: dd:y:<unix time>:<mac> (erase), dd:n
    (keep)."""
    match = _DATA.fullmatch(data or "")
    keep, issued, mac = match.groups() if match is not None else (None, None, None)
    pressed = Confirmation(int(issued), mac) if issued else None
    return await erase(rt, who, pressed, keep=bool(keep))


async def erase(rt: Runtime, who: Who, pressed: Confirmation | None, *,
                keep: bool = False) -> Answer:
    """A press under the plan: ``keep`` keeps the data, a ``Confirmation`` erases it; None
    (and not ``keep``) is data that is none of ours."""
    async with rt.uow() as uow:
        t = await translator(rt, uow, who)  # read before the language goes too
        if (pressed is None and not keep) or who.in_group or who.user_id is None:
            return Answer(alert=t("This button is no longer valid."))
        if keep:
            return Answer(edit=views.nothing_erased(t))
        if not hmac.compare_digest(pressed.mac,
                                   confirmation_mac(rt, who.user_id, pressed.issued)):
            return Answer(alert=t("This button is no longer valid."))
        age = rt.clock.now().timestamp() - pressed.issued
        if not 0 <= age <= CONFIRM_FOR.total_seconds():
            return Answer(alert=views.expired(t))
        result = await privacy.erase_user(uow, rt.clock, rt.config, who.user_id)
        for erasure in result.tickets:
            await announce(rt, uow, erasure)
        await uow.commit()
    log.info("a resident's personal data was erased: %d tickets anonymised, %d left",
             result.count(privacy.SCOPE_TICKET), result.count(privacy.SCOPE_CO_REPORTER))
    return Answer(edit=views.done(t, result))


# -- what the groups see -------------------------------------------------------------------------

async def announce(rt: Runtime, uow: UnitOfWork, erasure: TicketErasure) -> None:
    """Through the outbox, in the erasure's transaction: how it ended the ticket (to its
    group and co-reporters), the card shown again without the data (here and in groups it
    was shown in before), and the bot's messages in groups that showed the data deleted.

    Telegram lets a bot delete its messages in a group only within 48 hours (unless it is an
    administrator there), so the retention sweep, which comes much later, edits the cards
    and leaves older messages alone; a failed deletion is only logged."""
    notifier = Notifier(rt, uow)
    ticket = erasure.ticket
    if erasure.scope == privacy.SCOPE_TICKET:
        await _tell_ending(rt, uow, notifier, erasure)
        await notifier.refresh_card(ticket)
        for chat_id, message_id in erasure.other_cards:
            card = await notifier.card(ticket, await _group_language(rt, uow, chat_id))
            card["reply_markup"] = {"inline_keyboard": []}
            uow.outbox.add(chat_id=chat_id, method="editMessageText",
                           params={"chat_id": chat_id, "message_id": message_id, **card},
                           now=rt.clock.now(), ticket_id=ticket.id, purpose="card_edit")
        for row in erasure.pending_cards:  # not sent yet: it goes out without the data
            language = await _group_language(rt, uow, row.chat_id)
            row.params = {**row.params, **await notifier.card(ticket, language)}
    if erasure.by == privacy.BY_RETENTION:
        return
    for chat_id, message_ids in erasure.group_messages.items():
        ids = sorted(set(message_ids))
        for start in range(0, len(ids), DELETE_BATCH):
            uow.outbox.add(chat_id=chat_id, method="deleteMessages",
                           params={"chat_id": chat_id,
                                   "message_ids": ids[start:start + DELETE_BATCH]},
                           now=rt.clock.now(), ticket_id=ticket.id)


async def _group_language(rt: Runtime, uow: UnitOfWork, chat_id: int) -> str:
    group = await uow.groups.get(chat_id)
    return group.language if group else rt.config.default_language


async def _tell_ending(rt: Runtime, uow: UnitOfWork, notifier: Notifier,
                       erasure: TicketErasure) -> None:
    ticket = erasure.ticket
    if erasure.ended is None:
        return
    if ticket.group_chat_id is not None:
        gt = rt.translator(await _group_language(rt, uow, ticket.group_chat_id))
        await notifier.to_group(ticket, views.ending_for_group(gt, rt.config, erasure))
    for user_id in erasure.residents:
        ct = rt.translator(await notifier.resident_language(user_id))
        notifier.say(user_id, views.ending_for_resident(ct, ticket, erasure.ended))
