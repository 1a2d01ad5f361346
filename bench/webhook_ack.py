"""How fast the webhook answers Telegram: the time from POSTing an update to the 200, which is
one insert into the inbox (handling happens afterwards, by the dispatcher).

    python bench/webhook_ack.py [--updates 2000] [--concurrency 1,10,40]
                                 [--backend sqlite,postgresql]

Each backend runs the real WebServer with the real Inbox on a fresh database (SQLite in a
temporary folder; PostgreSQL in a throwaway schema of the machine's server, as the tests use),
with no dispatcher, so only the acknowledgement is measured. Telegram keeps up to
``max_connections`` (40 by default) calls open at once: the concurrency levels say how the
answer time grows with them.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.clock import SystemClock
from bot.config import parse_config
from bot.health import Health
from bot.inbox import Inbox
from bot.metrics import Metrics
from bot.web import SECRET_HEADER, Webhook, WebServer
from storage import migrate
from tests.conftest import fresh_database

SECRET = "bench"
TOKEN = "123456:bench"


class _App:
    """Inbox.receive reads the update with the bot (for its chat); nothing else is needed."""

    bot = None


def update(update_id: int) -> dict:
    chat = 1000 + update_id % 500
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": 1_700_000_000, "text": "/start",
        "chat": {"id": chat, "type": "private", "first_name": "x"},
        "from": {"id": chat, "is_bot": False, "first_name": "x"}}}


async def measure(db, updates: int, concurrency: int, first_id: int) -> list[float]:
    clock = SystemClock()
    config = parse_config({"telegram": {"token": TOKEN}})
    inbox = Inbox(db, clock, _App())  # type: ignore[arg-type]
    server = WebServer(db=db, clock=clock, health=Health(db, clock, config), metrics=Metrics(),
                       webhook=Webhook("/hook", SECRET, inbox.receive))
    port = await server.start("127.0.0.1", 0)
    times: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(updates):
        queue.put_nowait(first_id + i)

    async def connection(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            update_id = queue.get_nowait()
            started = time.perf_counter()
            async with session.post(f"http://127.0.0.1:{port}/hook", json=update(update_id),
                                    headers={SECRET_HEADER: SECRET}) as response:
                assert response.status == 200, response.status
            times.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(connection(session) for _ in range(concurrency)))
    await server.stop()
    return times


def report(backend: str, concurrency: int, times: list[float], wall: float) -> None:
    ms = sorted(t * 1000 for t in times)

    def pct(p: float) -> float:
        return ms[min(len(ms) - 1, int(p * len(ms)))]

    print(f"{backend:10} concurrency {concurrency:3}: {len(ms)} updates, "
          f"{len(ms) / wall:7.0f}/s, p50 {statistics.median(ms):6.2f} ms, "
          f"p95 {pct(0.95):6.2f} ms, p99 {pct(0.99):6.2f} ms")


async def run(backend: str, updates: int, levels: list[int]) -> None:
    async def on(db) -> None:
        await migrate.upgrade(db)
        first = 1
        for concurrency in levels:
            started = time.perf_counter()
            times = await measure(db, updates, concurrency, first)
            report(backend, concurrency, times, time.perf_counter() - started)
            first += updates

    async with fresh_database(backend) as db:
        await on(db)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--concurrency", default="1,10,40")
    parser.add_argument("--backend", default="sqlite,postgresql")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    for backend in args.backend.split(","):
        asyncio.run(run(backend, args.updates, levels))


if __name__ == "__main__":
    main()
