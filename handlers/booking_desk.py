"""The lawyer desk's check-up buttons in its group ("bk:" callbacks) and the report that
answers the Done prompt (the use cases are in bot.actions.booking_desk and, for the Close
buttons of /slots, bot.actions.slots).

The door asks Telegram whether the one who pressed is a member of the group before the
action runs (never inside a unit of work), shows the answer (notes and pickers as replies to
the pressed message, in the ticket's forum topic), and sends the report prompt before the
action remembers it: its id is known only once it is sent.
"""

from __future__ import annotations

from telegram import Message, Update
from telegram.ext import Application, CallbackQueryHandler

from bot.actions import booking_desk as actions
from bot.actions.booking_desk import DeskAnswer, Pressed, Report
from bot.actions.notifier import bring_copy_up_to_date
from bot.context import Context
from bot.views import Answer
from bot.views.cards import BOOKING_PREFIX
from handlers.common import is_group, offers_button, who
from handlers.membership_check import Membership, membership
from handlers.reply import send, show


async def desk_button(update: Update, context: Context) -> None:
    rt = context.runtime
    query = update.callback_query
    user = update.effective_user
    data = query.data or ""
    if not (is_group(update) and query.message is not None and user is not None):
        data = ""  # no longer valid, whatever it says
    # Asked before the action's unit of work opens: never wait for Telegram holding the
    # write lock.
    member = (await membership(context, update.effective_chat.id, user.id)
              if actions.parse(data) is not None else None)
    message = query.message
    pressed = Pressed(data=data, message_id=message.message_id if message else 0,
                      topic=_topic(message), full_name=user.full_name if user else "",
                      member=None if member in (None, Membership.UNKNOWN)
                      else member is Membership.MEMBER)
    result = await actions.press(rt, who(update), pressed)
    await _show(update, context, result, reply_to=pressed.message_id)
    ticket_id = actions.on_card(data)
    if ticket_id is not None and member is Membership.MEMBER:
        if offers_button(message, data):
            await bring_copy_up_to_date(rt, message.chat.id, message.message_id, ticket_id)


async def report_reply(update: Update, context: Context) -> bool:
    """A reply in a group: if it answers our report prompt, take it and stop there."""
    message = update.effective_message
    user = update.effective_user
    replied = message.reply_to_message if message else None
    if replied is None or user is None:
        return False
    report = Report(text=message.text or message.caption or "", typed=bool(message.text),
                    document=message.document.file_id if message.document else None)
    result = await actions.take_report(context.runtime, who(update), user.full_name,
                                       replied.message_id, _topic(message), report)
    if result is None:
        return False
    await _show(update, context, result, reply_to=message.message_id)
    return True


async def _show(update: Update, context: Context, result: DeskAnswer, *, reply_to: int) -> None:
    """The answer to the press (if it was one), then what is said, as replies to
    ``reply_to`` in the answer's forum topic, then the report prompt, remembered once sent."""
    answer = result.answer
    chat_id = update.effective_chat.id
    await show(update, context, Answer(edit=answer.edit, unbutton=answer.unbutton,
                                       alert=answer.alert, toast=answer.toast))
    for view in answer.say:
        await send(context, chat_id, view, reply_to=reply_to, thread=result.thread)
    if result.prompt is not None:
        sent = await send(context, chat_id, result.prompt, reply_to=reply_to,
                          thread=result.thread)
        await actions.remember_prompt(context.runtime, result.ticket_id,
                                      update.effective_user.id, chat_id, sent.message_id)


def _topic(message: Message | None) -> int | None:
    """The forum topic a message is in, if any."""
    if message is not None and getattr(message, "is_topic_message", False):
        return message.message_thread_id
    return None


def register(app: Application) -> None:
    app.add_handler(CallbackQueryHandler(desk_button, pattern=f"^{BOOKING_PREFIX}"))
