"""What a web resident sends, read into the actions' plain values and handed to the same actions
the Telegram door calls: buttons by their data, the commands the help mentions, and messages
through the conversations (then, as in Telegram, words and photos no conversation took are
offered as a report, never just "not understood").

The web chat serves residents: the enterprise forms and check-up bookings, which need a
Telegram account to act for an enterprise, are not offered here (``shown``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.actions import conversations, freetext, menu, my_tickets, privacy, report, survey
from bot.actions.people import Who, answer_language
from bot.actions.relay import Said
from bot.runtime import Runtime
from bot.services import reporting
from bot.services.enterprises import Answer as FormAnswer
from bot.services.relay import TEXT, Content
from bot.views import Answer, View
from bot.views import menu as menu_views
from bot.views import my_tickets as my_tickets_views
from bot.views import privacy as privacy_views
from bot.views import report as report_views
from bot.views import survey as survey_views
from bot.views.freetext import PREFIX as OFFER_PREFIX

# Buttons of flows that are Telegram's only (they act for an enterprise).
_TELEGRAM_ONLY = {menu_views.ENTERPRISE, menu_views.ENTERPRISE_MATTER_NEW,
                  menu_views.CHECKUP_NEW}
_PREFIXES = (report_views.PREFIX, my_tickets_views.PREFIX, survey_views.PREFIX,
             privacy_views.PREFIX, OFFER_PREFIX, menu_views.LANGUAGE_PREFIX)


def shown(data: str) -> bool:
    """Whether the web chat shows a button with this data (it handles its press)."""
    if data in _TELEGRAM_ONLY:
        return False
    return data in (menu_views.MENU_HELP, menu_views.MENU_LANGUAGE) or data.startswith(_PREFIXES)


async def press(rt: Runtime, who: Who, data: str) -> Answer:
    """A button pressed in the web chat."""
    if shown(data):
        if data in (menu_views.MENU_HELP, menu_views.MENU_LANGUAGE):
            return await menu.menu(rt, who, data)
        if data.startswith(menu_views.LANGUAGE_PREFIX):
            chosen = await menu.choose_language(
                rt, who, data.removeprefix(menu_views.LANGUAGE_PREFIX), admin=False)
            return chosen.answer
        if data.startswith(report_views.PREFIX):
            return await report.press(rt, who, report.Press(data, ""))
        if data.startswith(my_tickets_views.PREFIX):
            return await my_tickets.press_data(rt, who, data)
        if data.startswith(survey_views.PREFIX):
            return await survey.press_data(rt, who, data)
        if data.startswith(privacy_views.PREFIX):
            return await privacy.erase_data(rt, who, data)
        if data.startswith(OFFER_PREFIX):
            return await freetext.press(rt, who, freetext.Sender(who.user_id, ""), data)
    t = await answer_language(rt, who)
    return Answer(alert=menu_views.button_invalid(t))


async def _my_data(rt: Runtime, who: Who) -> Answer:
    copy = await privacy.my_data(rt, who)
    return Answer([View(copy.caption, attachments=(copy,))])


def _start_kind(kind: str) -> Callable[[Runtime, Who], Awaitable[Answer]]:
    async def start(rt: Runtime, who: Who) -> Answer:
        return await report.start(rt, who, kind)
    return start


async def _language(rt: Runtime, who: Who) -> Answer:
    return await menu.language_menu(rt, who, admin=False)


# The commands the help and the menus mention, typed in the web chat as in Telegram.
COMMANDS: dict[str, Callable[[Runtime, Who], Awaitable[Answer]]] = {
    "start": menu.start,
    "help": menu.private_help,
    "report": _start_kind(reporting.REPORT),
    "consult": _start_kind(reporting.CONSULTATION),
    "mytickets": my_tickets.listing,
    "mydata": _my_data,
    "deletemydata": privacy.offer_erasure,
    "language": _language,
}


def command_of(text: str) -> str | None:
    if not text.startswith("/"):
        return None
    word = text[1:].split(maxsplit=1)[0] if len(text) > 1 else ""
    return word.split("@", 1)[0].lower() or None


async def text(rt: Runtime, who: Who, words: str, *, reply_to: int | None = None,
               reply_to_text: str = "") -> Answer:
    """Words typed in the web chat (``reply_to``: the bot's message they answer)."""
    command = command_of(words)
    if command in COMMANDS:
        return await COMMANDS[command](rt, who)
    cancel = command == "cancel"
    said = conversations.Message(
        cancel=cancel, said=_said(who, Content(TEXT, words), reply_to, reply_to_text),
        report=reporting.Answer("text", text=words), form=FormAnswer("text", text=words),
        text=words)
    answer = await conversations.take(rt, who, said)
    if answer is not None:
        return answer
    if cancel:
        answer = await report.cancel(rt, who)
        if answer.handled:
            return answer
    if command is not None and not cancel:
        t = await answer_language(rt, who)
        return Answer([menu_views.not_understood(t, text=True)])
    answer = await freetext.take_text(rt, who, words, cancel=cancel)
    if answer.handled:
        return answer
    t = await answer_language(rt, who)
    return Answer([menu_views.not_understood(t, text=True)])


async def location(rt: Runtime, who: Who, latitude: float, longitude: float) -> Answer:
    said = conversations.Message(
        cancel=False, said=_said(who, Content("location"), None, ""),
        report=reporting.Answer("location", latitude=latitude, longitude=longitude),
        form=FormAnswer("other"), text=None)
    answer = await conversations.take(rt, who, said)
    if answer is not None:
        return answer
    return await freetext.take_item(rt, who, freetext.Item(location=(latitude, longitude)))


async def photo(rt: Runtime, who: Who, file_id: str, size: int) -> Answer:
    """A photo, by the file id the web chat gives it (bot.delivery.web)."""
    said = conversations.Message(
        cancel=False, said=_said(who, Content("photo", "", file_id, size), None, ""),
        report=reporting.Answer("photo", file_id=file_id, file_size=size),
        form=FormAnswer("other"), text=None)
    answer = await conversations.take(rt, who, said)
    if answer is not None:
        return answer
    return await freetext.take_item(rt, who, freetext.Item("photo", file_id, size))


async def phone(rt: Runtime, who: Who, number: str) -> Answer:
    """A phone number typed where the bot asked for the person's contact (checked before)."""
    said = conversations.Message(
        cancel=False, said=_said(who, Content("other"), None, ""),
        report=reporting.Answer("contact", contact_user_id=who.user_id, phone=number),
        form=FormAnswer("contact", contact_user_id=who.user_id, phone=number), text=None)
    answer = await conversations.take(rt, who, said)
    if answer is not None:
        return answer
    t = await answer_language(rt, who)
    return Answer([menu_views.not_understood(t, text=False)])


def _said(who: Who, content: Content, reply_to: int | None, reply_to_text: str) -> Said:
    # A web resident has no name in a messenger (the report asks for what is needed) and
    # their messages are not Telegram's to copy: message 0 makes the relay re-send them.
    return Said(user_id=who.user_id, name="", content=content, chat_id=who.chat_id,
                message_id=0, reply_to=reply_to, reply_to_bot=reply_to is not None,
                reply_to_text=reply_to_text)
