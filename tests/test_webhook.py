"""Webhook mode in one process: the webhook, the database inbox and its dispatchers, /healthz,
/readyz and /metrics, on the real Application and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import event, select, update

from bot.inbox import MAX_ATTEMPTS, Inbox, InboxDispatcher
from bot.views.menu import private_help_text as private_help
from bot.views.menu import welcome_text as welcome
from bot.web import SECRET_HEADER, Webhook, WebServer, derived_secret
from storage.models import InboundUpdate, ProcessedUpdate
from storage.repositories.inbox import InboxRepository
from storage.uow import InboxLease, LeaseLost, UnitOfWork, current_inbox_lease
from tests.harness import BotEnv, Flood
from tests.telegram_fake import TOKEN, User

SECRET = "s3cret-token_for-tests"
RESIDENT = User(410_001, "王<b>五</b>", language_code="zh-hans")
OTHER = User(410_002, "Ann", language_code="en")


@dataclass
class Hooked:
    env: BotEnv
    server: WebServer
    dispatcher: InboxDispatcher
    url: str
    session: aiohttp.ClientSession

    async def post(self, payload: object, *, secret: str | None = SECRET,
                   raw: bytes | None = None) -> int:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        kwargs = {"data": raw} if raw is not None else {"json": payload}
        async with self.session.post(self.url + "/telegram/hook", headers=headers,
                                     **kwargs) as response:
            return response.status

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.url + path) as response:
            return response.status, await response.text()

    async def settled(self, within: float = 10) -> None:
        """Wait until the inbox is empty (every stored update handled)."""
        for _ in range(int(within * 50)):
            async with UnitOfWork(self.env.runtime.db) as uow:
                if await uow.inbox.backlog() == 0 and not self.dispatcher._chats:
                    return
            await asyncio.sleep(0.02)
        raise AssertionError("the inbox was not emptied")


@pytest.fixture
async def hooked(bot: BotEnv) -> AsyncIterator[Hooked]:
    rt = bot.runtime
    dispatcher = InboxDispatcher(bot.app, rt.db, rt.clock, lease=timedelta(seconds=30),
                                 poll=0.05)
    inbox = Inbox(rt.db, rt.clock, bot.app, dispatcher)
    server = WebServer(db=rt.db, clock=rt.clock, health=bot.app.bot_data.health,
                       metrics=rt.metrics,
                       webhook=Webhook(path="/telegram/hook", secret=SECRET,
                                       receive=inbox.receive))
    port = await server.start("127.0.0.1", 0)
    dispatcher.start()
    async with aiohttp.ClientSession() as session:
        yield Hooked(bot, server, dispatcher, f"http://127.0.0.1:{port}", session)
    await dispatcher.stop(5)
    await server.stop()


def sent_to(env: BotEnv, chat_id: int) -> list[str]:
    return [call.params["text"] for call in env.fake.calls_to("sendMessage")
            if call.params["chat_id"] == chat_id]


async def processed(db, update_id: int) -> bool:
    async with UnitOfWork(db) as uow:
        return await uow.updates.is_processed(update_id)


async def test_an_update_is_stored_answered_and_handled(hooked: Hooked, catalogs) -> None:
    start = hooked.env.updates.command(RESIDENT, "/start")
    assert await hooked.post(start.to_dict()) == 200
    await hooked.settled()
    assert sent_to(hooked.env, RESIDENT.id) == [welcome(catalogs["zh_Hans"])]
    assert await processed(hooked.env.runtime.db, start.update_id)


async def test_a_call_without_the_right_secret_is_refused_and_nothing_is_processed(
        hooked: Hooked) -> None:
    start = hooked.env.updates.command(RESIDENT, "/start")
    assert await hooked.post(start.to_dict(), secret=None) == 403
    assert await hooked.post(start.to_dict(), secret="wrong") == 403
    assert await hooked.post(start.to_dict(), secret=SECRET + "x") == 403
    assert await hooked.post(start.to_dict(), secret="") == 403
    await asyncio.sleep(0.2)
    async with UnitOfWork(hooked.env.runtime.db) as uow:
        assert await uow.inbox.backlog() == 0
    assert not await processed(hooked.env.runtime.db, start.update_id)
    assert hooked.env.fake.calls_to("sendMessage") == []
    _, metrics = await hooked.get("/metrics")
    assert 'gridgate_webhook_requests_total{outcome="forbidden"} 4.0' in metrics


async def test_nonsense_is_refused_and_duplicates_are_handled_once(hooked: Hooked,
                                                                   catalogs) -> None:
    assert await hooked.post(None, raw=b"{not json") == 400
    assert await hooked.post({"no": "update_id"}) == 400
    assert await hooked.post({"update_id": True}) == 400
    assert await hooked.post([1, 2]) == 400
    start = hooked.env.updates.command(RESIDENT, "/start")
    for _ in range(3):
        assert await hooked.post(start.to_dict()) == 200
    await hooked.settled()
    # Sent again after it was handled (Telegram did not see the answer, say).
    assert await hooked.post(start.to_dict()) == 200
    await hooked.settled()
    assert sent_to(hooked.env, RESIDENT.id) == [welcome(catalogs["zh_Hans"])]
    _, metrics = await hooked.get("/metrics")
    # Each repeat was either kept once in the inbox or dropped as handled: four calls, one
    # handling, whichever way each repeat went (it depends on how fast the first is handled).
    stored = _value(metrics, 'gridgate_webhook_requests_total{outcome="stored"}')
    kept_once = _value(metrics, 'gridgate_webhook_requests_total{outcome="duplicate"}')
    dropped = _value(metrics, "gridgate_updates_duplicate_total")
    assert stored + kept_once == 4 and stored - dropped == 1
    assert 'gridgate_updates_total{type="message"} 1.0' in metrics
    assert 'gridgate_webhook_requests_total{outcome="invalid"} 4.0' in metrics


def _value(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in the metrics")


@pytest.mark.parametrize("body", [
    b'{"update_id": 18446744073709551616, "message": {}}',
    b'{"update_id": 9223372036854775808}',
    b'{"update_id": 5, "x": NaN}',
    b'{"update_id": 5, "x": -Infinity}',
    b"[" * 100_000 + b"]" * 100_000,
    b"\xff\xfe{",
])
async def test_odd_bodies_get_a_400_not_an_error(hooked: Hooked, body: bytes) -> None:
    async with hooked.session.post(hooked.url + "/telegram/hook", data=body,
                                   headers={SECRET_HEADER: SECRET}) as response:
        assert response.status == 400, await response.text()
    async with hooked.session.post(
            hooked.url + "/telegram/hook", data=b'{"update_id": 5}',
            headers={SECRET_HEADER: SECRET,
                     "Content-Type": "application/json; charset=klingon"}) as response:
        assert response.status == 200  # the charset is not ours to believe: it is UTF-8 JSON


async def test_a_secret_header_that_is_not_utf8_is_refused_like_any_wrong_one(
        hooked: Hooked) -> None:
    host, port = hooked.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = b'{"update_id": 1}'
    writer.write(b"POST /telegram/hook HTTP/1.1\r\nHost: x\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n" + SECRET_HEADER.encode()
                 + b": \xff\xfe\r\nConnection: close\r\n\r\n" + body)
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    assert status_line.split()[1] == b"403"


async def test_a_chats_updates_are_handled_in_update_id_order(bot: BotEnv, catalogs) -> None:
    """Stored out of order (two connections, the later one first), handled in order, by two
    dispatchers (two instances) taking turns on the same inbox."""
    rt = bot.runtime
    start = bot.updates.command(RESIDENT, "/start")
    help_ = bot.updates.command(RESIDENT, "/help")
    other = bot.updates.command(OTHER, "/start")
    language = bot.updates.command(RESIDENT, "/language")
    inbox = Inbox(rt.db, rt.clock, bot.app)
    for update_ in (language, help_, other, start):
        assert await inbox.receive(update_.to_dict())
    first = InboxDispatcher(bot.app, rt.db, rt.clock, lease=timedelta(seconds=30))
    second = InboxDispatcher(bot.app, rt.db, rt.clock, lease=timedelta(seconds=30))
    # Each takes the free chats' oldest updates: never the same chat twice, never a later one.
    for _ in range(20):
        started = await first.run_once() + await second.run_once()
        await asyncio.gather(*first._chats.values(), *second._chats.values())
        if not started:
            break
    zh = catalogs["zh_Hans"]
    assert sent_to(bot, RESIDENT.id) == [welcome(zh), private_help(zh), zh("Choose a language:")]
    assert sent_to(bot, OTHER.id) == [welcome(catalogs["en"])]
    async with UnitOfWork(rt.db) as uow:
        assert await uow.inbox.backlog() == 0
        ids = set((await uow.session.scalars(select(ProcessedUpdate.update_id))).all())
    assert {start.update_id, help_.update_id, language.update_id, other.update_id} <= ids


async def test_only_a_chats_oldest_update_can_be_leased(bot: BotEnv) -> None:
    rt = bot.runtime
    first = bot.updates.command(RESIDENT, "/start")
    later = bot.updates.command(RESIDENT, "/help")
    inbox = Inbox(rt.db, rt.clock, bot.app)
    await inbox.receive(later.to_dict())
    await inbox.receive(first.to_dict())
    now = rt.clock.now()
    async with UnitOfWork(rt.db) as uow:
        assert await uow.inbox.lease(later.update_id, "a", now=now,
                                     until=now + timedelta(seconds=30)) is None
        assert await uow.inbox.lease(first.update_id, "a", now=now,
                                     until=now + timedelta(seconds=30)) is not None
        # Held: nobody else takes it, and the chat's next one waits behind it.
        assert await uow.inbox.lease(first.update_id, "b", now=now,
                                     until=now + timedelta(seconds=30)) is None
        assert await uow.inbox.free_heads(now, limit=10) == []
        await uow.session.commit()


async def test_the_store_does_not_wait_behind_the_updates_that_wait_for_their_turn(
        bot: BotEnv) -> None:
    """Telegram waits for the webhook's answer: with every turn at the database taken and
    twenty updates waiting to be handled, the store goes first."""
    rt = bot.runtime
    inbox = Inbox(rt.db, rt.clock, bot.app)
    stored: list[str] = []

    def label(n: int) -> str:
        return f"update {n}, {len(stored)} stored"

    async with Flood(rt.db, waiting=20, label=label) as flood:
        receiving = asyncio.create_task(
            inbox.receive(bot.updates.command(RESIDENT, "/start").to_dict()))
        receiving.add_done_callback(lambda _: stored.append("stored"))
        await asyncio.sleep(0)  # it queues too, last
        flood.let_one_go()
        assert await receiving
    before = [entry for entry in flood.order if entry.endswith(", 0 stored")]
    assert len(before) <= 1, flood.order


async def test_a_dead_instances_update_is_taken_over_and_handled_once(bot: BotEnv,
                                                                       catalogs) -> None:
    rt = bot.runtime
    start = bot.updates.command(RESIDENT, "/start")
    await Inbox(rt.db, rt.clock, bot.app).receive(start.to_dict())
    now = rt.clock.now()
    async with UnitOfWork(rt.db) as uow:  # an instance leased it, then died
        assert await uow.inbox.lease(start.update_id, "dead", now=now,
                                     until=now + timedelta(seconds=30))
        await uow.session.commit()
    alive = InboxDispatcher(bot.app, rt.db, rt.clock, lease=timedelta(seconds=30))
    assert await alive.run_once() == 0  # still leased
    rt.clock.advance(timedelta(seconds=31))
    assert await alive.run_once() == 1
    await asyncio.gather(*alive._chats.values())
    assert sent_to(bot, RESIDENT.id) == [welcome(catalogs["zh_Hans"])]
    # It had been handled after all before the instance died: taken over, dropped.
    await Inbox(rt.db, rt.clock, bot.app).receive(start.to_dict())
    assert await alive.run_once() == 1
    await asyncio.gather(*alive._chats.values())
    assert len(sent_to(bot, RESIDENT.id)) == 1


async def test_an_update_that_keeps_failing_is_set_aside(bot: BotEnv) -> None:
    rt = bot.runtime
    start = bot.updates.command(RESIDENT, "/start")
    following = bot.updates.command(RESIDENT, "/help")
    inbox = Inbox(rt.db, rt.clock, bot.app)
    await inbox.receive(start.to_dict())
    await inbox.receive(following.to_dict())
    async with UnitOfWork(rt.db) as uow:  # it killed its instance every time so far
        await uow.session.execute(update(InboundUpdate).where(
            InboundUpdate.update_id == start.update_id).values(attempts=MAX_ATTEMPTS))
        await uow.session.commit()
    dispatcher = InboxDispatcher(bot.app, rt.db, rt.clock, lease=timedelta(seconds=30))
    assert await dispatcher.run_once() == 1
    await asyncio.gather(*dispatcher._chats.values())
    texts = sent_to(bot, RESIDENT.id)
    assert len(texts) == 1  # only /help: the chat goes on behind the set-aside update
    assert not await processed(rt.db, start.update_id)
    async with UnitOfWork(rt.db) as uow:  # kept for an operator, out of the chat's line
        assert (await uow.inbox.backlog(), await uow.inbox.set_aside_count()) == (0, 1)


async def test_stopping_refuses_new_updates_and_hands_back_nothing_unfinished(
        hooked: Hooked) -> None:
    hooked.server.stop_accepting()
    start = hooked.env.updates.command(RESIDENT, "/start")
    assert await hooked.post(start.to_dict()) == 503
    assert await hooked.post(start.to_dict(), secret="wrong") == 403
    status, body = await hooked.get("/readyz")
    assert status == 503 and '"shutdown"' in body
    assert await hooked.dispatcher.stop(5)


async def test_health_readiness_and_metrics(hooked: Hooked) -> None:
    env = hooked.env
    status, body = await hooked.get("/healthz")
    assert (status, body) == (200, '{"alive": true}')
    health = env.app.bot_data.health
    health.ticked()
    status, body = await hooked.get("/readyz")
    assert status == 200, body
    for check in ("database", "bot_api", "scheduler", "outbox"):
        assert f'"{check}": {{"ok": true' in body
    assert len(env.fake.calls_to("getMe")) >= 1  # the Bot API check asks Telegram

    await hooked.post(env.updates.command(RESIDENT, "/start").to_dict())
    await hooked.settled()
    status, metrics = await hooked.get("/metrics")
    assert status == 200
    assert 'gridgate_updates_total{type="message"} 1.0' in metrics
    assert 'gridgate_update_handling_seconds_count{type="message"} 1.0' in metrics
    assert 'gridgate_tickets{state="open"} 0.0' in metrics
    assert "gridgate_outbox_backlog 0.0" in metrics
    assert "gridgate_scheduler_lag_seconds 0.0" in metrics
    assert "gridgate_inbox_backlog 0.0" in metrics

    # A scheduler that stopped ticking, and one falling behind, make the instance unready.
    health.last_tick = health.monotonic() - 3600
    status, body = await hooked.get("/readyz")
    assert status == 503 and '"no tick for' in body
    health.ticked()
    async with UnitOfWork(env.runtime.db) as uow:
        await uow.tasks.schedule("digest", env.clock.now() - timedelta(minutes=5),
                                 env.clock.now(), key="late one")
        await uow.session.commit()
    status, body = await hooked.get("/readyz")
    assert status == 503 and '"lag_seconds": 300.0' in body
    # The lag is the deployment's, not this instance's: a balancer asks about the instance.
    status, body = await hooked.get("/readyz?scope=instance")
    assert status == 200 and '"outbox"' not in body, body
    status, metrics = await hooked.get("/metrics")
    assert status == 200
    assert "gridgate_scheduler_lag_seconds 300.0" in metrics


async def test_the_derived_secret_is_stable_and_not_the_token() -> None:
    assert derived_secret(TOKEN) == derived_secret(TOKEN)
    assert TOKEN not in derived_secret(TOKEN) and TOKEN.split(":")[1] not in derived_secret(TOKEN)
    assert derived_secret(TOKEN) != derived_secret(TOKEN + "x")


async def test_a_chat_is_not_stranded_when_taking_its_next_update_fails(
        bot: BotEnv, catalogs, monkeypatch) -> None:
    """The handled update's commit removes it and names the chat's next one; leasing that
    one then fails (the database went away for a moment): the chat is looked at again."""
    rt = bot.runtime
    start = bot.updates.command(RESIDENT, "/start")
    help_ = bot.updates.command(RESIDENT, "/help")
    inbox = Inbox(rt.db, rt.clock, bot.app)
    await inbox.receive(start.to_dict())
    await inbox.receive(help_.to_dict())
    original = InboxRepository.lease
    failures = [ConnectionResetError("the database went away for a moment")]

    async def lease_next_once_failing(self, update_id, token, **kwargs):
        if update_id == help_.update_id and failures:
            raise failures.pop()
        return await original(self, update_id, token, **kwargs)

    monkeypatch.setattr(InboxRepository, "lease", lease_next_once_failing)
    dispatcher = InboxDispatcher(bot.app, rt.db, rt.clock, lease=timedelta(seconds=30))
    assert await dispatcher.run_once() == 1
    await asyncio.gather(*dispatcher._chats.values())
    zh = catalogs["zh_Hans"]
    assert failures == []
    assert sent_to(bot, RESIDENT.id) == [welcome(zh)]  # handled and removed
    assert dispatcher._held == set()
    assert await dispatcher.run_once() == 1  # the next one is free: taken at once
    await asyncio.gather(*dispatcher._chats.values())
    assert sent_to(bot, RESIDENT.id) == [welcome(zh), private_help(zh)]
    async with UnitOfWork(rt.db) as uow:
        assert await uow.inbox.backlog() == 0


async def test_a_handled_update_leaves_the_inbox_in_its_own_commit(bot: BotEnv) -> None:
    """Taken (with the other free chats' oldest updates) in one transaction, handled and
    removed in another: no transaction of the inbox's own per update."""
    rt = bot.runtime
    start = bot.updates.command(RESIDENT, "/start")
    await Inbox(rt.db, rt.clock, bot.app).receive(start.to_dict())
    dispatcher = InboxDispatcher(bot.app, rt.db, rt.clock, lease=timedelta(seconds=30))
    began: list[object] = []

    def begin(conn) -> None:
        began.append(conn)

    event.listen(rt.db.engine.sync_engine, "begin", begin)
    try:
        assert await dispatcher.run_once() == 1
        await asyncio.gather(*dispatcher._chats.values())
    finally:
        event.remove(rt.db.engine.sync_engine, "begin", begin)
    assert len(began) == 2
    assert await processed(rt.db, start.update_id)
    async with UnitOfWork(rt.db) as uow:
        assert await uow.inbox.backlog() == 0


async def test_an_update_stored_by_the_instance_that_serves_it_costs_two_transactions(
        bot: BotEnv, catalogs) -> None:
    """The webhook leases the update in the transaction that stores it and hands it to its
    dispatcher from memory: stored and leased in one transaction, handled and removed in
    another; the dispatcher's look for work is not needed."""
    rt = bot.runtime
    dispatcher = InboxDispatcher(bot.app, rt.db, rt.clock, lease=timedelta(seconds=30))
    inbox = Inbox(rt.db, rt.clock, bot.app, dispatcher)
    start = bot.updates.command(RESIDENT, "/start")
    began: list[object] = []

    def begin(conn) -> None:
        began.append(conn)

    event.listen(rt.db.engine.sync_engine, "begin", begin)
    try:
        assert await inbox.receive(start.to_dict())
        assert list(dispatcher._chats) == [f"chat:{RESIDENT.id}"]
        await asyncio.gather(*dispatcher._chats.values())
    finally:
        event.remove(rt.db.engine.sync_engine, "begin", begin)
    assert len(began) == 2
    assert sent_to(bot, RESIDENT.id) == [welcome(catalogs["zh_Hans"])]
    assert await processed(rt.db, start.update_id)
    async with UnitOfWork(rt.db) as uow:
        assert await uow.inbox.backlog() == 0


async def test_an_update_behind_its_chats_earlier_one_is_not_leased_as_it_is_stored(
        bot: BotEnv, catalogs) -> None:
    """A chat's earlier update still waits (stored, say, by another instance): the new one is
    stored unleased and handled after it, in order."""
    rt = bot.runtime
    earlier = bot.updates.command(RESIDENT, "/start")
    later = bot.updates.command(RESIDENT, "/help")
    await Inbox(rt.db, rt.clock, bot.app).receive(earlier.to_dict())
    dispatcher = InboxDispatcher(bot.app, rt.db, rt.clock, lease=timedelta(seconds=30))
    assert await Inbox(rt.db, rt.clock, bot.app, dispatcher).receive(later.to_dict())
    assert not dispatcher._chats and not dispatcher._reserved
    async with UnitOfWork(rt.db) as uow:
        leases = (await uow.session.execute(select(InboundUpdate.update_id,
                                                   InboundUpdate.lease))).all()
    assert sorted(leases) == [(earlier.update_id, None), (later.update_id, None)]
    assert await dispatcher.run_once() == 1
    await asyncio.gather(*dispatcher._chats.values())
    zh = catalogs["zh_Hans"]
    assert sent_to(bot, RESIDENT.id) == [welcome(zh), private_help(zh)]
    async with UnitOfWork(rt.db) as uow:
        assert await uow.inbox.backlog() == 0


async def test_a_chats_next_update_leased_as_stored_goes_to_the_task_serving_the_chat(
        bot: BotEnv, catalogs) -> None:
    """The chat's task is still finishing its last update (answered, removed) when the next
    one is stored: the webhook leases it and the same task serves it; one at a time."""
    rt = bot.runtime
    dispatcher = InboxDispatcher(bot.app, rt.db, rt.clock, lease=timedelta(seconds=30))
    inbox = Inbox(rt.db, rt.clock, bot.app, dispatcher)
    key = f"chat:{RESIDENT.id}"
    finishing = asyncio.Event()
    serve_one = dispatcher._serve_one
    served: list[int] = []

    async def last_one_then_wait(key_: str, update_id: int, taken: dict):
        served.append(update_id)
        following = await serve_one(key_, update_id, taken)
        if len(served) == 1:
            await finishing.wait()  # the task's end, after the update's commit and answer
        return following

    dispatcher._serve_one = last_one_then_wait  # type: ignore[method-assign]
    start = bot.updates.command(RESIDENT, "/start")
    help_ = bot.updates.command(RESIDENT, "/help")
    assert await inbox.receive(start.to_dict())
    task = dispatcher._chats[key]
    for _ in range(200):
        if await processed(rt.db, start.update_id):
            break
        await asyncio.sleep(0.01)
    assert await inbox.receive(help_.to_dict())
    assert dispatcher._handoff[key][0] == help_.update_id
    assert dispatcher._chats[key] is task
    finishing.set()
    await task
    assert served == [start.update_id, help_.update_id]
    assert not dispatcher._chats and not dispatcher._handoff and not dispatcher._held
    zh = catalogs["zh_Hans"]
    assert sent_to(bot, RESIDENT.id) == [welcome(zh), private_help(zh)]
    async with UnitOfWork(rt.db) as uow:
        assert await uow.inbox.backlog() == 0


async def test_a_chats_update_stored_while_its_earlier_one_is_handled_waits_its_turn(
        bot: BotEnv, catalogs) -> None:
    """Stored while the chat's earlier update is still in the table: not leased then; the
    serving task takes it next, in order."""
    rt = bot.runtime
    dispatcher = InboxDispatcher(bot.app, rt.db, rt.clock, lease=timedelta(seconds=30))
    inbox = Inbox(rt.db, rt.clock, bot.app, dispatcher)
    start = bot.updates.command(RESIDENT, "/start")
    help_ = bot.updates.command(RESIDENT, "/help")
    assert await inbox.receive(start.to_dict())
    assert await inbox.receive(help_.to_dict())  # before the first one's task has run
    assert not dispatcher._handoff
    await asyncio.gather(*dispatcher._chats.values())
    zh = catalogs["zh_Hans"]
    assert sent_to(bot, RESIDENT.id) == [welcome(zh), private_help(zh)]
    async with UnitOfWork(rt.db) as uow:
        assert await uow.inbox.backlog() == 0


async def test_a_full_dispatcher_leaves_a_new_update_in_the_table(bot: BotEnv) -> None:
    """No free slot: the update is stored unleased, for whichever instance has room."""
    rt = bot.runtime
    dispatcher = InboxDispatcher(bot.app, rt.db, rt.clock, lease=timedelta(seconds=30),
                                 slots=1)
    assert dispatcher.reserve("chat:1")
    start = bot.updates.command(RESIDENT, "/start")
    assert await Inbox(rt.db, rt.clock, bot.app, dispatcher).receive(start.to_dict())
    assert not dispatcher._chats
    dispatcher.unreserve("chat:1")
    async with UnitOfWork(rt.db) as uow:
        assert await uow.session.scalar(select(InboundUpdate.lease)) is None
    assert await dispatcher.run_once() == 1
    await asyncio.gather(*dispatcher._chats.values())
    assert await processed(rt.db, start.update_id)


async def test_reported_failures_are_retried_however_many_not_set_aside(
        bot: BotEnv, catalogs, monkeypatch) -> None:
    rt = bot.runtime
    start = bot.updates.command(RESIDENT, "/start")
    await Inbox(rt.db, rt.clock, bot.app).receive(start.to_dict())
    processor = bot.app.update_processor
    original = processor.process_update
    failures = [OSError("no database")] * (MAX_ATTEMPTS + 3)

    async def flaky(update, coroutine):
        if failures:
            coroutine.close()
            raise failures.pop()
        return await original(update, coroutine)

    monkeypatch.setattr(processor, "process_update", flaky)
    dispatcher = InboxDispatcher(bot.app, rt.db, rt.clock, lease=timedelta(seconds=30))
    for _ in range(MAX_ATTEMPTS + 4):
        rt.clock.advance(timedelta(seconds=61))  # past any pause
        await dispatcher.run_once()
        await asyncio.gather(*dispatcher._chats.values())
    assert failures == []
    assert sent_to(bot, RESIDENT.id) == [welcome(catalogs["zh_Hans"])]
    async with UnitOfWork(rt.db) as uow:
        assert (await uow.inbox.backlog(), await uow.inbox.set_aside_count()) == (0, 0)


async def test_a_lease_lost_meanwhile_stops_the_commit(bot: BotEnv) -> None:
    """An instance whose lease lapsed (a stalled loop, a database that did not answer its
    heartbeat) must not commit an update another instance has taken over."""
    rt = bot.runtime
    start = bot.updates.command(RESIDENT, "/start")
    await Inbox(rt.db, rt.clock, bot.app).receive(start.to_dict())
    now = rt.clock.now()
    async with UnitOfWork(rt.db) as uow:  # the other instance holds it now
        assert await uow.inbox.lease(start.update_id, "other", now=now,
                                     until=now + timedelta(seconds=30))
        await uow.session.commit()
    token = current_inbox_lease.set(InboxLease("mine, lapsed", f"chat:{RESIDENT.id}"))
    try:
        await bot.send(start)
    finally:
        current_inbox_lease.reset(token)
    assert [type(e) for e in bot.errors] == [LeaseLost]
    bot.errors.clear()
    assert sent_to(bot, RESIDENT.id) == []
    assert not await processed(rt.db, start.update_id)


async def test_stopping_hands_back_an_update_still_in_hand(bot: BotEnv, catalogs,
                                                           monkeypatch) -> None:
    rt = bot.runtime
    start = bot.updates.command(RESIDENT, "/start")
    await Inbox(rt.db, rt.clock, bot.app).receive(start.to_dict())
    stuck = asyncio.Event()
    processor = bot.app.update_processor
    original = processor.process_update

    async def slow(update, coroutine):
        stuck.set()
        try:
            await asyncio.sleep(3600)  # a handler that does not finish in the shutdown time
        finally:
            coroutine.close()

    monkeypatch.setattr(processor, "process_update", slow)
    stopping = InboxDispatcher(bot.app, rt.db, rt.clock, lease=timedelta(seconds=30))
    assert await stopping.run_once() == 1
    await stuck.wait()
    assert not await stopping.stop(0.1)  # not everything finished
    monkeypatch.setattr(processor, "process_update", original)
    other = InboxDispatcher(bot.app, rt.db, rt.clock, lease=timedelta(seconds=30))
    assert await other.run_once() == 1  # at once: handed back, not left to run out
    await asyncio.gather(*other._chats.values())
    assert sent_to(bot, RESIDENT.id) == [welcome(catalogs["zh_Hans"])]
