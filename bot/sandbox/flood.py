"""Telegram's flood control for a bot's messages, for the sandbox (off unless asked for).

What Telegram documents (Bots FAQ, "My bot is hitting limits, how do I avoid this?"): in one
chat, avoid more than one message per second — short bursts above that are allowed, but
eventually 429s come; in a group, no more than 20 messages per minute; in bulk to many
users, no more than about 30 messages per second. Beyond them the Bot API answers
``429 {"ok": false, "error_code": 429, "description": "Too Many Requests: retry after N",
"parameters": {"retry_after": N}}`` with N whole seconds, and the message is not sent.

How the sandbox reads them (Telegram does not publish its algorithm; these are the strict
readings of its words, so a sender that passes here keeps to what Telegram asks):

* **overall**: at most ``per_second`` (30) messages in *any* one second, all chats together
  (a sliding window, not a bucket that refills: 30 at the end of one second and 30 at the
  start of the next would be 60 within a second);
* **a group** (any chat with a negative id: groups, supergroups, channels): at most
  ``per_group_per_minute`` (20) in any 60 seconds, likewise a sliding window, so the 21st
  waits until the first is a minute old;
* **a private chat**: a token bucket of ``private_burst`` (3) messages refilling at
  ``private_per_second`` (1) a second: a short burst (a reply and a follow-up or two) goes
  through, a steady stream is held to one a second.

A call that sends messages counts once, whatever it sends (an album, copyMessages): the
limits are on requests. It counts from the moment it arrives (when the sandbox reads it,
before checking it), as Telegram can only count calls when they reach it. Methods that send
nothing (edits, deletions, answers to callback queries, chat actions, getUpdates…) are not
limited. A call refused with a 429 counts towards nothing; one refused for another reason (a
user who blocked the bot) counts as made. N is the wait until the call would be taken,
rounded up to whole seconds (at least 1).
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimits:
    """The limits a sandbox enforces; the defaults are Telegram's (see the module)."""

    per_second: int = 30
    per_group_per_minute: int = 20
    private_per_second: float = 1.0
    private_burst: int = 3


def sends_messages(method: str) -> bool:
    """A method that posts messages in a chat (and so is flood-limited)."""
    return (method.startswith(("send", "copyMessage", "forwardMessage"))
            and method != "sendChatAction")


class _Window:
    """At most ``limit`` events in any ``period`` seconds."""

    __slots__ = ("limit", "period", "stamps")

    def __init__(self, limit: int, period: float) -> None:
        self.limit, self.period = limit, period
        self.stamps: deque[float] = deque()

    def wait(self, now: float) -> float:
        while self.stamps and self.stamps[0] <= now - self.period:
            self.stamps.popleft()
        if len(self.stamps) < self.limit:
            return 0.0
        return self.stamps[len(self.stamps) - self.limit] + self.period - now

    def take(self, now: float) -> None:
        self.stamps.append(now)


class _Bucket:
    """``burst`` tokens, refilled at ``rate`` a second; one a message."""

    __slots__ = ("at", "burst", "rate", "tokens")

    def __init__(self, burst: int, rate: float, now: float) -> None:
        self.burst, self.rate, self.tokens, self.at = burst, rate, float(burst), now

    def wait(self, now: float) -> float:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self.tokens -= 1


class FloodControl:
    """The state of the limits: which calls were taken when, and the 429s given."""

    def __init__(self, limits: RateLimits, monotonic: Callable[[], float] = time.monotonic):
        self.limits = limits
        self._now = monotonic
        self._overall = _Window(limits.per_second, 1.0)
        self._groups: dict[int | str, _Window] = {}
        self._private: dict[int, _Bucket] = {}
        # 429s given, by the limit that refused: "overall", "group" or "private".
        self.refused: Counter[str] = Counter()

    def admit(self, chat_id: object, now: float | None = None) -> int | None:
        """Take a message for ``chat_id`` that arrived at ``now`` (monotonic; default: now):
        None if every limit allows it, else the retry_after of Telegram's 429 (the refusal is
        counted)."""
        now = self._now() if now is None else now
        chat = _chat_key(chat_id)
        own: _Window | _Bucket
        if isinstance(chat, int) and chat > 0:
            own = self._private.get(chat) or _Bucket(self.limits.private_burst,
                                                     self.limits.private_per_second, now)
            kind = "private"
        else:
            own = self._groups.get(chat) or _Window(self.limits.per_group_per_minute, 60.0)
            kind = "group"
        waits = {"overall": self._overall.wait(now), kind: own.wait(now)}
        worst = max(waits, key=waits.__getitem__)
        if waits[worst] > 0:
            self.refused[worst] += 1
            return max(1, math.ceil(waits[worst]))
        self._overall.take(now)
        own.take(now)
        if kind == "private":
            self._private[chat] = own  # type: ignore[index,assignment]
        else:
            self._groups[chat] = own  # type: ignore[assignment]
        self._forget_idle(now)
        return None

    def _forget_idle(self, now: float) -> None:
        # A long-running sandbox writes to many chats: drop the state that no longer limits.
        if len(self._private) + len(self._groups) < 4096:
            return
        self._private = {c: b for c, b in self._private.items() if b.wait(now) > 0
                         or b.tokens < b.burst}
        self._groups = {c: w for c, w in self._groups.items() if w.wait(now) > 0 or w.stamps}

    @property
    def refusals(self) -> int:
        """How many 429s were given."""
        return sum(self.refused.values())


def _chat_key(chat_id: object) -> int | str:
    if isinstance(chat_id, int):
        return chat_id
    text = str(chat_id)
    try:
        return int(text)
    except ValueError:
        return text.lower()  # "@channel": a public group or channel
