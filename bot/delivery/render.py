"""Views rendered for Telegram: the one place that turns what the bot says (``bot.views``)
into Bot API parameters, both for the outbox (plain JSON) and for the Telegram door's
immediate answers (python-telegram-bot objects made from the same JSON)."""

from __future__ import annotations

from typing import Any

from telegram import (
    ForceReply,
    InlineKeyboardMarkup,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    TelegramObject,
)

from bot.views import Ask, Button, View


def _button(button: Button) -> dict[str, Any]:
    if button.url:
        return {"text": button.label, "url": button.url}
    return {"text": button.label, "callback_data": button.data}


def markup_json(view: View) -> dict[str, Any] | None:
    """The view's reply markup as Bot API JSON: its buttons (inline), else what it asks for
    (a share button, a forced reply, the removal of an earlier keyboard), else None.
    Telegram takes one markup per message, so buttons win over the ask."""
    if view.buttons:
        return {"inline_keyboard": [[_button(b) for b in row] for row in view.buttons]}
    if view.ask in (Ask.LOCATION, Ask.CONTACT):
        request = "request_location" if view.ask is Ask.LOCATION else "request_contact"
        return {"keyboard": [[{"text": view.ask_label, request: True}]],
                "resize_keyboard": True, "one_time_keyboard": True}
    if view.ask is Ask.REPLY:
        forced: dict[str, Any] = {"force_reply": True, "selective": True}
        if view.ask_label:
            forced["input_field_placeholder"] = view.ask_label[:64]
        return forced
    if view.ask is Ask.TEXT:
        return {"remove_keyboard": True}
    return None


def message_params(view: View) -> dict[str, Any]:
    """``sendMessage`` (or ``editMessageText``) parameters for the view, without the chat."""
    params: dict[str, Any] = {"text": view.text, "parse_mode": "HTML"}
    markup = markup_json(view)
    if markup is not None:
        params["reply_markup"] = markup
    return params


def reply_markup(view: View) -> Any:
    """The view's reply markup as a python-telegram-bot object (or None)."""
    markup = markup_json(view)
    if markup is None:
        return None
    if "inline_keyboard" in markup:
        return InlineKeyboardMarkup.de_json(markup, None)
    if "keyboard" in markup:
        return ReplyKeyboardMarkup.de_json(markup, None)
    if "force_reply" in markup:
        return ForceReply.de_json(markup, None)
    return ReplyKeyboardRemove.de_json(markup, None)


def as_json(value: Any) -> Any:
    """A PTB object as the JSON it stands for (outbox rows store JSON)."""
    return value.to_dict() if isinstance(value, TelegramObject) else value
