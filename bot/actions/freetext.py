"""What a resident sends outside any conversation (rules in bot.services.freetext, texts in
bot.views.freetext): kept, and offered to be reported, asked about, or passed on to the
staff of one of their open tickets, instead of "not understood". The offer's buttons carry
the token of the draft that keeps it; an offer that is no longer the person's conversation
(they went on to something else, or it expired) says so instead of acting."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.actions import relay as relay_actions
from bot.actions import report
from bot.actions.people import Who, translator
from bot.i18n import Translator
from bot.runtime import Runtime
from bot.services import freetext, relay, reporting, tickets
from bot.services.relay import TEXT, Content, Verdict
from bot.views import Answer, View
from bot.views import freetext as views
from bot.views.relay import Outcome, outcome_text
from bot.views.report import emergency, one_message
from storage.uow import UnitOfWork

_DATA = re.compile(r"ft:(?:([rcx]):([0-9a-f]{8})|s:([0-9a-f]{8}):(\d{1,18}))")


@dataclass(frozen=True)
class Item:
    """A message outside any conversation that is not words: a photo, video, voice message
    or video note (``kind`` and ``file_id``, ``file_size`` if known), or a place
    (``location``); with its caption and album."""

    kind: str | None = None
    file_id: str | None = None
    file_size: int | None = None
    location: tuple[float, float] | None = None
    caption: str = ""
    album: str | None = None


@dataclass(frozen=True)
class Sender:
    """Who pressed an offer's button, as the staff are told (the relay's header)."""

    id: int
    full_name: str


async def take_text(rt: Runtime, who: Who, text: str, *, cancel: bool = False) -> Answer:
    """Words outside a conversation (``cancel``: /cancel, which forgets what was kept).
    Not this action's (``handled`` False): a /cancel with nothing kept."""
    # Whatever is done with the words later, even when they cannot be taken now, someone may
    # be in danger: the emergency numbers come first, before any button is pressed.
    danger = not cancel and tickets.words_signal_danger(rt.config, text)
    answer = Answer()
    async with rt.uow() as uow:
        t = await translator(rt, uow, who)
        if cancel:
            if await uow.drafts.get(who.user_id, freetext.FLOW) is None:
                return Answer.not_mine()
            answer = await take_cancel(uow, t, who)
            await uow.commit()
            return answer
        offer = await freetext.keep(uow, rt.clock, rt.config, who.user_id, text)
        if offer is None:
            # Another conversation waits for an answer its handler did not see in this
            # message (a reply to an old message, say): it is not ours to drop.
            reply = views.busy(t)
        else:
            reply = views.offer(rt.config, t, offer)
            await uow.commit()
    if danger:
        answer.add(emergency(t))
    answer.add(reply)
    answer.say = one_message(answer.say)
    return answer


async def take_cancel(uow: UnitOfWork, t: Translator, who: Who) -> Answer:
    """Inside the caller's unit of work (the caller commits): /cancel while words wait for
    "report this?" (the person's newest draft is theirs): they are forgotten."""
    await freetext.forget(uow, who.user_id)
    return Answer([views.nothing_sent(t)])


async def take_item(rt: Runtime, who: Who, item: Item) -> Answer:
    """A photo, video, voice message, video note or place outside a conversation, offered
    like words; an album's later items say nothing more."""
    danger = bool(item.caption) and tickets.words_signal_danger(rt.config, item.caption)
    limit = rt.config.limits.max_file_bytes
    answer = Answer()
    async with rt.uow() as uow:
        t = await translator(rt, uow, who)
        if item.file_size is not None and item.file_size > limit:
            reply = views.too_large(t, item.file_size, limit)
        else:
            offer = await freetext.keep_item(
                uow, rt.clock, rt.config, who.user_id, text=item.caption, kind=item.kind,
                file_id=item.file_id, album=item.album, location=item.location)
            if offer is None:
                reply = views.busy(t)
            else:
                await uow.commit()
                if offer.quiet:
                    return answer
                reply = views.offer(rt.config, t, offer)
    if danger:
        answer.add(emergency(t))
    answer.add(reply)
    answer.say = one_message(answer.say)
    return answer


async def press(rt: Runtime, who: Who, sender: Sender, data: str) -> Answer:
    """An offer's button ("ft:...")."""
    async with rt.uow() as uow:
        t = await translator(rt, uow, who)
        match = _DATA.fullmatch(data)
        if match is None or who.in_group:
            return Answer(alert=t("This button is no longer valid."))
        return await _on_button(rt, uow, t, sender, match)


async def _on_button(rt: Runtime, uow: UnitOfWork, t: Translator, sender: Sender,
                     match: re.Match[str]) -> Answer:
    """Act on a pressed button (and commit); an answered offer loses its buttons, so that an
    old one cannot act again."""
    action, token, send_token, ticket_id = match.groups()
    token = token or send_token
    answer = Answer(unbutton=True)
    kept = await freetext.kept(uow, sender.id, token)
    if kept is None:
        # Answered already (a double tap: the first press removes the buttons, but the second
        # may be on its way) or dropped: not "send it again", which would invite a duplicate
        # of what the first press delivered.
        answer.alert = views.answered(t)
        return answer
    if action == views.FORGET:
        await freetext.forget(uow, sender.id)
        await uow.commit()
        return answer.add(views.nothing_sent(t))
    if action in (views.REPORT, views.CONSULT):
        kind = reporting.REPORT if action == views.REPORT else reporting.CONSULTATION
        described = kept.text if freetext.describable(rt.config, kept.text) else None
        await report.begin_with_text(answer, rt, uow, t, sender.id, kind, described,
                                     media=kept.media, spoken=kept.spoken,
                                     location=kept.location)
        await uow.commit()
        return answer
    target = await relay.for_resident(uow, ticket_id=int(ticket_id), user_id=sender.id)
    contents = ([Content(TEXT, kept.text)] if kept.text else []) + [
        Content(kind, file_id=file_id) for kind, file_id in kept.files]
    if target.verdict is Verdict.IGNORE or not contents:
        return Answer(alert=t("This button is no longer valid."))
    for content in contents:
        # One ticket: the words and each file go the same way (or all are refused as closed).
        outcome = await relay_actions.pass_on(rt, uow, target, sender.id, sender.full_name,
                                              content, source_chat=sender.id, source_message=0)
        if outcome not in (Outcome.SENT, Outcome.SAVED):
            break
    text = outcome_text(t, rt.config, target.ticket, outcome)
    if outcome is Outcome.CLOSED:
        # Kept: the same words may still be reported as a new problem.
        return answer.add(View(text, views.report_instead(t, token)))
    await freetext.forget(uow, sender.id)
    await uow.commit()
    return answer.add(View(text))
