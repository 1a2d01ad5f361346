"""Which conversation takes a private message, and its answer, in one unit of work.

The person's newest private draft names the flow they are in (a report, a form, a booking,
a comment, an answer about a ticket, words waiting for "report this?"). ``take`` reads it
once and hands the message, in the same transaction, to that flow's step, or to the relay:

* a reply to one of the bot's messages is the relay's first (it is about a ticket), unless
  the flow takes replies itself; the flow has it after the relay left it;
* /cancel is the flow's (the door passes no other command: they keep their meaning);
* what nobody takes is not the conversations' business: nothing is committed, and the door
  lets the commands and the fallback have it (they run their own unit of work).

What is taken commits once, with the update's id (``storage.uow``), read-only answers too,
so a second delivery of the update fails there, before anything is said.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from bot.actions import booking, enterprise, freetext, my_tickets, relay, report, survey
from bot.actions.people import Who, translator
from bot.actions.relay import ResidentReply, Said
from bot.i18n import Translator
from bot.runtime import Runtime
from bot.services import enterprises, reporting
from bot.services import freetext as freetext_rules
from bot.services.enterprises import Answer as FormAnswer
from bot.views import Answer, View
from bot.views.freetext import report_instead
from bot.views.my_tickets import ADD_INFO, WITHDRAW
from bot.views.report import emergency, one_message
from storage.models import Draft
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class Message:
    """A private message as the conversations take it (the door reads it off the update).

    ``cancel``: it is /cancel (the door passes no other command); ``said``: the message as
    the relay (and a ticket's drafts) take it; ``report`` and ``form``: as the report flow
    and the enterprise forms take it; ``text``: its text, if it is one."""

    cancel: bool
    said: Said
    report: reporting.Answer
    form: FormAnswer
    text: str | None

    @property
    def is_reply(self) -> bool:
        """A reply to a message (not a command), which may be about a ticket."""
        return self.said.reply_to is not None and not self.cancel


Step = Callable[[Runtime, UnitOfWork, Translator, Who, Draft, Message],
                Awaitable[Answer | None]]


@dataclass(frozen=True)
class Flow:
    step: Step                # the flow's answer, inside the unit of work; None: not taken
    replies_too: bool = False  # replies to the bot's messages come here before the relay


async def _report(rt, uow, t, who, draft, message: Message) -> Answer | None:
    return await report.take(rt, uow, t, who, draft, None if message.cancel else message.report)


async def _form(rt, uow, t, who, draft, message: Message) -> Answer | None:
    return await enterprise.take(rt, uow, t, who, draft, None if message.cancel else message.form)


async def _booking(rt, uow, t, who, draft, message: Message) -> Answer | None:
    # Replies are the relay's, and a text that looks like another command keeps its meaning.
    if message.said.reply_to is not None:
        return None
    text = message.text or ""
    cancel = False
    if text.startswith("/"):
        words = text[1:].split(maxsplit=1)
        cancel = bool(words) and words[0].split("@", 1)[0].lower() == "cancel"
        if not cancel:
            return None
    return await booking.take(rt, uow, t, who, draft, cancel=cancel)


async def _my_tickets(rt, uow, t, who, draft, message: Message) -> Answer | None:
    return await my_tickets.take(rt, uow, t, who, draft, message.said, cancel=message.cancel)


async def _comment(rt, uow, t, who, draft, message: Message) -> Answer | None:
    return await survey.take(rt, uow, t, who, draft, message.text, cancel=message.cancel)


async def _freetext(rt, uow, t, who, draft, message: Message) -> Answer | None:
    # Only /cancel: any other message reaches the fallback, which offers it like words.
    if not message.cancel or message.text is None:
        return None
    return await freetext.take_cancel(uow, t, who)


FLOWS: Mapping[str, Flow] = {
    reporting.FLOW: Flow(_report),
    enterprises.FLOW: Flow(_form, replies_too=True),
    enterprises.JOIN_FLOW: Flow(_form, replies_too=True),
    booking.FLOW: Flow(_booking, replies_too=True),
    ADD_INFO: Flow(_my_tickets, replies_too=True),
    WITHDRAW: Flow(_my_tickets, replies_too=True),
    survey.COMMENT_FLOW: Flow(_comment, replies_too=True),
    freetext_rules.FLOW: Flow(_freetext),
}


async def take(rt: Runtime, who: Who, message: Message) -> Answer | None:
    """The answer of the conversation that took ``message``, committed; None when none took
    it (nothing written: the commands and the fallback answer it)."""
    async with rt.uow() as uow:
        newest = await uow.drafts.any_of(who.user_id)
        flow = FLOWS.get(newest.flow) if newest is not None else None
        if flow is None and not message.is_reply:
            return None
        t = await translator(rt, uow, who)
        answer = None
        if flow is not None and (flow.replies_too or not message.is_reply):
            answer = await flow.step(rt, uow, t, who, newest, message)
        if _untaken(answer) and message.is_reply:
            reply = await relay.resident_reply(rt, uow, who, newest, message.said)
            answer = resident_answer(reply) if reply is not None else None
            if _untaken(answer) and flow is not None and not flow.replies_too:
                answer = await flow.step(rt, uow, t, who, newest, message)
        if _untaken(answer):
            return None
        await uow.commit()
    return answer


def _untaken(answer: Answer | None) -> bool:
    return answer is None or not answer.handled


def resident_answer(reply: ResidentReply) -> Answer:
    """What a resident is told of their reply passed on (or not) to their ticket's staff."""
    answer = Answer()
    if reply.danger:
        answer.add(emergency(reply.t))
    outcome = reply.outcome
    if reply.offer is not None:
        outcome = View(outcome.text, report_instead(reply.t, reply.offer))
    answer.add(outcome)
    answer.say = one_message(answer.say)  # the emergency numbers above it, one message
    return answer
