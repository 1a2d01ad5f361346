"""The people in the sandbox and what they do: each action becomes the message, edit, button
press or membership change a Telegram client would make, and the update the bot receives.

Telegram's rules that matter to gridgate are kept: a bot in privacy mode sees only commands,
replies to its own messages and service messages in groups (all messages where it is an
admin); a button press carries the message it was on and must be answered; a person can only
speak in chats they belong to, and only edit their own messages.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

from bot.i18n import N_
from bot.sandbox.apispec import utf16_len
from bot.sandbox.world import (
    JSON,
    TelegramServer,
    Upload,
    chat_member,
)

MAX_TEXT = 4096  # a client splits longer texts; the sandbox's page refuses them instead
MAX_CAPTION = 1024
MAX_ALBUM = 10
_COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
_PRESENT = ("creator", "owner", "administrator", "member", "restricted")


class PeopleError(ValueError):
    """What a Telegram client would not let the person do: ``msgid`` says why (translate it
    with ``values``)."""

    def __init__(self, msgid: str, **values: object) -> None:
        super().__init__(msgid.format(**values))
        self.msgid = msgid
        self.values = values


@dataclass
class Person:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str = "zh-hans"
    phone: str | None = None  # what "share my phone number" sends
    role: str | None = None  # a msgid: what the page calls them ("Grid worker")

    def user(self) -> JSON:
        data: JSON = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


class People:
    """The people of one sandbox world and the chats they meet the bot in."""

    def __init__(self, world: TelegramServer) -> None:
        self.world = world
        self.persons: dict[int, Person] = {}

    # -- the cast -------------------------------------------------------------------------------
    def add(self, person: Person) -> Person:
        self.persons[person.id] = person
        self.world.users[person.id] = person.user()
        chat: JSON = {"id": person.id, "type": "private", "first_name": person.first_name}
        if person.last_name:
            chat["last_name"] = person.last_name
        if person.username:
            chat["username"] = person.username
        self.world.chats[person.id] = chat
        return person

    def add_group(self, chat_id: int, title: str, members: dict[int, str]) -> JSON:
        """A supergroup with ``members`` (user id → status); the bot is not in it yet."""
        chat: JSON = {"id": chat_id, "type": "supergroup", "title": title}
        self.world.chats[chat_id] = chat
        for user_id, status in members.items():
            self.world.members[(chat_id, user_id)] = (status, {})
        return chat

    def set_language(self, language_code: str) -> None:
        """Every person's Telegram app now runs in this language (their next updates say so)."""
        for person in self.persons.values():
            person.language_code = language_code
            self.world.users[person.id] = person.user()

    def person(self, user_id: int) -> Person:
        found = self.persons.get(user_id)
        if found is None:
            raise PeopleError(N_("Nobody with id {id} is in the sandbox."), id=user_id)
        return found

    def may_speak(self, chat_id: int, user_id: int) -> bool:
        chat = self.world.chats.get(chat_id)
        if chat is None or user_id not in self.persons:
            return False
        if chat["type"] == "private":
            return chat_id == user_id
        return self.world.members.get((chat_id, user_id), ("left", {}))[0] in _PRESENT

    # -- membership -----------------------------------------------------------------------------
    def add_bot(self, chat_id: int, by_user: int, status: str = "member") -> JSON | None:
        """``by_user`` adds the bot to a group: the bot is told with my_chat_member."""
        return self._bot_membership(chat_id, by_user, status)

    def remove_bot(self, chat_id: int, by_user: int) -> JSON | None:
        return self._bot_membership(chat_id, by_user, "left")

    def block(self, user_id: int) -> JSON | None:
        """The person blocks the bot: every later message to them is refused with a 403."""
        self.world.blocked_by.add(user_id)
        return self._bot_membership(user_id, user_id, "kicked")

    def unblock(self, user_id: int) -> JSON | None:
        self.world.blocked_by.discard(user_id)
        return self._bot_membership(user_id, user_id, "member")

    def has_blocked(self, user_id: int) -> bool:
        return user_id in self.world.blocked_by

    def _bot_membership(self, chat_id: int, by_user: int, status: str) -> JSON | None:
        world = self.world
        key = (chat_id, world.bot_id)
        old = world.members.get(key, ("left", {}))[0]
        world.members[key] = (status, {})
        bot = world.bot_user
        return world.push_update({"my_chat_member": {
            "chat": copy.deepcopy(world.chat(chat_id)),
            "from": self.person(by_user).user(),
            "date": world.now(),
            "old_chat_member": chat_member(world.spec, old, bot),
            "new_chat_member": chat_member(world.spec, status, bot),
        }})

    # -- messages -------------------------------------------------------------------------------
    def say(self, chat_id: int, user_id: int, text: str, *,
            reply_to: int | None = None) -> JSON:
        return self._send(chat_id, user_id, _text_content(text), reply_to)

    def send_photos(self, chat_id: int, user_id: int, photos: list[Upload], *,
                    caption: str | None = None, reply_to: int | None = None) -> list[JSON]:
        """One photo, or an album of up to ten: one message (and update) each."""
        if not photos or len(photos) > MAX_ALBUM:
            raise PeopleError(N_("Send 1 to {most} photos at a time."), most=MAX_ALBUM)
        caption = self._caption(caption)
        album = self.world.unique("album-") if len(photos) > 1 else None
        sent = []
        for index, upload in enumerate(photos):
            content: JSON = {"photo": self._photo_sizes(upload)}
            if album:
                content["media_group_id"] = album
            if caption and index == 0:
                content["caption"] = caption
            sent.append(self._send(chat_id, user_id, content, reply_to))
        return sent

    def send_document(self, chat_id: int, user_id: int, upload: Upload, *,
                      caption: str | None = None, reply_to: int | None = None) -> JSON:
        content: JSON = {"document": self.world.media("document", None, upload)}
        if caption := self._caption(caption):
            content["caption"] = caption
        return self._send(chat_id, user_id, content, reply_to)

    def send_location(self, chat_id: int, user_id: int, latitude: float, longitude: float, *,
                      reply_to: int | None = None) -> JSON:
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise PeopleError(N_("A latitude lies between -90 and 90, a longitude between -180 "
                                 "and 180."))
        location = {"latitude": float(latitude), "longitude": float(longitude)}
        return self._send(chat_id, user_id, {"location": location}, reply_to)

    def share_contact(self, chat_id: int, user_id: int) -> JSON:
        """The person shares their own phone number (the reply keyboard's contact button)."""
        person = self.person(user_id)
        if not person.phone:
            raise PeopleError(N_("This person has no phone number to share."))
        contact: JSON = {"phone_number": person.phone, "first_name": person.first_name,
                         "user_id": person.id}
        if person.last_name:
            contact["last_name"] = person.last_name
        return self._send(chat_id, user_id, {"contact": contact}, None)

    def edit(self, chat_id: int, message_id: int, user_id: int, text: str) -> JSON:
        """The person edits the text of a message of theirs: the bot gets edited_message."""
        world = self.world
        key = (chat_id, message_id)
        message = world.messages.get(key)
        if message is None or key not in world.incoming or \
                message.get("from", {}).get("id") != user_id or "text" not in message:
            raise PeopleError(N_("Only the text of your own message can be edited."))
        edited = copy.deepcopy(message)
        fresh = _text_content(text)
        edited.pop("entities", None)
        edited.update(fresh, edit_date=world.now())
        world.store(edited, incoming=True)
        if self._bot_sees(world.chat(chat_id), edited):
            world.push_update({"edited_message": edited})
        return edited

    def press(self, chat_id: int, message_id: int, user_id: int, data: str) -> str:
        """The person presses an inline button with this callback data; returns the query id.
        The bot's answerCallbackQuery arrives as an "answer" event."""
        world = self.world
        if not self.may_speak(chat_id, user_id):
            raise PeopleError(N_("This person is not in that chat."))
        message = world.messages.get((chat_id, message_id))
        buttons = [button for row in (message or {}).get("reply_markup", {})
                   .get("inline_keyboard", []) for button in row]
        if not any(button.get("callback_data") == data for button in buttons):
            raise PeopleError(N_("That message has no such button (any more)."))
        query_id = world.unique(str(world.bot_id))  # unique across restarts of a saved world
        user = self.person(user_id).user()
        world.callback_queries[query_id] = {"from": user, "answer": None, "chat_id": chat_id,
                                            "message_id": message_id}
        world.push_update({"callback_query": {
            "id": query_id, "from": user, "message": copy.deepcopy(message),
            "chat_instance": str(abs(chat_id)), "data": data,
        }})
        return query_id

    # -- plumbing -------------------------------------------------------------------------------
    def _caption(self, caption: str | None) -> str | None:
        caption = (caption or "").strip() or None
        if caption and utf16_len(caption) > MAX_CAPTION:
            raise PeopleError(N_("A caption has at most {most} characters."), most=MAX_CAPTION)
        return caption

    def _photo_sizes(self, upload: Upload) -> list[JSON]:
        sizes = self.world.photo_sizes(None, upload)
        for size in sizes:  # the sizes say what was really sent (the bot checks file sizes)
            size["file_size"] = min(size["file_size"], len(upload.content)) or 1
        sizes[-1]["file_size"] = len(upload.content) or 1
        return sizes

    def _send(self, chat_id: int, user_id: int, content: JSON, reply_to: int | None) -> JSON:
        world = self.world
        if not self.may_speak(chat_id, user_id):
            raise PeopleError(N_("This person is not in that chat."))
        if world.chats[chat_id]["type"] == "private" and self.has_blocked(user_id):
            self.unblock(user_id)  # a client restarts the bot when you write to it again
        chat = world.chat(chat_id)
        message: JSON = {"message_id": world.next_message_id(chat_id), "from":
                         self.person(user_id).user(), "chat": copy.deepcopy(chat),
                         "date": world.now(), **content}
        if reply_to is not None:
            replied = world.messages.get((chat_id, reply_to))
            if replied is None:
                raise PeopleError(N_("The message to reply to is gone."))
            message["reply_to_message"] = {k: v for k, v in replied.items()
                                           if k != "reply_to_message"}
        world.store(message, incoming=True)
        if chat["type"] == "private":
            world.started.add(user_id)
        if self._bot_sees(chat, message):
            world.push_update({"message": message})
        return message

    def _bot_sees(self, chat: JSON, message: JSON) -> bool:
        world = self.world
        if chat["type"] == "private":
            return True
        status = world.members.get((chat["id"], world.bot_id), ("left", {}))[0]
        if status not in _PRESENT:
            return False
        if status in ("administrator", "creator") or world.bot_user.get(
                "can_read_all_group_messages"):
            return True
        # Privacy mode: a message that starts with a command (for this bot, or for no bot in
        # particular), a reply to the bot's own message, nothing else.
        first = next(iter(message.get("entities", [])), {})
        if first.get("type") == "bot_command" and first.get("offset") == 0:
            command = message["text"][:first["length"]]
            addressee = command.partition("@")[2].lower()
            if addressee in ("", str(world.bot_user.get("username", "")).lower()):
                return True
        replied = message.get("reply_to_message") or {}
        return replied.get("from", {}).get("id") == world.bot_id


def _text_content(text: str) -> JSON:
    """A text as a client sends it: trimmed, with its /commands marked as entities."""
    text = text.strip()
    if not text:
        raise PeopleError(N_("An empty message cannot be sent."))
    if utf16_len(text) > MAX_TEXT:
        raise PeopleError(N_("A message has at most {most} characters."), most=MAX_TEXT)
    content: JSON = {"text": text}
    commands = [{"type": "bot_command", "offset": utf16_len(text[:m.start()]),
                 "length": utf16_len(m.group())} for m in _COMMAND.finditer(text)]
    if commands:
        content["entities"] = commands
    return content
