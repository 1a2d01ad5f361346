"""Shared fixtures: real databases (SQLite and PostgreSQL), migrated once per run.

Every test that takes `db` runs once per backend. PostgreSQL is the machine's own server
(127.0.0.1:5432, database `test`); each test run works in a schema of its own so parallel runs
and leftovers never meet. A backend that cannot be reached fails the run rather than skipping.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text

from storage import migrate
from storage.db import Database, create_database
from storage.models import Base

PG_URL = os.environ.get("GRIDGATE_TEST_PG_URL",
                        "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
BACKENDS = [b for b in os.environ.get("GRIDGATE_TEST_BACKENDS", "sqlite,postgresql").split(",")
            if b]


@pytest.fixture(scope="session", params=BACKENDS)
async def migrated_db(request, tmp_path_factory) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "gridgate.db"
        db = create_database(f"sqlite+aiosqlite:///{path}")
        await migrate.upgrade(db)
        yield db
        await db.dispose()
        return
    assert request.param == "postgresql", f"unknown backend {request.param}"
    async with pg_schema() as db:
        await migrate.upgrade(db)
        yield db


@asynccontextmanager
async def fresh_database(backend: str) -> AsyncIterator[Database]:
    """An empty database of ``backend`` ("sqlite": a file in a temporary folder;
    "postgresql": a schema of its own), gone afterwards. Not migrated."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            db = create_database(f"sqlite+aiosqlite:///{folder}/bench.db")
            try:
                yield db
            finally:
                await db.dispose()
        return
    async with pg_schema() as db:
        yield db


@asynccontextmanager
async def pg_schema() -> AsyncIterator[Database]:
    """A Database on a fresh, empty PostgreSQL schema of its own, dropped afterwards."""
    schema = f"gg_test_{uuid.uuid4().hex[:12]}"
    admin = create_database(PG_URL)
    async with admin.engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = create_database(PG_URL, connect_args={"server_settings": {"search_path": schema}})
    try:
        yield db
    finally:
        await db.dispose()
        async with admin.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture
async def db(migrated_db: Database) -> AsyncIterator[Database]:
    """A migrated database, emptied after the test (tests commit for real, so no rollback)."""
    yield migrated_db
    async with migrated_db.engine.begin() as conn:
        await conn.execute(text("UPDATE org_node SET parent_id = NULL"))  # self-reference
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(table.delete())


@pytest.fixture(scope="session")
def catalogs():
    from bot.i18n import Catalogs

    return Catalogs.load()


@pytest.fixture
async def bot(db: Database, catalogs):
    """gridgate with the demo district, an admin, and the fake Telegram. Fails the test on any
    Bot API call that breaks the spec and on any error a handler raised, unless the test
    empties `bot.errors` itself after checking them."""
    from tests.harness import start_bot, stop_bot

    env = await start_bot(db, catalogs)
    yield env
    await stop_bot(env)
    env.fake.assert_no_violations()
    assert env.errors == [], f"handlers raised: {env.errors!r}"
    assert env.lock_violations == [], env.lock_violations
