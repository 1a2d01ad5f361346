"""Telegram's sending limits, kept in memory on a monotonic clock.

Each limit is a sliding window — at most ``limit`` calls in any ``period`` seconds — because
that is how Telegram counts ("20 messages per minute per group"): a token bucket would let the
21st message out three seconds after the first twenty. A slot is *reserved* when a row is
claimed, *taken* when the call is made and *stamped* with the time of its answer, so a slow
batch never lets the next window start early. Telegram counts a call when it arrives, at some
moment between the two, later for one call than for another; counted from its answer, a call
is never counted too early, whatever the network's jitter (counted from when it was made, the
31st call of a bulk send could arrive within the second of the first: bench/bulk_delivery.py
saw it against the sandbox's flood control). That costs a round trip per window.

The limits are per process: two senders on one database each keep their own count.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from bot.config_types import DeliverySettings

GROUP_PERIOD = 60.0
PRIVATE_PERIOD = 1.0
GLOBAL_PERIOD = 1.0
# Two chats flooded within this many seconds: the 429 is taken as Telegram's global limit.
GLOBAL_FLOOD_WINDOW = 1.0
# The overall cap is claimed this far ahead: rows are leased and prepared (database work)
# while the slots they will take are still held, and each call then waits in memory for its
# slot (``global_wait``). Otherwise the claim's and the preparation's latency would be added
# to every second of a bulk send. They take milliseconds, but on a busy machine SQLite's one
# writer made them late at 0.2 s.
GLOBAL_AHEAD = 0.5


class Window:
    __slots__ = ("flying", "limit", "period", "reserved", "stamps")

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self.stamps: deque[float] = deque()  # answered calls
        self.reserved = 0  # claimed, not made yet
        self.flying = 0  # made, not answered yet

    def _prune(self, now: float) -> None:
        while self.stamps and self.stamps[0] <= now - self.period:
            self.stamps.popleft()

    def free(self, now: float, ahead: float = 0.0) -> bool:
        """A slot is free now, or will be within ``ahead`` seconds."""
        self._prune(now)
        leaving = 0
        for stamp in self.stamps:
            if stamp > now + ahead - self.period:
                break
            leaving += 1
        return len(self.stamps) - leaving + self.reserved + self.flying < self.limit

    def take_wait(self, now: float) -> float:
        """Seconds until one more call may be made, reservations aside (the caller holds
        one of them)."""
        self._prune(now)
        index = len(self.stamps) + self.flying - self.limit
        if index < 0:
            return 0.0
        if index < len(self.stamps):
            return self.stamps[index] + self.period - now
        return 0.01  # only calls under way hold it: look again shortly

    def ready_in(self, now: float) -> float:
        """Seconds until a slot frees (0 if one is free, or if only reservations hold it)."""
        if self.free(now):
            return 0.0
        index = len(self.stamps) + self.reserved + self.flying - self.limit
        if index < len(self.stamps):
            return max(0.0, self.stamps[index] + self.period - now)
        return 0.0

    def idle(self, now: float) -> bool:
        self._prune(now)
        return not self.stamps and not self.reserved and not self.flying


class RateLimiter:
    def __init__(self, settings: DeliverySettings, monotonic: Callable[[], float]) -> None:
        self._settings = settings
        self._now = monotonic
        self._global = Window(settings.global_per_second, GLOBAL_PERIOD)
        self._chats: dict[int, Window] = {}
        self._paused: dict[int, float] = {}
        self._paused_all_until = 0.0
        self._last_flood: tuple[int, float] | None = None

    def _window(self, chat_id: int) -> Window:
        window = self._chats.get(chat_id)
        if window is None:
            if chat_id < 0:  # groups, supergroups (and channels)
                window = Window(self._settings.per_group_per_minute, GROUP_PERIOD)
            else:
                window = Window(self._settings.per_private_chat_per_second, PRIVATE_PERIOD)
            self._chats[chat_id] = window
        return window

    def _paused_for(self, chat_id: int, now: float) -> bool:
        until = self._paused.get(chat_id)
        if until is not None and until <= now:
            del self._paused[chat_id]
            return False
        return until is not None

    def can_send_any(self) -> bool:
        """A claim may find room: nothing pauses everything, and the overall cap has a slot
        now or within GLOBAL_AHEAD."""
        now = self._now()
        return now >= self._paused_all_until and self._global.free(now, GLOBAL_AHEAD)

    def claim_wait(self) -> float:
        """Seconds until can_send_any() may hold again (0: it may now)."""
        now = self._now()
        if now < self._paused_all_until:
            return self._paused_all_until - now
        if self._global.free(now, GLOBAL_AHEAD):
            return 0.0
        return max(0.0, self._global.ready_in(now) - GLOBAL_AHEAD)

    def global_wait(self) -> float:
        """Seconds until a reserved call may be made under the overall cap (reserved ahead,
        its slot may still be held for a moment)."""
        return self._global.take_wait(self._now())

    def reserve(self, chat_id: int) -> bool:
        """Take a slot for one call to this chat, if every limit allows it now."""
        now = self._now()
        if now < self._paused_all_until or self._paused_for(chat_id, now):
            return False
        window = self._window(chat_id)
        if not (self._global.free(now, GLOBAL_AHEAD) and window.free(now)):
            return False
        self._global.reserved += 1
        window.reserved += 1
        return True

    def stamp(self, chat_id: int, *, reserved: bool = True) -> None:
        """A call is being made now (the one reserved, unless ``reserved`` is False: a call
        repeated at once, such as after a group migrated); ``answered`` must follow."""
        window = self._window(chat_id)
        for w in (self._global, window):
            if reserved:
                w.reserved = max(0, w.reserved - 1)
            w.flying += 1

    def answered(self, chat_id: int) -> None:
        """The call made to this chat is over (answered, failed or abandoned): it counts
        from now."""
        now = self._now()
        window = self._window(chat_id)
        for w in (self._global, window):
            w.flying = max(0, w.flying - 1)
            w.stamps.append(now)

    def release(self, chat_id: int) -> None:
        """The reserved call will not be made."""
        window = self._window(chat_id)
        for w in (self._global, window):
            w.reserved = max(0, w.reserved - 1)

    def flood(self, chat_id: int, seconds: float) -> bool:
        """Telegram said RetryAfter for this chat: pause it. Telegram does not say whether the
        limit was the chat's or the bot's overall one; when two different chats are told so
        within a second, it is taken as the global limit and everything pauses. Returns
        whether everything was paused."""
        now = self._now()
        until = now + seconds
        self._paused[chat_id] = max(self._paused.get(chat_id, 0.0), until)
        previous, self._last_flood = self._last_flood, (chat_id, now)
        if previous and previous[0] != chat_id and now - previous[1] <= GLOBAL_FLOOD_WINDOW:
            self._paused_all_until = max(self._paused_all_until, until)
            return True
        return False

    def held_chats(self, at_most: int = 1000) -> list[int]:
        """Chats that cannot take a call now: the claim query leaves their rows alone, so a
        long backlog in one of them never crowds other chats out of a batch."""
        now = self._now()
        held = [c for c in list(self._paused) if self._paused_for(c, now)]
        for chat_id, window in list(self._chats.items()):
            if window.idle(now):
                del self._chats[chat_id]
            elif not window.free(now):
                held.append(chat_id)
        return held[:at_most]

    def wait_time(self) -> float:
        """Seconds until a held-back call could go (for drain); 0 if one could go now."""
        now = self._now()
        if now < self._paused_all_until:
            return self._paused_all_until - now
        waits = [self._global.ready_in(now)]
        if waits[0] > 0:
            return waits[0]
        waits = [w.ready_in(now) for w in self._chats.values()]
        waits += [until - now for until in self._paused.values() if until > now]
        positive = [w for w in waits if w > 0]
        return min(positive) if positive else 0.0
