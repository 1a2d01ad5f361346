"""Real ``telegram.Update`` objects, built from the JSON getUpdates would deliver.

Names and texts go in verbatim: HTML and control characters in a user's name are exactly the
input the bot must escape, so nothing here escapes anything.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from telegram import Bot, Message, Update

from bot.sandbox.apispec import BotApiSpec, utf16_len
from tests.telegram_fake.transport import (
    BOT_ID,
    BOT_USERNAME,
    FakeTelegram,
    chat_member,
    load_spec,
)

JSON = dict[str, Any]


@dataclass(frozen=True)
class User:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "zh-hans"
    is_bot: bool = False

    def to_dict(self) -> JSON:
        data: JSON = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data


@dataclass(frozen=True)
class Chat:
    id: int
    type: str  # "private" | "group" | "supergroup" | "channel"
    title: str | None = None
    username: str | None = None
    is_forum: bool = False
    first_name: str | None = None  # private chats
    last_name: str | None = None

    @classmethod
    def private(cls, user: User) -> Chat:
        return cls(
            user.id,
            "private",
            username=user.username,
            first_name=user.first_name,
            last_name=user.last_name,
        )

    def to_dict(self) -> JSON:
        data: JSON = {"id": self.id, "type": self.type}
        for key in ("title", "username", "first_name", "last_name"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.is_forum:
            data["is_forum"] = True
        return data


_BOT = User(BOT_ID, "Gridgate", username=BOT_USERNAME, language_code=None, is_bot=True)


def _as_message_dict(message: Message | Update | JSON) -> JSON:
    if isinstance(message, Update):
        message = message.effective_message  # type: ignore[assignment]
    if isinstance(message, Message):
        return message.to_dict()
    return dict(message)


class UpdateFactory:
    """Builds updates with increasing ``update_id``/``message_id``.

    Pass the FakeTelegram the bot talks to: message ids then come from the same per-chat
    sequence as the bot's own messages (as on Telegram), and users, chats and incoming messages
    become known to the fake (copyMessage, replies, getChatMember can refer to them).
    """

    def __init__(
        self,
        bot: Bot,
        fake: FakeTelegram | None = None,
        *,
        bot_username: str = BOT_USERNAME,
        first_update_id: int = 1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bot = bot
        self.fake = fake
        self.bot_username = bot_username
        self.clock = clock
        self._update_ids = itertools.count(first_update_id)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._ids = itertools.count(1)

    # -- plumbing --------------------------------------------------------------------------
    @property
    def spec(self) -> BotApiSpec:
        return self.fake.server.spec if self.fake is not None else load_spec()

    def _update(self, **payload: Any) -> Update:
        data = {"update_id": next(self._update_ids), **payload}
        # What Telegram would send: a typo in a builder fails here, not deep inside a test.
        violations = self.spec.validate_value("Update", data, "Update")
        if violations:
            raise ValueError("UpdateFactory built an invalid Update:\n  " + "\n  ".join(violations))
        return Update.de_json(data, self.bot)

    def _message_id(self, chat_id: int) -> int:
        if self.fake is not None:
            return self.fake.next_message_id(chat_id)
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def _message(
        self, chat: Chat, user: User | None, *, reply_to: Any = None, **content: Any
    ) -> JSON:
        message: JSON = {
            "message_id": self._message_id(chat.id),
            "date": int(self.clock()),
            "chat": chat.to_dict(),
        }
        if user is not None:
            message["from"] = user.to_dict()
        else:
            message["sender_chat"] = chat.to_dict()  # channel posts have no "from"
        if reply_to is not None:
            replied = _as_message_dict(reply_to)
            replied.pop("reply_to_message", None)
            message["reply_to_message"] = replied
        # Telegram leaves out empty and false optional fields.
        message.update({k: v for k, v in content.items() if v is not None and v is not False})
        if self.fake is not None:
            self.fake.add_chat(
                chat.id,
                chat.type,
                title=chat.title,
                username=chat.username,
                first_name=chat.first_name,
                last_name=chat.last_name,
                is_forum=chat.is_forum,
            )
            if user is not None:
                self.fake.add_user(user.to_dict())
            self.fake.record_incoming(message)
        return message

    def _file(self, prefix: str) -> JSON:
        n = next(self._ids)
        return {"file_id": f"{prefix}-in-{n:06d}", "file_unique_id": f"u-{prefix}-in-{n:06d}"}

    def _chat_of(self, user: User, chat: Chat | None) -> Chat:
        return chat or Chat.private(user)

    # -- messages --------------------------------------------------------------------------
    def private_text(
        self, user: User, text: str, *, entities: list[JSON] | None = None, reply_to: Any = None
    ) -> Update:
        message = self._message(
            Chat.private(user), user, text=text, entities=entities, reply_to=reply_to
        )
        return self._update(message=message)

    def group_text(
        self,
        chat: Chat,
        user: User,
        text: str,
        reply_to: Any = None,
        message_thread_id: int | None = None,
        *,
        entities: list[JSON] | None = None,
    ) -> Update:
        topic = {}
        if message_thread_id is not None:
            topic = {"message_thread_id": message_thread_id, "is_topic_message": chat.is_forum}
        message = self._message(
            chat, user, text=text, entities=entities, reply_to=reply_to, **topic
        )
        return self._update(message=message)

    def command(
        self,
        where: User | Chat,
        command: str,
        *args: str,
        user: User | None = None,
        mention_bot: bool | None = None,
        message_thread_id: int | None = None,
    ) -> Update:
        """``/start`` in a private chat with a User, or ``/cmd@bot`` in a group Chat.

        The bot_command entity covers ``/cmd@bot`` the way Telegram marks it.
        """
        if isinstance(where, User):
            chat, sender = Chat.private(where), where
        elif user is None:
            raise TypeError("a command in a group needs user=<the sender>")
        else:
            chat, sender = where, user
        name = command if command.startswith("/") else f"/{command}"
        if mention_bot if mention_bot is not None else chat.type != "private":
            name = f"{name}@{self.bot_username}"
        text = " ".join((name, *args))
        entity = {"type": "bot_command", "offset": 0, "length": utf16_len(name)}
        if chat.type == "private":
            message = self._message(chat, sender, text=text, entities=[entity])
            return self._update(message=message)
        return self.group_text(
            chat, sender, text, message_thread_id=message_thread_id, entities=[entity]
        )

    def callback(self, user: User, data: str, message: Message | Update | JSON) -> Update:
        """A press on an inline button of ``message`` (e.g. ``fake.last(...).result``)."""
        msg = _as_message_dict(message)
        query = {
            "id": str(4_000_000_000_000 + next(self._ids)),
            "from": user.to_dict(),
            # Telegram: a global identifier of the chat the message with the button is in.
            "chat_instance": str(-(abs(msg["chat"]["id"]) * 7919 % 10**18)),
            "message": msg,
            "data": data,
        }
        if self.fake is not None:
            self.fake.add_user(user.to_dict())
        return self._update(callback_query=query)

    def location(
        self,
        user: User,
        latitude: float,
        longitude: float,
        *,
        chat: Chat | None = None,
        live_period: int | None = None,
        horizontal_accuracy: float | None = None,
    ) -> Update:
        location = {"latitude": latitude, "longitude": longitude}
        if live_period is not None:
            location["live_period"] = live_period
        if horizontal_accuracy is not None:
            location["horizontal_accuracy"] = horizontal_accuracy
        message = self._message(self._chat_of(user, chat), user, location=location)
        return self._update(message=message)

    def venue(
        self,
        user: User,
        latitude: float,
        longitude: float,
        title: str,
        address: str,
        *,
        chat: Chat | None = None,
    ) -> Update:
        location = {"latitude": latitude, "longitude": longitude}
        venue = {"location": location, "title": title, "address": address}
        message = self._message(self._chat_of(user, chat), user, location=location, venue=venue)
        return self._update(message=message)

    def contact(
        self,
        user: User,
        phone: str,
        *,
        user_id: int | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        chat: Chat | None = None,
    ) -> Update:
        """Defaults to the sender sharing their own number (request_contact button)."""
        contact = {"phone_number": phone, "first_name": first_name or user.first_name}
        if last_name or (first_name is None and user.last_name):
            contact["last_name"] = last_name or user.last_name
        owner = user_id if user_id is not None else (user.id if first_name is None else None)
        if owner is not None:
            contact["user_id"] = owner
        message = self._message(self._chat_of(user, chat), user, contact=contact)
        return self._update(message=message)

    def photo(
        self,
        user: User,
        caption: str | None = None,
        media_group_id: str | None = None,
        file_size: int = 120_000,
        *,
        chat: Chat | None = None,
    ) -> Update:
        base = self._file("photo")
        sizes = []
        for w, h, size in (
            (90, 67, file_size // 100),
            (320, 240, file_size // 8),
            (1280, 960, file_size),
        ):
            ids = base if w == 1280 else {k: f"{v}-{w}" for k, v in base.items()}
            sizes.append({**ids, "width": w, "height": h, "file_size": max(size, 1)})
        message = self._message(
            self._chat_of(user, chat),
            user,
            photo=sizes,
            caption=caption,
            media_group_id=media_group_id,
        )
        return self._update(message=message)

    def media_group(
        self, user: User, n: int, caption: str | None = None, *, chat: Chat | None = None
    ) -> list[Update]:
        """An album: ``n`` updates sharing one media_group_id, caption on the first only."""
        group_id = str(13_000_000_000_000_000 + next(self._ids))
        return [
            self.photo(user, caption if i == 0 else None, media_group_id=group_id, chat=chat)
            for i in range(n)
        ]

    def document(
        self,
        user: User,
        file_name: str = "report.pdf",
        mime_type: str = "application/pdf",
        file_size: int = 52_000,
        *,
        caption: str | None = None,
        chat: Chat | None = None,
    ) -> Update:
        document = {
            **self._file("document"),
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": file_size,
        }
        message = self._message(self._chat_of(user, chat), user, document=document, caption=caption)
        return self._update(message=message)

    def voice(self, user: User, duration: int = 3, *, chat: Chat | None = None) -> Update:
        voice = {
            **self._file("voice"),
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": 4_000 * duration,
        }
        message = self._message(self._chat_of(user, chat), user, voice=voice)
        return self._update(message=message)

    def video_note(
        self, user: User, duration: int = 5, length: int = 240, *, chat: Chat | None = None
    ) -> Update:
        note = {
            **self._file("video_note"),
            "duration": duration,
            "length": length,
            "file_size": 60_000 * duration,
        }
        message = self._message(self._chat_of(user, chat), user, video_note=note)
        return self._update(message=message)

    def sticker(self, user: User, emoji: str = "👍", *, chat: Chat | None = None) -> Update:
        sticker = {
            **self._file("sticker"),
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }
        message = self._message(self._chat_of(user, chat), user, sticker=sticker)
        return self._update(message=message)

    def edited_message(
        self,
        original: Message | Update | JSON,
        text: str | None = None,
        *,
        caption: str | None = None,
        edit_date: int | None = None,
    ) -> Update:
        """The same message (same id) with new text or caption and an edit_date."""
        message = _as_message_dict(original)
        if text is not None:
            message["text"] = text
            message.pop("entities", None)
        if caption is not None:
            message["caption"] = caption
        message["edit_date"] = edit_date or int(self.clock())
        key = "edited_channel_post" if message["chat"]["type"] == "channel" else "edited_message"
        if self.fake is not None:
            self.fake.record_incoming(message)
        return self._update(**{key: message})

    def channel_post(self, chat: Chat, text: str) -> Update:
        return self._update(channel_post=self._message(chat, None, text=text))

    # -- chat lifecycle --------------------------------------------------------------------
    def my_chat_member(
        self, chat: Chat, old_status: str, new_status: str, from_user: User
    ) -> Update:
        """The bot's own membership changed, e.g. added to a group ("left" -> "member")."""

        def member(status: str) -> JSON:
            return chat_member(self.spec, status, _BOT.to_dict())

        if self.fake is not None:
            self.fake.add_chat(chat.id, chat.type, title=chat.title, is_forum=chat.is_forum)
            self.fake.set_member(chat.id, BOT_ID, new_status)
        return self._update(
            my_chat_member={
                "chat": chat.to_dict(),
                "from": from_user.to_dict(),
                "date": int(self.clock()),
                "old_chat_member": member(old_status),
                "new_chat_member": member(new_status),
            }
        )

    def migrate(self, old: Chat | int, new_id: int, *, user: User | None = None) -> list[Update]:
        """A group upgraded to a supergroup: the service message in the old group
        (``migrate_to_chat_id``) and the one opening the supergroup (``migrate_from_chat_id``)."""
        old_chat = old if isinstance(old, Chat) else Chat(old, "group", title=f"Group {old}")
        new_chat = Chat(new_id, "supergroup", title=old_chat.title, username=old_chat.username)
        sender = user or User(1_000_000_001, "Group Admin", language_code=None)
        in_old = self._message(old_chat, sender, migrate_to_chat_id=new_id)
        in_new = self._message(new_chat, sender, migrate_from_chat_id=old_chat.id)
        if self.fake is not None:
            self.fake.migrate_chat(old_chat.id, new_id)
        return [self._update(message=in_old), self._update(message=in_new)]
