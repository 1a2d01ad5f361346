"""The typed context every Telegram handler and job gets (PTB's ``ContextTypes``), instead
of string keys into ``bot_data``: the app-wide objects of one Application."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from telegram.ext import Application, CallbackContext, ContextTypes, ExtBot

from bot.delivery.web import Hub
from bot.runtime import Runtime

if TYPE_CHECKING:
    from bot.delivery import OutboxSender
    from bot.health import Health


@dataclass
class BotData:
    """Built empty by PTB, filled once by ``bot.app.build_application``."""

    runtime: Runtime | None = None
    health: Health | None = None
    tick: Callable[[], Awaitable[int]] | None = None      # runs the due scheduled tasks
    sender_factory: Callable[[], OutboxSender] | None = None
    sender: OutboxSender | None = None                    # the running outbox sender
    caches: dict[str, Any] = field(default_factory=dict)  # per process, empty at start
    # Wakes the web chat's open pages when the outbox adds to a web resident's conversation.
    web_pages: Hub = field(default_factory=Hub)

    def outbox_sender(self) -> OutboxSender:
        """The running sender (it keeps this process's count of Telegram's limits); the
        tests and a process that has not started one get one made for the occasion."""
        return self.sender or self.sender_factory()


class Context(CallbackContext[ExtBot, dict, dict, BotData]):
    @property
    def runtime(self) -> Runtime:
        return self.bot_data.runtime


CONTEXT_TYPES = ContextTypes(context=Context, bot_data=BotData)
App = Application[ExtBot, Context, dict, dict, BotData, Any]
