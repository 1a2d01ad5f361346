"""The resident's report flow in Telegram: commands, the messages that answer its steps,
and its buttons (use cases in bot.actions.report, texts in bot.views.report).

Each handler reads the update into plain values, calls one action and shows its answer. The
flow's messages come through the conversation router (which reads them with ``content``)
while the person's conversation is a report (a person has one private draft at a time:
starting a report drops an "Add information" or a withdrawal, and those drop an unfinished
report).
"""

from __future__ import annotations

from telegram import Message, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, filters

from bot.actions import report as actions
from bot.context import Context
from bot.services import reporting
from bot.views import report as views
from handlers.common import who
from handlers.reply import show

PRIVATE_MESSAGES = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE


def register(app: Application) -> None:
    """In group 0; the messages of the flow come through the conversation router."""
    app.add_handler(CommandHandler("report", report_command, filters=PRIVATE_MESSAGES))
    app.add_handler(CommandHandler("consult", consult_command, filters=PRIVATE_MESSAGES))
    app.add_handler(CommandHandler("matter", matter_command, filters=PRIVATE_MESSAGES))
    app.add_handler(CommandHandler("cancel", cancel_command, filters=PRIVATE_MESSAGES))
    app.add_handler(CallbackQueryHandler(report_callback, pattern=f"^{views.PREFIX}"))


async def report_command(update: Update, context: Context) -> None:
    await show(update, context, await actions.start(context.runtime, who(update),
                                                     reporting.REPORT))


async def consult_command(update: Update, context: Context) -> None:
    await show(update, context, await actions.start(context.runtime, who(update),
                                                     reporting.CONSULTATION))


async def matter_command(update: Update, context: Context) -> None:
    await show(update, context, await actions.start(context.runtime, who(update),
                                                     reporting.ENTERPRISE_DISPUTE))


async def cancel_command(update: Update, context: Context) -> bool:
    """/cancel of the report; False while another flow is in progress (its own /cancel
    handles it)."""
    answer = await actions.cancel(context.runtime, who(update))
    if answer.handled:
        await show(update, context, answer)
    return answer.handled


async def report_callback(update: Update, context: Context) -> None:
    user = update.effective_user
    pressed = actions.Press(update.callback_query.data or "",
                            reporting.display_name(user.first_name, user.last_name))
    await show(update, context, await actions.press(context.runtime, who(update), pressed))


def content(message: Message) -> reporting.Answer:
    """The parts of a message the flow looks at."""
    album = message.media_group_id
    if message.text is not None:
        return reporting.Answer("text", text=message.text)
    if message.location is not None:  # also set for venues and live locations
        return reporting.Answer("location", latitude=message.location.latitude,
                                longitude=message.location.longitude)
    if message.contact is not None:
        return reporting.Answer("contact", contact_user_id=message.contact.user_id,
                                phone=message.contact.phone_number)
    if message.photo:
        largest = max(message.photo, key=lambda size: size.width * size.height)
        return reporting.Answer("photo", file_id=largest.file_id, file_size=largest.file_size,
                                album=album)
    for kind in ("video", "voice", "video_note"):
        media = getattr(message, kind)
        if media is not None:
            return reporting.Answer(kind, file_id=media.file_id, file_size=media.file_size,
                                    album=album)
    if message.document is not None:
        document = message.document
        return reporting.Answer("document", file_id=document.file_id,
                                file_size=document.file_size, album=album,
                                mime=document.mime_type)
    return reporting.Answer("other", album=album)
