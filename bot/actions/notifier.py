"""Everything the bot says on its own initiative about a ticket, written to the outbox in the
caller's transaction, so it goes out if and only if the change it tells of commits: cards in
groups, notices to residents."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

from bot.delivery.facts import Notices
from bot.i18n import Translator, resolve_language
from bot.runtime import Runtime
from bot.services import routing
from bot.services.groups import MIGRATED, PostCard
from bot.services.text import user_html
from bot.views.cards import card_keyboard, card_text, category_name
from storage.models import GroupChat, Ticket, TicketAttachment
from storage.repositories.tickets import CARD_COPY
from storage.uow import UnitOfWork

# Telegram albums take 2-10 photos or videos; voice and video notes go one by one.
_ALBUM_KINDS = {"photo", "video"}
_SINGLE_METHODS = {"photo": ("sendPhoto", "photo"), "video": ("sendVideo", "video"),
                   "voice": ("sendVoice", "voice"), "video_note": ("sendVideoNote", "video_note"),
                   "document": ("sendDocument", "document")}


class Notifier:
    def __init__(self, rt: Runtime, uow: UnitOfWork) -> None:
        self.rt = rt
        self.uow = uow

    def _enqueue(self, chat_id: int, method: str, params: dict, ticket: Ticket | None = None,
                 purpose: str | None = None) -> None:
        self.uow.outbox.add(chat_id=chat_id, method=method, params={"chat_id": chat_id,
                                                                    **params},
                            now=self.rt.clock.now(), ticket_id=ticket.id if ticket else None,
                            purpose=purpose)

    async def card(self, ticket: Ticket, language: str, *, note: str | None = None,
                   attachments: Sequence[TicketAttachment] | None = None) -> dict:
        """``attachments``: the ticket's, when the caller has read them already."""
        t = self.rt.translator(language)
        node = await self.uow.nodes.get(ticket.grid_id or ticket.node_id)
        path = await self.uow.nodes.path(node) if node else []
        if attachments is None:
            attachments = await self.uow.tickets.attachments(ticket.id)
        return {"text": card_text(t, self.rt.config, ticket, path, attachments, note=note),
                "parse_mode": "HTML", "reply_markup": card_keyboard(t, ticket)}

    async def post_card(self, ticket: Ticket, *, note: str | None = None) -> GroupChat | None:
        """Send the ticket to the group of its node (or the nearest one above), with its
        photos and its place. Returns the group, or None when no group exists at all.

        A ticket that was shown in a group before leaves it: what is still waiting to go
        there about its old card (the card, its topic, edits, photos) fails as stale, and
        what is waiting to be said about the ticket there (the conversation) is queued again
        behind the new card, in the new group (or fails with the ticket left without one)."""
        old_chat = ticket.group_chat_id
        conversation = (await self.uow.outbox.leave_chat(ticket.id, old_chat)
                        if old_chat is not None else [])
        node = await self.uow.nodes.get(ticket.node_id)
        _, group = await routing.handling_group(self.uow, node)
        ticket.card_message_id = None
        ticket.topic_id = None
        if group is None:
            ticket.group_chat_id = None
            self.uow.outbox.follow(conversation, None, self.rt.clock.now())
            return None
        ticket.group_chat_id = group.chat_id
        thread: dict = {}
        # Where the bot may not create topics, the card goes to the General topic without
        # asking Telegram for one first (a refused call per ticket otherwise).
        if group.is_forum and group.can_manage_topics is not False:
            category = category_name(self.rt.config, ticket.category, group.language)
            name = f"{ticket.number} {category}"
            self._enqueue(group.chat_id, "createForumTopic", {"name": name[:128]}, ticket,
                          "topic")
            thread = {"message_thread_id": "$topic"}
        attachments = await self.uow.tickets.attachments(ticket.id)
        self._enqueue(group.chat_id, "sendMessage",
                      {**await self.card(ticket, group.language, note=note,
                                         attachments=attachments), **thread},
                      ticket, "card")
        reply = {"reply_parameters": {"message_id": "$card",
                                      "allow_sending_without_reply": True}, **thread}
        album = [a for a in attachments if a.kind in _ALBUM_KINDS]
        if len(album) > 1:
            self._enqueue(group.chat_id, "sendMediaGroup", {
                "media": [{"type": a.kind, "media": a.file_id} for a in album[:10]], **reply},
                ticket, "card_media")
        for attachment in attachments:
            if len(album) > 1 and attachment.kind in _ALBUM_KINDS:
                continue
            method, field = _SINGLE_METHODS[attachment.kind]
            self._enqueue(group.chat_id, method, {field: attachment.file_id, **reply}, ticket,
                          "card_media")
        if ticket.latitude is not None and ticket.longitude is not None:
            self._enqueue(group.chat_id, "sendLocation", {
                "latitude": ticket.latitude, "longitude": ticket.longitude, **reply},
                ticket, "card_media")
        self.uow.outbox.follow(conversation, group.chat_id, self.rt.clock.now())
        return group

    async def refresh_card(self, ticket: Ticket) -> None:
        """Edit the card in place to show the ticket's status and holder (and the copies of
        it known in its group, see show_copy)."""
        if ticket.group_chat_id is None:
            return
        group = await self.uow.groups.get(ticket.group_chat_id)
        language = group.language if group else self.rt.config.default_language
        card = await self.card(ticket, language)
        self._enqueue(ticket.group_chat_id, "editMessageText",
                      {"message_id": "$card", **card}, ticket, "card_edit")
        for copy in await self.uow.tickets.card_copies(ticket.id, ticket.group_chat_id):
            self._enqueue(ticket.group_chat_id, "editMessageText",
                          {"message_id": copy.message_id, **card}, ticket, "card_edit")

    async def show_copy(self, ticket: Ticket, *, chat_id: int, message_id: int) -> None:
        """A button was pressed on a message showing the ticket's card that is not its card:
        a second copy, sent when a send timed out after reaching Telegram (or the process
        died during it). The copy is brought up to date. In the ticket's group it is
        remembered, so that later changes of the card reach it too and replies to it are
        relayed; anywhere else the ticket has moved on, and a copy not known there loses its
        buttons (a known one was retired as the ticket left)."""
        if ticket.group_chat_id == chat_id:
            known = await self.uow.tickets.message(chat_id, message_id)
            if known is None:
                await self.uow.tickets.remember_message(chat_id, message_id, ticket.id,
                                                        CARD_COPY)
            else:  # a second card the sender saw come back (its buttons were to go)
                known.purpose = CARD_COPY
            group = await self.uow.groups.get(chat_id)
            language = group.language if group else self.rt.config.default_language
            self._enqueue(chat_id, "editMessageText",
                          {"message_id": message_id, **await self.card(ticket, language)},
                          ticket, "card_edit")
            return
        if await self.uow.tickets.message(chat_id, message_id) is not None:
            # Retired when the ticket left, with a note on where it went and who sent it
            # (retire_card takes the card and every copy known then); its edit may still be
            # on its way, and a second note here would only replace the better one.
            return
        group = await self.uow.groups.get(chat_id)
        t = self.rt.translator(group.language if group else self.rt.config.default_language)
        await self.retire_card(ticket, chat_id=chat_id, message_id=message_id, note=t(
            "No. {number} is handled in another group now.", number=ticket.number))

    async def retire_card(self, ticket: Ticket, *, chat_id: int, message_id: int | None,
                          note: str) -> None:
        """The ticket left this group (transfer, escalation, re-routing): the old card (and
        any copy of it known there) keeps its text, says where it went, and offers no
        actions any more."""
        copies = await self.uow.tickets.card_copies(ticket.id, chat_id)
        ids = [copy.message_id for copy in copies if copy.message_id != message_id]
        if message_id is not None:
            ids.insert(0, message_id)
        if not ids:
            return
        group = await self.uow.groups.get(chat_id)
        language = group.language if group else self.rt.config.default_language
        card = await self.card(ticket, language, note=note)
        card["reply_markup"] = {"inline_keyboard": []}
        for copy in copies:  # history now, like the card: no longer kept up to date
            copy.purpose = "card"
        for retired in ids:
            self._enqueue(chat_id, "editMessageText", {"message_id": retired, **card})

    async def moved(self, ticket: Ticket, *, old_chat: int | None, old_card: int | None,
                    left: Callable[[Translator], str], old_topic: int | None = None,
                    arrived: Callable[[Translator], str],
                    residents: Callable[[Translator], str], announce: bool = True,
                    except_resident: int | None = None) -> None:
        """The ticket went to another node (a transfer, an escalation by a worker or a timer,
        a reopening): the one way every mover shows it, so that a ticket is in one group at a
        time, as one live card. ``old_*`` are where it was shown before the move.

        * Still handled by the same group: its card there is edited in place (no second
          card), and with ``announce`` the group is told why, under the card (``arrived``).
        * Another group: the old card keeps its text, says where the ticket went (``left``)
          and loses its buttons; its forum topic is closed, so nobody goes on writing there
          for a resident and a group that no longer read it; with ``announce`` the old group
          is told in a message too (a worker who moved it is answered by the handler
          instead); the group that now has it gets the card with ``arrived``.
        * The residents are told (``residents``), but for ``except_resident``.

        Each callable renders escaped HTML in its reader's language."""
        node = await self.uow.nodes.get(ticket.node_id)
        _, new_group = await routing.handling_group(self.uow, node)
        if old_chat is not None and new_group is not None and new_group.chat_id == old_chat:
            await self.refresh_card(ticket)
            if announce:
                await self.to_group(ticket, arrived(self.rt.translator(new_group.language)))
        else:
            if old_chat is not None:
                old_group = await self.uow.groups.get(old_chat)
                t = self.rt.translator(old_group.language if old_group
                                       else self.rt.config.default_language)
                note = left(t)
                await self.retire_card(ticket, chat_id=old_chat, message_id=old_card,
                                       note=note)
                if old_topic is not None:
                    self._enqueue(old_chat, "closeForumTopic", {"message_thread_id": old_topic})
                if announce:
                    self.say(old_chat, t("⬆️ <b>No. {number}</b>: {note}",
                                         number=ticket.number, note=note))
            t = self.rt.translator(new_group.language if new_group
                                   else self.rt.config.default_language)
            await self.post_card(ticket, note=arrived(t))
        await self.tell_residents_with(ticket, residents, except_resident=except_resident)

    def say(self, chat_id: int, text: str, *, reply_markup: dict | None = None,
            ticket: Ticket | None = None, purpose: str | None = None) -> None:
        """An HTML message to a chat, not a reply to any message (the ticket, if given, is
        what it is about, for the outbox's bookkeeping)."""
        params: dict = {"text": text, "parse_mode": "HTML"}
        if reply_markup is not None:
            params["reply_markup"] = reply_markup
        self._enqueue(chat_id, "sendMessage", params, ticket, purpose)

    async def to_group(self, ticket: Ticket, text: str) -> None:
        """A message about the ticket in its group, as a reply to the card (in its topic)."""
        if ticket.group_chat_id is None:
            return
        # "$topic" is dropped at send time when the ticket has no forum topic.
        params = {"text": text, "parse_mode": "HTML", "message_thread_id": "$topic",
                  "reply_parameters": {"message_id": "$card",
                                       "allow_sending_without_reply": True}}
        self._enqueue(ticket.group_chat_id, "sendMessage", params, ticket, "relay")

    async def resident_language(self, user_id: int) -> str:
        user = await self.uow.users.get(user_id)
        default = self.rt.config.default_language
        if user is None:
            return default
        return resolve_language(user.language, user.telegram_language_code, default)

    async def tell_residents(self, ticket: Ticket, msgid: str, **values: str) -> None:
        """Tell the reporter and co-reporters, each in their own language; `values` are
        escaped here."""
        await self.tell_residents_with(ticket, lambda t: t(
            msgid, **{k: user_html(v) for k, v in values.items()}))

    async def tell_residents_with(self, ticket: Ticket, render: Callable[[Translator], str],
                                  *, except_resident: int | None = None) -> None:
        """Like tell_residents, for messages whose values depend on the reader's language too
        (a role, a place): `render(t)` returns the body as escaped HTML. The message names the
        ticket, so a reply to it can be relayed."""
        for user_id in await self.uow.tickets.residents(ticket):
            if user_id == except_resident:
                continue
            t = self.rt.translator(await self.resident_language(user_id))
            number = t("No. {number}", number=ticket.number)
            text = f"<b>{number}</b>\n{render(t)}"
            self._enqueue(user_id, "sendMessage", {"text": text, "parse_mode": "HTML"},
                          ticket, "relay")


async def bring_copy_up_to_date(rt: Runtime, chat_id: int, message_id: int,
                                ticket_id: int) -> None:
    """A card's button pressed on message ``message_id`` that is not the ticket's card is a
    second copy of it (Notifier.show_copy); the same for every kind of card, so the desks'
    cards are kept up to date like the grid workers'. Called once the press is done, so the
    copy shows what the press did; a copy already kept up to date with the card is left
    alone. Only a message that offers the button pressed is a copy (the door checks that):
    a press made up on any other message of the bot (a note, a prompt) must not turn it into
    a card."""
    async with rt.uow() as uow:
        ticket = await uow.tickets.get(ticket_id)
        if ticket is None or (chat_id, message_id) == (ticket.group_chat_id,
                                                       ticket.card_message_id):
            return
        known = await uow.tickets.message(chat_id, message_id)
        if known is not None and (known.ticket_id != ticket.id or known.purpose != "card"):
            return
        await Notifier(rt, uow).show_copy(ticket, chat_id=chat_id, message_id=message_id)
        await uow.commit()


def rerouted_card_poster(rt: Runtime) -> PostCard:
    """The ``post_card`` of the outbox sender and of the membership handlers: a ticket's card
    in the group that now handles it, with a note in that group's language saying why it is
    there — its old group is gone for the bot (``REROUTED``), or became a supergroup where
    the old card is of no use (``MIGRATED``)."""

    async def post(uow: UnitOfWork, ticket: Ticket, group: GroupChat, why: str) -> None:
        t = rt.translator(group.language)
        if why == MIGRATED:
            note = t("This group became a supergroup, so the card is posted here again.")
        else:
            note = t("Moved here: the bot can no longer post in the group that handled it.")
        await Notifier(rt, uow).post_card(ticket, note=note)

    return post


def delivery_notices(rt: Runtime) -> Notices:
    """The outbox sender's ``notices``, in the language of the group told (see
    ``bot.delivery.facts``). They name the ticket by its public number and the place by
    its name: nothing about the resident."""

    async def card_failed(uow: UnitOfWork, ticket: Ticket, to: GroupChat,
                          meant_for: GroupChat) -> None:
        t = rt.translator(to.language)
        Notifier(rt, uow).say(to.chat_id, t(
            "⚠️ The card of <b>No. {number}</b> could not be delivered to the group of "
            "{place}. Please make sure the ticket is handled.",
            number=html.escape(ticket.number), place=await _group_place(uow, t, meant_for)))

    async def resident_unreachable(uow: UnitOfWork, ticket: Ticket, group: GroupChat) -> None:
        t = rt.translator(group.language)
        await Notifier(rt, uow).to_group(ticket, t(
            "⚠️ <b>No. {number}</b>: the resident has blocked the bot and cannot be reached "
            "on this ticket. Messages to them are not delivered.",
            number=html.escape(ticket.number)))

    async def card_arrived(uow: UnitOfWork, ticket: Ticket, to: GroupChat,
                           meant_for: GroupChat) -> None:
        t = rt.translator(to.language)
        Notifier(rt, uow).say(to.chat_id, t(
            "✅ The card of <b>No. {number}</b> did reach the group of {place} after all.",
            number=html.escape(ticket.number), place=await _group_place(uow, t, meant_for)))

    return Notices(card_failed, resident_unreachable, card_arrived)


async def _group_place(uow: UnitOfWork, t: Translator, group: GroupChat) -> str:
    """The place a group serves (HTML), or its title when it serves none now."""
    node = await uow.nodes.get(group.node_id) if group.node_id else None
    return (html.escape(node.display_name(t.language)) if node is not None
            else user_html(group.title))
