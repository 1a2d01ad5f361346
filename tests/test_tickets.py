"""The ticket life cycle on both databases: numbers, routing, race-safe claims, transitions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm.attributes import set_committed_value

from bot.clock import FakeClock
from bot.services import routing, tickets
from bot.services.tickets import NewReport, Refusal, TicketRefused
from bot.startup import prepare
from storage.db import Database
from storage.models import GroupChat
from storage.uow import UnitOfWork
from tests.harness import make_config

GRID = "SFQ-DH-01-G1"
INSIDE = (31.23, 121.42)  # a point in GRID


@pytest.fixture
async def world(db: Database):
    config = make_config()
    clock = FakeClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))  # Monday 10:00 in Shanghai
    await prepare(db, config, clock)
    return db, config, clock


async def _report(db: Database, config, clock, *, category: str = "sanitation",
                  text: str = "楼道里堆满了垃圾，已经一周没人清理", user: int = 501,
                  at: tuple[float, float] | None = INSIDE, grid: str = GRID) -> int:
    async with UnitOfWork(db) as uow:
        node = await uow.nodes.by_code(grid)
        ticket = await tickets.create(uow, clock, config, NewReport(
            category=config.category(category), description=text, reporter_id=user,
            language="zh_Hans", grid_id=node.id, latitude=at[0] if at else None,
            longitude=at[1] if at else None, reporter_name="张三",
            reporter_phone="+86 138 1234 5678", attachments=[("photo", "AgAD-1")]))
        await uow.commit()
        return ticket.id


async def _bind(db: Database, code: str, chat_id: int, clock) -> None:
    async with UnitOfWork(db) as uow:
        node = await uow.nodes.by_code(code)
        uow.groups.add(GroupChat(chat_id=chat_id, title=code, chat_type="supergroup",
                                 is_forum=False, active=True, node_id=node.id,
                                 language="zh_Hans", created_at=clock.now(),
                                 updated_at=clock.now()))
        await uow.commit()


async def test_numbers_are_daily_and_unique_under_concurrency(world) -> None:
    db, config, clock = world
    ids = await asyncio.gather(*(_report(db, config, clock, user=600 + i) for i in range(12)))
    async with UnitOfWork(db) as uow:
        numbers = sorted([(await uow.tickets.get(i)).number for i in ids])
    assert numbers == [f"1123-{n:04d}" for n in range(1, 13)]
    clock.advance(timedelta(days=1))
    tomorrow = await _report(db, config, clock)
    async with UnitOfWork(db) as uow:
        assert (await uow.tickets.get(tomorrow)).number == "1124-0001"


async def test_a_new_report_is_routed_logged_and_due_in_working_days(world) -> None:
    db, config, clock = world
    ticket_id = await _report(db, config, clock)
    async with UnitOfWork(db) as uow:
        ticket = await uow.tickets.get(ticket_id)
        node = await uow.nodes.get(ticket.node_id)
        assert (node.code, ticket.status, ticket.urgent) == (GRID, "open", False)
        # 3 working days from Monday 10:00 local is Thursday 10:00 local.
        assert ticket.deadline_at == datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
        assert [e.kind for e in await uow.tickets.events(ticket_id)] == ["created"]
        assert len(await uow.tickets.attachments(ticket_id)) == 1


async def test_categories_route_to_their_level_or_desk(world) -> None:
    db, config, clock = world
    labour = await _report(db, config, clock, category="labour_dispute")
    legal = await _report(db, config, clock, category="legal_family", at=None)
    async with UnitOfWork(db) as uow:
        assert (await uow.nodes.get((await uow.tickets.get(labour)).node_id)).code == "SFQ-DH"
        assert (await uow.nodes.get((await uow.tickets.get(legal)).node_id)).code == "legal"


async def test_the_nearest_active_group_up_the_tree_receives(world) -> None:
    db, _, clock = world
    async with UnitOfWork(db) as uow:
        grid = await uow.nodes.by_code(GRID)
        node, group = await routing.handling_group(uow, grid)
        assert group is None and node.code == GRID
    await _bind(db, "SFQ-DH-01", -1001, clock)
    await _bind(db, "SFQ", -1000, clock)
    async with UnitOfWork(db) as uow:
        node, group = await routing.handling_group(uow, await uow.nodes.by_code(GRID))
        assert (node.code, group.chat_id) == ("SFQ-DH-01", -1001)


async def test_emergencies_by_category_or_words(world) -> None:
    db, config, clock = world
    hazard = await _report(db, config, clock, category="safety_hazard", text="电线老化很危险")
    words = await _report(db, config, clock, text="楼下有人持刀打人，快来人")
    english = await _report(db, config, clock, text="There is a GAS LEAK on floor 3")
    calm = await _report(db, config, clock)
    async with UnitOfWork(db) as uow:
        got = [(await uow.tickets.get(i)).urgent for i in (hazard, words, english, calm)]
        urgent = await uow.tickets.get(words)
        assert urgent.deadline_at - urgent.created_at == config.sla(
            "sanitation").resolution_urgent_within
    assert got == [True, True, True, False]


async def test_two_workers_claim_at_once_and_exactly_one_wins(world) -> None:
    db, config, clock = world
    ticket_id = await _report(db, config, clock)

    async def claim(worker: int) -> str:
        async with UnitOfWork(db) as uow:
            try:
                await tickets.claim(uow, clock, ticket_id, worker, f"网格员{worker}")
            except TicketRefused as refused:
                assert refused.refusal is Refusal.TAKEN
                return f"refused, held by {refused.ticket.holder_name}"
            await uow.commit()
            return "won"

    results = await asyncio.gather(claim(1), claim(2))
    assert sorted(results)[1] == "won"
    assert sorted(results)[0].startswith("refused, held by 网格员")
    async with UnitOfWork(db) as uow:
        events = [e.kind for e in await uow.tickets.events(ticket_id)]
        assert events.count("claimed") == 1


async def test_the_life_cycle_is_enforced(world) -> None:
    db, config, clock = world
    ticket_id = await _report(db, config, clock)
    async with UnitOfWork(db) as uow:
        with pytest.raises(TicketRefused) as refused:
            await tickets.start(uow, clock, ticket_id, 1)
        assert refused.value.refusal is Refusal.WRONG_STATE
        await tickets.claim(uow, clock, ticket_id, 1, "甲")
        with pytest.raises(TicketRefused) as refused:
            await tickets.release(uow, clock, ticket_id, 2)
        assert refused.value.refusal is Refusal.NOT_HOLDER
        await tickets.start(uow, clock, ticket_id, 1)
        with pytest.raises(TicketRefused):
            await tickets.withdraw(uow, clock, ticket_id, 999, "not mine")
        ticket = await tickets.resolve(uow, clock, ticket_id, 1, "已清理完毕")
        assert (ticket.status, ticket.resolution) == ("resolved", "已清理完毕")
        with pytest.raises(TicketRefused):
            await tickets.withdraw(uow, clock, ticket_id, 501, "too late")
        await uow.commit()
        kinds = [e.kind for e in await uow.tickets.events(ticket_id)]
    assert kinds == ["created", "claimed", "started", "resolved"]


async def test_release_withdraw_transfer_and_escalate(world) -> None:
    db, config, clock = world
    ticket_id = await _report(db, config, clock)
    async with UnitOfWork(db) as uow:
        await tickets.claim(uow, clock, ticket_id, 1, "甲")
        ticket = await tickets.release(uow, clock, ticket_id, 1)
        assert (ticket.status, ticket.holder_id) == ("open", None)
        await tickets.claim(uow, clock, ticket_id, 1, "甲")
        ticket, source, target = await tickets.move(
            uow, clock, config, ticket_id, to_node_id=None, actor_id=1, role="worker",
            reason="需要社区协调", kind="escalated")
        assert (source.code, target.code, ticket.status, ticket.holder_id) == (
            GRID, "SFQ-DH-01", "open", None)
        other = await uow.nodes.by_code("SFQ-NY-01-G2")
        ticket, _, target = await tickets.move(
            uow, clock, config, ticket_id, to_node_id=other.id, actor_id=1, role="worker",
            reason="地址属于南苑", kind="transferred")
        assert target.code == "SFQ-NY-01-G2"
        with pytest.raises(TicketRefused) as refused:
            await tickets.move(uow, clock, config, ticket_id, to_node_id=other.id, actor_id=1,
                               role="worker", reason="", kind="transferred")
        assert refused.value.refusal is Refusal.SAME_NODE
        ticket = await tickets.withdraw(uow, clock, ticket_id, 501, "已自行解决")
        assert ticket.status == "withdrawn"
        await uow.commit()
    root = await _report(db, config, clock, category="legal_family", at=None)
    async with UnitOfWork(db) as uow:
        await tickets.move(uow, clock, config, root, to_node_id=None, actor_id=None,
                           role="system", reason="", kind="escalated")  # desk → district
        with pytest.raises(TicketRefused) as refused:
            await tickets.move(uow, clock, config, root, to_node_id=None, actor_id=None,
                               role="system", reason="", kind="escalated")
        assert refused.value.refusal is Refusal.TOP_REACHED


async def test_only_the_holder_moves_a_held_ticket_but_the_system_may(world) -> None:
    db, config, clock = world
    ticket_id = await _report(db, config, clock)
    async with UnitOfWork(db) as uow:
        other = await uow.nodes.by_code("SFQ-NY-01-G2")
        await tickets.claim(uow, clock, ticket_id, 1, "甲")
        for kind, to in (("escalated", None), ("transferred", other.id)):
            with pytest.raises(TicketRefused) as refused:
                await tickets.move(uow, clock, config, ticket_id, to_node_id=to, actor_id=2,
                                   role="worker", reason="不归我们管", kind=kind)
            assert refused.value.refusal is Refusal.NOT_HOLDER
        ticket = await uow.tickets.get(ticket_id)
        assert tickets.move_refusal(ticket, 2) is Refusal.NOT_HOLDER
        assert tickets.move_refusal(ticket, 1) is None
        assert tickets.move_refusal(ticket, None, system=True) is None
        await tickets.start(uow, clock, ticket_id, 1)
        with pytest.raises(TicketRefused) as refused:
            await tickets.move(uow, clock, config, ticket_id, to_node_id=None, actor_id=2,
                               role="worker", reason="", kind="escalated")
        assert refused.value.refusal is Refusal.NOT_HOLDER
        assert (ticket.status, ticket.holder_id) == ("in_progress", 1)
        with pytest.raises(ValueError):
            await tickets.move(uow, clock, config, ticket_id, to_node_id=None, actor_id=2,
                               role="worker", reason="", kind="escalated", system=True)
        # A system move (an SLA escalation) takes it from its holder.
        ticket, _, target = await tickets.move(
            uow, clock, config, ticket_id, to_node_id=None, actor_id=None, role="system",
            reason="", kind="escalated", system=True)
        assert (target.code, ticket.status, ticket.holder_id) == ("SFQ-DH-01", "open", None)
        # Open again: anyone in the group may send it on.
        ticket, _, target = await tickets.move(
            uow, clock, config, ticket_id, to_node_id=other.id, actor_id=2, role="worker",
            reason="地址属于南苑", kind="transferred")
        assert target.code == "SFQ-NY-01-G2"
        await uow.commit()
        assert [e.kind for e in await uow.tickets.events(ticket_id)][-2:] == [
            "escalated", "transferred"]


async def test_a_change_of_holder_the_mover_has_not_seen_cannot_slip_through(world) -> None:
    """The mover checks the holder on the row as it is when written, not on its own copy."""
    db, config, clock = world
    ticket_id = await _report(db, config, clock)
    async with UnitOfWork(db) as uow:
        await tickets.claim(uow, clock, ticket_id, 1, "甲")
        await uow.commit()

    async with UnitOfWork(db) as first:
        seen = await first.tickets.get(ticket_id)  # held by 1, as far as `first` knows
        assert seen.holder_id == 1
        if db.is_sqlite:
            # One writer at a time: nobody else can change the row while `first` is open, so
            # the change happens in `first` and its copy is made stale by hand.
            await _hand_over(first, clock, ticket_id)
            set_committed_value(seen, "holder_id", 1)
            set_committed_value(seen, "holder_name", "甲")
        else:
            async with UnitOfWork(db) as second:
                await _hand_over(second, clock, ticket_id)  # holds the row, not committed
                moving = asyncio.create_task(tickets.move(
                    first, clock, config, ticket_id, to_node_id=None, actor_id=1,
                    role="worker", reason="", kind="escalated"))
                await asyncio.sleep(0.3)
                assert not moving.done()  # waits for the row
                await second.commit()
            with pytest.raises(TicketRefused) as refused:
                await moving
            assert refused.value.refusal is Refusal.NOT_HOLDER
            set_committed_value(seen, "holder_id", 1)
        with pytest.raises(TicketRefused) as refused:
            await tickets.move(first, clock, config, ticket_id, to_node_id=None, actor_id=1,
                               role="worker", reason="", kind="escalated")
        assert refused.value.refusal is Refusal.NOT_HOLDER
        assert refused.value.ticket.holder_id == 2
        await first.commit()
    async with UnitOfWork(db) as uow:
        ticket = await uow.tickets.get(ticket_id)
        assert (ticket.status, ticket.holder_id) == ("claimed", 2)
        kinds = [e.kind for e in await uow.tickets.events(ticket_id)]
    assert kinds == ["created", "claimed", "released", "claimed"]


async def _hand_over(uow: UnitOfWork, clock, ticket_id: int) -> None:
    await tickets.release(uow, clock, ticket_id, 1)
    await tickets.claim(uow, clock, ticket_id, 2, "乙")


async def test_nearby_duplicates_and_the_hourly_limit(world) -> None:
    db, config, clock = world
    first = await _report(db, config, clock)
    async with UnitOfWork(db) as uow:
        near = await tickets.nearby_open(uow, config, "sanitation", 31.2315, 121.4205)
        assert near is not None and near.id == first  # about 173 m away
        assert await tickets.nearby_open(uow, config, "sanitation", 31.2350, 121.42) is None
        assert await tickets.nearby_open(uow, config, "infrastructure", *INSIDE) is None
        await tickets.add_co_reporter(uow, clock, near, 777)
        await tickets.add_co_reporter(uow, clock, near, 777)
        await uow.commit()
        assert await uow.tickets.residents(near) == [501, 777]
        assert not await tickets.over_hourly_limit(uow, clock, config, 501)
    for _ in range(4):
        await _report(db, config, clock)
    async with UnitOfWork(db) as uow:
        assert await tickets.over_hourly_limit(uow, clock, config, 501)
        clock.advance(timedelta(hours=1, seconds=1))
        assert not await tickets.over_hourly_limit(uow, clock, config, 501)


def test_distance() -> None:
    # 0.0015° of latitude is 166.8 m, 0.0005° of longitude at 31°N is 47.6 m.
    assert 172 < tickets.distance_m(31.23, 121.42, 31.2315, 121.4205) < 175


async def test_resolution_deadlines_follow_the_holiday_calendar(world) -> None:
    db, config, clock = world
    # 2025-09-30 10:00 in Shanghai; 10-01..08 are the National Day holiday and Saturday 10-11
    # is a make-up working day, so three working days end on 10-11 at 10:00.
    clock.set(datetime(2025, 9, 30, 2, 0, tzinfo=UTC))
    ticket_id = await _report(db, config, clock)
    async with UnitOfWork(db) as uow:
        ticket = await uow.tickets.get(ticket_id)
    assert ticket.deadline_at == datetime(2025, 10, 11, 2, 0, tzinfo=UTC)
