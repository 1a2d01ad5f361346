"""`python -m bot ARGS` with the database work counted, for bench/http_conversation.py:

    python bench/sql_counter.py COUNTS_FILE ARGS…

Runs gridgate's command line exactly as `python -m bot ARGS` would, in this process, after
listening on SQLAlchemy's Engine class for every transaction begun and every statement sent to
the database (all engines: the handlers', the outbox sender's, the scheduler's, the inbox's).
On SIGUSR1 it writes the counts so far to COUNTS_FILE as JSON, so the benchmark can take them
before and after its timed part. The listeners cost a few microseconds a statement, against
milliseconds an update.

It also times the scheduler: `scheduler.ticker.Ticker.tick` (what the application's JobQueue
runs every `[scheduler] tick_interval`) and `Ticker._run` (one task, in its own transaction)
are wrapped, before the application is built, to note when each tick began and ended and how
many tasks it ran, and when each task ended (wall-clock seconds, `time.time()`); they go into
the same file as "ticks": [[began, ended, ran], ...] and "tasks": [ended, ...]. A tick
APScheduler skips (the previous one still running, `max_instances` 1) leaves a longer gap
between two ends. Nothing else changes.
"""

from __future__ import annotations

import json
import runpy
import signal
import sys
import time
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine

COUNTS = {"transactions": 0, "statements": 0}
TICKS: list[list[float]] = []  # [began, ended, tasks run] of every completed tick
TASKS: list[float] = []  # when each task run by a tick ended (time.time(), as the ticks)


def _began(conn: object) -> None:
    COUNTS["transactions"] += 1


def _statement(conn, cursor, statement, parameters, context, executemany) -> None:
    COUNTS["statements"] += 1


def _time_ticks() -> None:
    from scheduler.ticker import Ticker

    tick, run = Ticker.tick, Ticker._run

    async def timed_tick(self: Ticker) -> int:
        began = time.time()
        ran = await tick(self)
        TICKS.append([began, time.time(), ran])
        return ran

    async def timed_run(self: Ticker, task_id: int, token: str) -> int:
        try:
            return await run(self, task_id, token)
        finally:
            TASKS.append(time.time())

    Ticker.tick, Ticker._run = timed_tick, timed_run  # before build_application binds .tick


def main() -> None:
    target = Path(sys.argv[1])
    _time_ticks()
    event.listen(Engine, "begin", _began)
    event.listen(Engine, "before_cursor_execute", _statement)

    def write(signum: int, frame: object) -> None:
        partial = target.with_suffix(".partial")
        partial.write_text(json.dumps({**COUNTS, "ticks": TICKS, "tasks": TASKS}))
        partial.replace(target)

    signal.signal(signal.SIGUSR1, write)
    sys.argv = ["bot", *sys.argv[2:]]
    runpy.run_module("bot", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
