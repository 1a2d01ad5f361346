"""Storage on both backends: schema from migrations, types, unit of work, de-duplication."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text

from storage import migrate
from storage.db import Database
from storage.models import Base, GroupChat, OrgNode, User
from storage.uow import DuplicateUpdate, UnitOfWork, UpdateScope, current_update
from tests.conftest import BACKENDS, fresh_database

NOW = datetime(2026, 11, 23, 1, 2, 3, 456789, tzinfo=UTC)


async def test_migrations_match_the_models(db: Database) -> None:
    def diff(connection):
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    assert await migrate.is_up_to_date(db)


async def test_upgrade_is_idempotent(db: Database) -> None:
    await migrate.upgrade(db)
    assert await migrate.current_revision(db) == migrate.head_revision()


async def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite pragmas")  # the PostgreSQL run covers the other backend
    async with db.engine.connect() as conn:
        assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
        # SQLite itself never waits (it would hold the event loop): the connection waits for
        # a lock with asyncio sleeps instead, as long as SQLite would have (tests/test_db_engine).
        assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 0
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver._busy_timeout == 5.0
        assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
        assert (await conn.exec_driver_sql("PRAGMA synchronous")).scalar() == 1  # NORMAL


async def test_telegram_ids_are_64_bit_and_timestamps_are_aware(db: Database) -> None:
    supergroup, person = -1001234567890123, 7_123_456_789_012
    shanghai = timezone(timedelta(hours=8))
    async with UnitOfWork(db) as uow:
        uow.session.add(User(id=person, language="en", telegram_language_code="en",
                             unreachable=False, created_at=NOW.astimezone(shanghai),
                             updated_at=NOW))
        uow.session.add(GroupChat(chat_id=supergroup, title="<b>网格</b>", chat_type="supergroup",
                                  is_forum=False, active=True, language="zh_Hans",
                                  created_at=NOW, updated_at=NOW))
        await uow.commit()
    async with UnitOfWork(db) as uow:
        user = await uow.users.get(person)
        group = await uow.groups.get(supergroup)
        assert user.created_at == NOW and user.created_at.tzinfo is not None
        assert user.created_at.utcoffset() == timedelta(0)
        assert group.title == "<b>网格</b>"


async def test_naive_datetimes_are_refused(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        uow.session.add(User(id=1, unreachable=False, created_at=datetime(2026, 1, 1),
                             updated_at=NOW))
        with pytest.raises(Exception, match="naive datetime"):
            await uow.commit()


async def test_unit_of_work_rolls_back_what_it_did_not_commit(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        await uow.users.seen(42, "en", NOW)
    async with UnitOfWork(db) as uow:
        assert await uow.users.get(42) is None


async def test_commit_records_the_update_and_a_second_commit_of_it_is_a_duplicate(
        db: Database) -> None:
    for attempt in range(2):
        token = current_update.set(UpdateScope(update_id=555, received_at=NOW))
        try:
            async with UnitOfWork(db) as uow:
                await uow.users.seen(1000 + attempt, None, NOW)
                if attempt == 0:
                    await uow.commit()
                else:
                    with pytest.raises(DuplicateUpdate):
                        await uow.commit()
        finally:
            current_update.reset(token)
    async with UnitOfWork(db) as uow:
        assert await uow.updates.is_processed(555)
        assert await uow.users.get(1000) is not None
        # The duplicate's effects were rolled back together with its marker.
        assert await uow.users.get(1001) is None


async def test_processed_updates_are_purged_by_age(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        assert await uow.updates.record(1, NOW - timedelta(days=3))
        assert await uow.updates.record(2, NOW)
        assert not await uow.updates.record(2, NOW)
        await uow.session.commit()
    async with UnitOfWork(db) as uow:
        assert await uow.updates.purge_before(NOW - timedelta(days=1)) == 1
        await uow.session.commit()
        assert not await uow.updates.is_processed(1)
        assert await uow.updates.is_processed(2)


async def test_concurrent_writers_wait_for_each_other(db: Database) -> None:
    async def write(i: int) -> None:
        async with UnitOfWork(db) as uow:
            user = await uow.users.seen(10_000 + i, "zh", NOW)
            await asyncio.sleep(0)  # hold the transaction across a task switch
            user.language = "zh_Hant"
            await uow.commit()

    await asyncio.gather(*(write(i) for i in range(25)))
    async with UnitOfWork(db) as uow:
        count = await uow.session.scalar(
            select(text("count(*)")).select_from(User).where(User.language == "zh_Hant"))
        assert count == 25


async def test_org_tree_constraints(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        uow.nodes.add(OrgNode(code="D", level="district", name="区", created_at=NOW,
                              updated_at=NOW))
        await uow.commit()
    async with UnitOfWork(db) as uow:
        uow.nodes.add(OrgNode(code="D", level="street", name="重复", created_at=NOW,
                              updated_at=NOW))
        with pytest.raises(Exception, match=r"(?i)unique"):
            await uow.commit()
    async with UnitOfWork(db) as uow:
        uow.nodes.add(OrgNode(code="X", level="planet", name="?", created_at=NOW,
                              updated_at=NOW))
        with pytest.raises(Exception, match=r"(?i)check"):
            await uow.commit()


async def test_an_old_sqlite_database_with_tickets_upgrades_and_keeps_its_references(
        tmp_path) -> None:
    """Rebuilding a table that rows of other tables point at (ticket, under its log) failed
    with "FOREIGN KEY constraint failed" while foreign keys were enforced."""
    from storage.db import create_database

    db = create_database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await migrate.upgrade(db, "0004")
        at = "2026-01-01T00:00:00+00:00"
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql(
                "INSERT INTO org_node (id, code, level, name, created_at, updated_at) "
                f"VALUES (1, 'SFQ', 'district', '示范区', '{at}', '{at}')")
            await conn.exec_driver_sql(
                "INSERT INTO ticket (id, number, kind, category, status, urgent, description, "
                "node_id, reporter_id, anonymous, language, created_at, updated_at) VALUES "
                f"(1, '0101-0001', 'issue', 'sanitation', 'open', 0, '楼道', 1, 5, 0, "
                f"'zh_Hans', '{at}', '{at}')")
            await conn.exec_driver_sql(
                "INSERT INTO ticket_event (id, ticket_id, at, kind, actor_role, data) "
                f"VALUES (1, 1, '{at}', 'created', 'resident', '{{}}')")
        await migrate.upgrade(db)
        assert await migrate.is_up_to_date(db)
        async with db.engine.connect() as conn:
            assert (await conn.exec_driver_sql(
                "SELECT count(*) FROM ticket_event WHERE ticket_id = 1")).scalar() == 1
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
            assert (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all() == []
    finally:
        await db.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_an_enterprise_holding_two_places_in_a_slot_keeps_one_when_upgraded(
        backend: str) -> None:
    """Before revision 0010 two contacts could each book a place of one slot for their
    enterprise. The unique index that stops it needs those second places gone first: the
    later booking is cancelled as the enterprise's own cancelling would, the first stays."""
    async with fresh_database(backend) as db:
        await migrate.upgrade(db, "0009")
        at = "2026-01-01 00:00:00.000000"
        async with db.engine.begin() as conn:
            for sql in (
                "INSERT INTO org_node (id, code, level, name, created_at, updated_at) "
                f"VALUES (1, 'legal', 'desk', '法律', '{at}', '{at}')",
                "INSERT INTO enterprise (id, name, credit_code, industry, invite_code, "
                "created_by, consent_at, created_at, updated_at) VALUES (1, '甲科技', "
                f"'91110108551385082Q', 'it', 'INV1', 5, '{at}', '{at}', '{at}')",
                "INSERT INTO checkup_slot (id, desk_id, starts_at, ends_at, capacity, booked, "
                f"status, created_by, created_at) VALUES (1, 1, '{at}', '{at}', 2, 2, 'open', "
                f"9, '{at}')",
                *(f"INSERT INTO ticket (id, number, kind, category, status, urgent, "
                  f"description, node_id, reporter_id, anonymous, language, created_at, "
                  f"updated_at, details, enterprise_id) VALUES ({n}, '0101-000{n}', "
                  f"'checkup', 'checkup', 'open', false, '', 1, {4 + n}, false, 'zh_Hans', "
                  f"'{at}', "
                  f"'{at}', '{{\"booking\": \"booked\"}}', 1)" for n in (1, 2)),
                *(f"INSERT INTO booking (id, slot_id, enterprise_id, ticket_id, topics, status, "
                  f"booked_by, created_at, updated_at) VALUES ({n}, 1, 1, {n}, '[]', "
                  f"'booked', {4 + n}, '{at}', '{at}')" for n in (1, 2)),
            ):
                await conn.exec_driver_sql(sql)
        await migrate.upgrade(db)
        async with db.engine.connect() as conn:
            rows = (await conn.exec_driver_sql(
                "SELECT b.id, b.status, t.status, t.close_reason FROM booking b JOIN ticket t "
                "ON t.id = b.ticket_id ORDER BY b.id")).all()
            assert [tuple(r) for r in rows] == [(1, "booked", "open", None),
                                                (2, "cancelled", "withdrawn", "withdrawn")]
            assert (await conn.exec_driver_sql(
                "SELECT booked FROM checkup_slot")).scalar() == 1
            details = (await conn.exec_driver_sql(
                "SELECT details FROM ticket WHERE id = 2")).scalar()
            details = json.loads(details) if isinstance(details, str) else details
            assert details["booking"] == "cancelled"
            assert (await conn.exec_driver_sql(
                "SELECT kind, actor_role FROM ticket_event WHERE ticket_id = 2")).one() == (
                "withdrawn", "system")
