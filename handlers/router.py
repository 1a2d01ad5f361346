"""One router for conversations: the person's draft flow decides who takes a message.

A private message goes to the conversation the person is in (their newest draft: a report, a
form, a booking, a comment, an answer about a ticket) or, for a reply about a ticket, to the
relay: ``bot.actions.conversations.take`` decides and answers in one unit of work; this door
only reads the message into plain values and shows the answer. What no conversation takes
goes on to the commands and the fallback in handler group 0. In groups, an answer to one of
the bot's prompts (a transfer reason, a check-up report) goes to its prompt; any other
message to the relay.

Each group taker returns whether it took the message; a taker (or the conversation) that
fails hands the error to the error handlers and the update ends there (it is not "not
understood" after the apology).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from telegram import Update
from telegram.ext import ApplicationHandlerStop, MessageHandler, filters

from bot.actions import conversations
from bot.context import App, Context
from handlers.common import command_of, who
from handlers.enterprise import form_answer
from handlers.relay import said_of
from handlers.reply import show
from handlers.report import content

Taker = Callable[[Update, Context], Awaitable[bool]]

_NEW_MESSAGES = filters.UpdateType.MESSAGE
PRIVATE_MESSAGES = filters.ChatType.PRIVATE & _NEW_MESSAGES
GROUP_MESSAGES = filters.ChatType.GROUPS & _NEW_MESSAGES
# What the relay passes on from a group: no commands, no service messages, and not the
# channel posts Telegram forwards into a linked discussion group by itself.
RELAYED_FROM_GROUPS = (GROUP_MESSAGES & ~filters.COMMAND & ~filters.StatusUpdate.ALL
                       & ~filters.IS_AUTOMATIC_FORWARD)

# Before group 0, where the commands and the fallback are.
ROUTER_GROUP = -1


@dataclass(frozen=True)
class Router:
    group_prompts: Sequence[Taker]  # answers to the bot's prompts in a group, in order
    relay_group: Taker             # what workers say in a group about a ticket

    async def private(self, update: Update, context: Context) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None:
            return
        command = command_of(message)
        if command not in (None, "cancel"):
            return  # other commands keep their meaning in the middle of a conversation
        said = conversations.Message(
            cancel=command == "cancel", said=said_of(message, context.bot.id),
            report=content(message), form=form_answer(message), text=message.text)
        try:
            answer = await conversations.take(context.runtime, who(update), said)
            if answer is None:
                return  # no conversation's: group 0 has it
            await show(update, context, answer)
        except Exception as exc:  # handed to the error handlers, and the update ends
            await context.application.process_error(update, exc)
        raise ApplicationHandlerStop

    async def group(self, update: Update, context: Context) -> None:
        takers = list(self.group_prompts)
        if RELAYED_FROM_GROUPS.check_update(update):
            takers.append(self.relay_group)
        await _first_taker(takers, update, context)

    def register(self, app: App) -> None:
        app.add_handler(MessageHandler(PRIVATE_MESSAGES, self.private), group=ROUTER_GROUP)
        app.add_handler(MessageHandler(GROUP_MESSAGES, self.group), group=ROUTER_GROUP)


async def _first_taker(takers: Sequence[Taker], update: Update, context: Context) -> None:
    for take in takers:
        try:
            taken = await take(update, context)
        except ApplicationHandlerStop:
            raise
        except Exception as exc:  # handed to the error handlers, and the update ends
            await context.application.process_error(update, exc)
            raise ApplicationHandlerStop from None
        if taken:
            raise ApplicationHandlerStop
