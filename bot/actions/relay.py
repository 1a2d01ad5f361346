"""Relay both ways: a worker's reply to a ticket message in the group (or anything said in
the ticket's forum topic) reaches the resident who reported it; a resident's reply, in
private, to a message about their ticket reaches the group, as a reply to the card.

The conversation is the reporter's: co-reporters (who joined the report later) get the status
notices, not the workers' messages — except a worker's reply to a co-reporter's own message,
which goes back to that co-reporter alone. Residents see the worker's role and display name,
never the account: texts are re-sent and files are copied (copyMessage shows no origin), never
forwarded. Workers see the reporter's name, or "anonymous" when the reporter chose so, and a
co-reporter only as "co-reporter" (whether they wanted to stay anonymous is not known). Groups
stay quiet: a worker's message that reached the resident gets a 👌 reaction once it has been
delivered (the outbox sender puts it on; reactions notify nobody), and only a message that
could not be passed on gets a short reply.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.actions.notifier import Notifier
from bot.actions.people import Who, translator
from bot.delivery.calls import REACT_WHEN_SENT
from bot.i18n import Translator
from bot.logs import bind_log_context
from bot.runtime import Runtime
from bot.services import freetext, relay, tickets
from bot.services.relay import CAPTION_LIMIT, TEXT, TEXT_LIMIT, Content, Verdict
from bot.services.text import user_html
from bot.views import Answer, View
from bot.views import relay as views
from bot.views.relay import Outcome
from storage.models import Draft, Ticket, is_web_user
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

__all__ = ["DELIVERED", "Outcome", "ResidentReply", "Said", "enqueue_relay", "from_group",
           "pass_on", "resident_reply"]

# The reaction a worker's message gets in the group once the resident has it: "got it"
# without a message (reactions notify nobody; groups stay quiet).
DELIVERED = "👌"

_BY_FILE_ID = {"photo": ("sendPhoto", "photo"), "video": ("sendVideo", "video"),
               "voice": ("sendVoice", "voice"), "video_note": ("sendVideoNote", "video_note")}

_TO_CARD = {"message_thread_id": "$topic",
            "reply_parameters": {"message_id": "$card", "allow_sending_without_reply": True}}


@dataclass(frozen=True)
class Said:
    """A message as the relay takes it: who wrote it, what it holds, where a file in it can
    be copied from, and what it answers."""

    user_id: int
    name: str                      # the sender's display name
    content: Content
    chat_id: int                   # where it was written (a file is copied from there)
    message_id: int
    reply_to: int | None = None    # the message it answers
    reply_to_bot: bool = False     # that message is the bot's own
    reply_to_text: str = ""        # its text or caption
    topic: int | None = None       # the forum topic it was written in


# -- group → residents ----------------------------------------------------------------------------

async def from_group(rt: Runtime, who: Who, said: Said) -> Answer:
    """A worker's message in a group: passed on if it is about a ticket (a reply to one of
    its messages, or said in its topic), else not this action's (``handled`` False). What
    to say in the group, as a reply to the worker's message, when it could not go."""
    if said.reply_to is None and said.topic is None:
        return Answer.not_mine()
    async with rt.uow() as uow:
        target = await relay.from_group(uow, chat_id=said.chat_id, reply_to_id=said.reply_to,
                                        topic_id=said.topic)
        if target.verdict is Verdict.IGNORE:
            return Answer.not_mine()  # not about a ticket: no noise in groups
        ticket = target.ticket
        content = said.content
        t = await translator(rt, uow, who)
        answer = Answer()
        if target.verdict is Verdict.MOVED:
            answer.add(views.moved_away(t, ticket))
        elif target.verdict is Verdict.CLOSED:
            answer.add(views.no_longer_open(t, ticket))
        elif not content.relayable:
            answer.add(views.cannot_pass_on(t))
        else:
            name = relay.clean_name(said.name)
            await _to_resident(rt, uow, ticket, target.resident_id, said, name)
            await relay.record(uow, rt.clock, ticket, actor_id=said.user_id, role="worker",
                               content=content, name=name)
            bind_log_context(ticket=ticket.number)
            log.info("relayed message %s of group %s to a resident of ticket %s",
                     said.message_id, said.chat_id, ticket.number)
        await uow.commit()
    return answer


async def _to_resident(rt: Runtime, uow: UnitOfWork, ticket: Ticket, user_id: int, said: Said,
                       name: str) -> None:
    group = await uow.groups.get(said.chat_id)
    node = await uow.nodes.get(group.node_id) if group and group.node_id else None
    t = rt.translator(await Notifier(rt, uow).resident_language(user_id))
    header = views.worker_header(t, ticket, node, name)
    enqueue_relay(rt, uow, ticket, chat_id=user_id, header=header, content=said.content,
                  source_chat=said.chat_id, source_message=said.message_id,
                  react_when_sent={"chat_id": said.chat_id, "message_id": said.message_id,
                                   "emoji": DELIVERED})


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
    # Telegram cannot copy a message to or from a web chat: the file goes by its id (a web
    # resident's photo by its token, read from the database when sent).
    if source_message and not is_web_user(chat_id) and not is_web_user(source_chat):
        method, params = "copyMessage", {"from_chat_id": source_chat,
                                         "message_id": source_message}
    else:
        # Kept from an earlier message (a photo sent outside any conversation, passed on when
        # the person chose so): sent again by its file id, nothing was downloaded.
        method, field = _BY_FILE_ID.get(content.kind, ("sendDocument", "document"))
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

@dataclass
class ResidentReply:
    """What the resident is told of a message passed on (or not) to their ticket's staff.

    ``danger``: the words signal danger and nobody on staff will read them (the ticket is
    closed), so the emergency numbers come first; ``offer``: the token of the kept words,
    which may be reported as a new problem instead. The door shows those two with the words
    of the report flow (``t`` is the person's language)."""

    t: Translator
    outcome: View
    danger: bool = False
    offer: str | None = None


async def resident_reply(rt: Runtime, uow: UnitOfWork, who: Who, newest: Draft | None,
                         said: Said) -> ResidentReply | None:
    """A resident's private reply, inside the caller's unit of work (the caller commits;
    ``newest``: the person's newest draft, already read): passed on to the staff of the
    ticket it is about (the message it answers is remembered with the ticket, or is one of
    the bot's answers that names it). None: a reply to something else, for the ordinary
    handlers."""
    user_id = said.user_id
    # Whether the person is answering the questions of a form (a report, a consultation,
    # a booking…): a reply to an old message that merely names a ticket is then an answer
    # swiped onto whatever message was at hand, not words for that ticket's staff. A reply to
    # a worker's relayed message or to a notice about the ticket is a conversation, and stays
    # one.
    in_form = newest is not None and newest.flow != freetext.FLOW
    target = await relay.from_resident(uow, user_id=user_id, reply_to_id=said.reply_to,
                                       in_form=in_form)
    if target.verdict is Verdict.IGNORE and said.reply_to_bot and not in_form:
        # One of the bot's own answers that is not remembered with a ticket (such as
        # "registered as No. X"): the ticket it names, if it is the person's.
        target = await relay.named_in(uow, user_id=user_id, text=said.reply_to_text)
    if target.verdict is Verdict.IGNORE:
        return None
    t = await translator(rt, uow, who)
    outcome = await pass_on(rt, uow, target, user_id, said.name, said.content,
                            source_chat=said.chat_id, source_message=said.message_id)
    reply = ResidentReply(t, View(views.outcome_text(t, rt.config, target.ticket, outcome)))
    words = said.content.text if said.content.kind == TEXT else ""
    if outcome is Outcome.CLOSED and words:
        # The words are kept, so that they can be reported as a new problem.
        offer = await freetext.keep(uow, rt.clock, rt.config, user_id, words)
        reply.offer = offer.token if offer is not None else None
        # Nobody on staff reads these words: if they signal danger, the emergency numbers
        # come first, as for any text outside a conversation.
        reply.danger = tickets.words_signal_danger(rt.config, words)
    return reply


async def pass_on(rt: Runtime, uow: UnitOfWork, target: relay.Target, user_id: int, name: str,
                  content: Content, *, source_chat: int, source_message: int) -> Outcome:
    """Pass a resident's message on to the ticket's group and log it, if it may go, in the
    caller's transaction (also My tickets' "Add information", and words kept from earlier:
    a ``source_message`` 0 sends a file again by its id). ``name``: the resident's display
    name in the messenger."""
    if target.verdict is not Verdict.RELAY:
        return Outcome.CLOSED
    if not content.relayable:
        return Outcome.UNSUPPORTED
    if relay.too_large(content, rt.config.limits.max_file_bytes):
        return Outcome.TOO_LARGE
    ticket = target.ticket
    bind_log_context(ticket=ticket.number)
    await relay.record(uow, rt.clock, ticket, actor_id=user_id, role="resident",
                       content=content)
    if ticket.group_chat_id is None:
        # No group anywhere up the tree: the log (and the attachments) keep it, and the
        # workers see it there once the ticket reaches a group.
        log.info("kept a resident's message with ticket %s, which has no group",
                 ticket.number)
        return Outcome.SAVED
    group = await uow.groups.get(ticket.group_chat_id)
    t = rt.translator(group.language if group else rt.config.default_language)
    co_reporter = user_id != ticket.reporter_id
    enqueue_relay(rt, uow, ticket, chat_id=ticket.group_chat_id,
                  header=views.resident_header(t, ticket, user_id, name), content=content,
                  source_chat=source_chat, source_message=source_message,
                  where=_TO_CARD,
                  purpose=relay.co_reporter_purpose(user_id) if co_reporter else "relay")
    log.info("relayed a resident's message to the group of ticket %s", ticket.number)
    return Outcome.SENT
