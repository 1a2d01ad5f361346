"""Running Alembic migrations from the application, on its own async engine."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from storage.db import Database


def alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(resources.files("storage") / "migrations"))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(
        alembic_config()).walk_revisions()}


class MigrationError(Exception):
    """A migration left the database inconsistent; it was rolled back."""


async def upgrade(db: Database, revision: str = "head") -> None:
    def _upgrade(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    if not db.is_sqlite:
        async with db.engine.begin() as connection:
            await connection.run_sync(_upgrade)
        return
    # SQLite changes a table by building a new one and dropping the old, and dropping a table
    # that other tables' rows point at fails while foreign keys are enforced. SQLite's own
    # recipe (https://www.sqlite.org/lang_altertable.html#otheralter): enforcement off, outside
    # the transaction (it cannot change inside one), then every reference checked before the
    # transaction commits.
    async with db.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        await driver.execute("PRAGMA foreign_keys=OFF")
        try:
            async with connection.begin():
                await connection.run_sync(_upgrade)
                broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if broken:
                    raise MigrationError(
                        f"the migration left {len(broken)} broken reference(s), first in "
                        f"table {broken[0][0]}; nothing was changed")
        finally:
            await driver.execute("PRAGMA foreign_keys=ON")


async def current_revision(db: Database) -> str | None:
    def _current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with db.engine.connect() as connection:
        return await connection.run_sync(_current)


async def is_up_to_date(db: Database) -> bool:
    return await current_revision(db) == head_revision()
