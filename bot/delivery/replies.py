"""What the bot says while it handles an update — the answers sent straight after the commit —
must reach the person whatever Telegram answers first.

Every Bot API call of the Application goes through PTB's rate limiter hook (``ExtBot``'s
``rate_limiter``), so this one place covers every handler, its ``Reply`` and the error
handler, instead of each catching errors of its own:

* A 429 (``RetryAfter``) is waited out and the call made again. Telegram allows about one
  message a second in a private chat, in short bursts: a resident who taps quickly, or types
  wrong answers a second apart, is told to wait a few seconds, and the answer (the next
  question, the explanation) must still come. The chat's next update waits meanwhile (the
  update processor runs a chat's updates one at a time), so answers keep their order.
* Answering a button press (``answerCallbackQuery``) is best effort. Telegram forgets a press
  after some seconds ("query is too old"): after a wait, or when another instance took the
  update over from one that died. Its failure must not stop the reply that follows, so it is
  logged and the call returns False. A press is answered once: a second answer (the error
  handler's, after the handler's) is not even tried, and returns False too.

Calls made outside the handling of an update pass through untouched: the outbox sender keeps
its own limits and turns a 429 into a later attempt of its row (bot.delivery.sender), and a
timer's work is an outbox row too.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram.error import RetryAfter, TelegramError
from telegram.ext import BaseRateLimiter

from bot.delivery.calls import describe, retry_after_seconds
from storage.uow import current_update

log = logging.getLogger(__name__)

ANSWER_PRESS = "answerCallbackQuery"
# How long one call waits out 429s in all before its error goes to the error handler. Telegram
# asks a flooded private chat for a few seconds; this leaves room for several such waits, and
# bounds how long one chat's update holds a worker when Telegram asks for far more.
MAX_WAIT = 60.0
# A press is forgotten by Telegram within about a quarter of a minute: waiting longer for its
# answer only holds back the reply.
MAX_ANSWER_WAIT = 5.0
# Presses remembered as answered; a press is answered within its own update, so a few
# hundred cover every update in flight.
REMEMBERED_PRESSES = 1024

Result = bool | dict[str, Any] | list[dict[str, Any]]


class InlineReplies(BaseRateLimiter[None]):
    """``ApplicationBuilder().rate_limiter(InlineReplies())``; ``sleep`` is for tests."""

    def __init__(self, *, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 max_wait: float = MAX_WAIT, max_answer_wait: float = MAX_ANSWER_WAIT) -> None:
        self.sleep = sleep
        self._max_wait = max_wait
        self._max_answer_wait = max_answer_wait
        self._answered: OrderedDict[str, None] = OrderedDict()

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def process_request(self, callback: Callable[..., Coroutine[Any, Any, Result]],
                              args: Any, kwargs: dict[str, Any], endpoint: str,
                              data: dict[str, Any], rate_limit_args: None) -> Result:
        if current_update.get() is None:
            return await callback(*args, **kwargs)
        if endpoint != ANSWER_PRESS:
            return await self._waiting(callback, args, kwargs, endpoint, self._max_wait)
        query_id = str(data.get("callback_query_id"))
        if query_id in self._answered:
            log.info("press answered already; not answered again")
            return False
        self._answered[query_id] = None
        while len(self._answered) > REMEMBERED_PRESSES:
            self._answered.popitem(last=False)
        try:
            return await self._waiting(callback, args, kwargs, endpoint, self._max_answer_wait)
        except TelegramError as exc:
            # Most often "query is too old": the reply goes on without the answer.
            log.warning("could not answer the press: %s", describe(exc))
            return False

    async def _waiting(self, callback: Callable[..., Coroutine[Any, Any, Result]], args: Any,
                       kwargs: dict[str, Any], endpoint: str, limit: float) -> Result:
        waited = 0.0
        while True:
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                seconds = retry_after_seconds(exc)
                if waited + seconds > limit:
                    raise
                log.warning("flood control: %s waits %.0fs and is made again", endpoint,
                            seconds)
                # A moment more than asked: Telegram counts whole seconds.
                await self.sleep(seconds + 0.1)
                waited += seconds
