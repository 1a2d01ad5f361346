"""`python -m bot ARGS` with the database work counted, for bench/http_conversation.py:

    python bench/sql_counter.py COUNTS_FILE ARGS…

Runs gridgate's command line exactly as `python -m bot ARGS` would, in this process, after
listening on SQLAlchemy's Engine class for every transaction begun and every statement sent to
the database (all engines: the handlers', the outbox sender's, the scheduler's, the inbox's).
On SIGUSR1 it writes the counts so far to COUNTS_FILE as JSON, so the benchmark can take them
before and after its timed part. The listeners cost a few microseconds a statement, against
milliseconds an update.
"""

from __future__ import annotations

import json
import runpy
import signal
import sys
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine

COUNTS = {"transactions": 0, "statements": 0}


def _began(conn: object) -> None:
    COUNTS["transactions"] += 1


def _statement(conn, cursor, statement, parameters, context, executemany) -> None:
    COUNTS["statements"] += 1


def main() -> None:
    target = Path(sys.argv[1])
    event.listen(Engine, "begin", _began)
    event.listen(Engine, "before_cursor_execute", _statement)

    def write(signum: int, frame: object) -> None:
        partial = target.with_suffix(".partial")
        partial.write_text(json.dumps(COUNTS))
        partial.replace(target)

    signal.signal(signal.SIGUSR1, write)
    sys.argv = ["bot", *sys.argv[2:]]
    runpy.run_module("bot", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
