"""Grid workers acting on ticket cards in their group (``bot.actions.worker``) and answering
the bot's questions there with a reply (``bot.actions.prompts``): the Telegram door.

A press is read (its button's data, the message and forum topic it was pressed in), the
person's membership of the group is asked of Telegram (cached for a few minutes) before the
action runs, and the action's answer is shown once it has committed: an answer to the press,
messages replying to the pressed message in the ticket's topic, an edit of the transfer
picker. A question for a note or a reason is sent, then remembered with its message id.
Telegram is never called while the action's transaction is open.
"""

from __future__ import annotations

from telegram import Message, Update
from telegram.ext import Application, ApplicationHandlerStop, CallbackQueryHandler

from bot.actions import prompts, worker
from bot.actions.groups_membership import Membership
from bot.actions.notifier import bring_copy_up_to_date
from bot.actions.people import Who
from bot.context import Context
from bot.views.cards import ACTION_PREFIX
from bot.views.worker import CARD_ACTIONS, parse_button
from bot.views.worker import worker_name as views_worker_name
from handlers.common import is_group, offers_button, who
from handlers.membership_check import membership
from handlers.reply import send, show

# -- what the door reads from Telegram -------------------------------------------------------

def worker_name(update: Update) -> str:
    return views_worker_name(update.effective_user.full_name)


def topic_of(message: Message | None) -> int | None:
    """The forum topic a message is in (None: not in one)."""
    if message is not None and getattr(message, "is_topic_message", False):
        return message.message_thread_id
    return None


def thread_of(message: Message | None, topic_id: int | None) -> int | None:
    """The forum topic to answer in: the ticket's own, else the one the message is in."""
    return topic_id if topic_id is not None else topic_of(message)


def _who(update: Update) -> Who:
    if update.effective_chat is None:  # an inline message: no chat to act in
        user = update.effective_user
        return Who(user_id=user.id, chat_id=user.id, language_code=user.language_code)
    return who(update)


async def ask(context: Context, update: Update, prompt: worker.Prompt, *,
              reply_to: int | None) -> None:
    """Send the question, then remember it (``worker.remember_prompt`` says why in this
    order)."""
    sent = await send(context, update.effective_chat.id, prompt.view, reply_to=reply_to,
                      thread=prompt.thread)
    await worker.remember_prompt(context.runtime, who(update), prompt, sent.message_id)


# -- button presses --------------------------------------------------------------------------

async def card_button(update: Update, context: Context) -> None:
    rt = context.runtime
    query = update.callback_query
    message = query.message
    data = parse_button(query.data) if is_group(update) and message is not None else None
    # Asked before the action runs: never wait for Telegram holding the write lock.
    member = (await membership(context, update.effective_chat.id, update.effective_user.id)
              if data is not None else None)
    message_id = message.message_id if message is not None else None
    outcome = await worker.press(rt, worker.Press(
        _who(update), worker_name(update), message_id or 0, topic_of(message), data, member))
    await show(update, context, outcome.answer, reply_to=message_id)
    if outcome.prompt is not None:
        await ask(context, update, outcome.prompt, reply_to=message_id)
    if (data is not None and data.action in CARD_ACTIONS and member is Membership.MEMBER
            and outcome.maybe_copy and offers_button(message, query.data)):
        await bring_copy_up_to_date(rt, message.chat.id, message.message_id, data.ticket_id)


# -- replies to our questions ----------------------------------------------------------------

async def prompt_reply(update: Update, context: Context) -> bool:
    """A reply in a group: if it answers one of our questions, take it (and stop there);
    otherwise leave it to the relay and the handlers of group 0."""
    message = update.effective_message
    user = update.effective_user
    replied = message.reply_to_message if message else None
    if replied is None or user is None:
        return False
    outcome = await prompts.answer(context.runtime, prompts.Reply(
        who(update), worker_name(update), replied.message_id, message.text or "",
        topic_of(message)))
    if outcome is None:
        return False
    await show(update, context, outcome.answer, reply_to=message.message_id)
    if outcome.prompt is not None:
        await ask(context, update, outcome.prompt, reply_to=message.message_id)
    raise ApplicationHandlerStop


def register(app: Application) -> None:
    """Before the fallback for unknown callbacks (group 0); the answers to prompts come
    through the router (prompt_reply)."""
    app.add_handler(CallbackQueryHandler(card_button, pattern=f"^{ACTION_PREFIX}"))
