"""Turning an outbox row into a Bot API call and the answer into facts: placeholders, the
messages a call produced, and error texts that are safe to store and log."""

from __future__ import annotations

import re
import warnings
from datetime import timedelta
from typing import Any

from telegram import InputMedia
from telegram.error import RetryAfter, TelegramError

from storage.models import Ticket

CARD = "$card"
TOPIC = "$topic"
# Not a Bot API parameter: a message to react to once this row is sent ({"chat_id",
# "message_id", "emoji"}). A worker's reply relayed to a resident gets it, so that the group
# sees the resident got the reply without a message of its own.
REACT_WHEN_SENT = "$react_when_sent"


class CardNotThere(Exception):
    """The row refers to the ticket's card in ``chat_id``, and it is not there (yet).
    ``reply_only``: the card is only what the message replies to, so it can go without."""

    def __init__(self, chat_id: int, *, reply_only: bool = False) -> None:
        super().__init__(chat_id)
        self.chat_id = chat_id
        self.reply_only = reply_only


def resolve(params: dict[str, Any], ticket: Ticket | None, chat_id: int, *,
            without_card: bool = False) -> dict[str, Any]:
    """A copy of ``params`` with "$card" and "$topic" replaced from the ticket.

    "$card" stands for the card's message id wherever a message id goes (``message_id``,
    ``reply_parameters.message_id``); the message it names lives in ``from_chat_id``
    (copy/forward) or the object's own ``chat_id``, else the row's chat, and must be the
    ticket's card *there*, or CardNotThere is raised — unless the card is only replied to
    and ``without_card`` is set: then the message goes without its ``reply_parameters``
    (which is what ``allow_sending_without_reply`` asks for when the card was deleted, too).
    "$topic" becomes the ticket's forum topic; without one the key is dropped (the message
    goes to the group's general chat).
    """

    def card_in(source: int) -> int | None:
        if (ticket is None or ticket.card_message_id is None
                or ticket.group_chat_id != source):
            return None
        return ticket.card_message_id

    def walk(value: Any, here: int) -> Any:
        if isinstance(value, dict):
            own = value.get("chat_id", here)
            own = own if isinstance(own, int) else here
            source = value.get("from_chat_id", own)
            source = source if isinstance(source, int) else own
            out = {}
            for key, item in value.items():
                if item == TOPIC:
                    if ticket is not None and ticket.topic_id is not None:
                        out[key] = ticket.topic_id
                    continue
                if item == CARD:
                    card = card_in(source)
                    if card is None:
                        raise CardNotThere(source)
                    out[key] = card
                    continue
                if (key == "reply_parameters" and isinstance(item, dict)
                        and item.get("message_id") == CARD):
                    replied = item.get("chat_id", own)
                    replied = replied if isinstance(replied, int) else own
                    if card_in(replied) is None:
                        if not without_card:
                            raise CardNotThere(replied, reply_only=True)
                        continue
                out[key] = walk(item, own)
            return out
        if isinstance(value, list):
            return [walk(item, here) for item in value]
        return value

    resolved = walk(params, chat_id)
    resolved.pop(REACT_WHEN_SENT, None)
    return resolved


def api_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """The resolved params as ``Bot.do_api_request`` takes them.

    PTB 22.8 passes plain dicts and lists through to the JSON body unchanged (RequestParameter
    only converts its own objects, datetimes and files), and drops top-level None values — with
    one exception: ``Bot._insert_defaults`` assumes that a list under "media" holds InputMedia
    objects and sets their ``parse_mode``, which fails on dicts. Such items are wrapped in a
    bare InputMedia whose ``to_dict()`` gives back exactly the same JSON.
    """
    out = dict(params)
    media = out.get("media")
    if isinstance(media, list) and media and all(isinstance(m, dict) for m in media):
        out["media"] = [_input_media(item) for item in media]
    return out


def _input_media(item: dict[str, Any]) -> InputMedia:
    rest = {k: v for k, v in item.items() if k not in ("type", "media", "caption", "parse_mode")}
    return InputMedia(item.get("type", ""), item.get("media", ""), caption=item.get("caption"),
                      parse_mode=item.get("parse_mode"), api_kwargs=rest)


def message_ids(result: Any) -> list[int]:
    """The messages a call produced or touched: a Message or MessageId, a list of them (albums,
    copyMessages), nothing for True or other objects."""
    items = result if isinstance(result, list) else [result]
    return [item["message_id"] for item in items
            if isinstance(item, dict) and isinstance(item.get("message_id"), int)]


def sends_messages(method: str) -> bool:
    return method.startswith(("send", "copyMessage", "forwardMessage"))


def retry_after_seconds(exc: RetryAfter) -> float:
    # Since PTB 22.2 the value is a timedelta inside; the public attribute is an int unless
    # PTB_TIMEDELTA is set, and reading it that way warns about the coming change.
    value = getattr(exc, "_retry_after", None)
    if not isinstance(value, timedelta):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = exc.retry_after
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    return max(seconds, 0.0)


_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'|«[^»]*»")


def describe(exc: BaseException) -> str:
    """``Class: description`` for last_error and logs. Telegram's descriptions hold no message
    text, except quoted fragments such as an unsupported tag name in "can't parse entities":
    those are blanked. Anything not from Telegram is reduced to its class name."""
    name = type(exc).__name__
    if not isinstance(exc, TelegramError):
        return name
    text = _QUOTED.sub('"…"', exc.message.splitlines()[0] if exc.message else "")
    return f"{name}: {text}"[:250]
