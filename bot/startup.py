"""Bringing the database to a usable state before the bot or a command uses it."""

from __future__ import annotations

import logging
from importlib import resources

from sqlalchemy import text as sql

from bot.clock import Clock
from bot.config import Config
from bot.services import grids
from bot.services.orgtree import parse_geojson
from storage import migrate
from storage.db import Database, create_database
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

# pg_advisory_xact_lock's key for preparing the database (any constant; "gridgate" in ASCII).
PREPARE_LOCK = 0x67726964_67617465


class StartupError(Exception):
    """The database cannot be used as it is; the message says what the operator must do."""


class NotMigrated(StartupError):
    """The PostgreSQL schema is behind the code; an operator must run `gridgate db upgrade`."""


def open_database(config: Config) -> Database:
    return create_database(config.database.url, echo=config.database.echo,
                           busy_timeout_ms=config.database.sqlite_busy_timeout_ms)


async def prepare(db: Database, config: Config, clock: Clock) -> None:
    """Migrate (SQLite) or check the schema (PostgreSQL), load the demo, sync the desks.

    The embedded SQLite database upgrades itself; a PostgreSQL database is shared by several
    instances and upgraded deliberately, once, by `gridgate db upgrade`.
    """
    if db.is_sqlite:
        await migrate.upgrade(db)
    elif not await migrate.is_up_to_date(db):
        raise NotMigrated(
            "the database schema is not up to date; run `gridgate db upgrade` first")
    async with UnitOfWork(db) as uow:
        if not db.is_sqlite:
            # Several instances start at once on one PostgreSQL database: one at a time loads
            # the demo district and syncs the desks (SQLite's BEGIN IMMEDIATE does this
            # already). The lock ends with the transaction.
            await uow.session.execute(sql("SELECT pg_advisory_xact_lock(:key)"),
                                      {"key": PREPARE_LOCK})
        if config.demo_district_when_empty and await uow.nodes.count() == 0:
            text = (resources.files("bot") / "data" / "demo_district.geojson").read_text("utf-8")
            report = await grids.import_parsed(uow, clock, parse_geojson(text))
            log.info("loaded the demo district (%d nodes)", report.created)
        try:
            await grids.sync_desks(uow, clock, [
                (desk.code, desk.names.zh_Hans, desk.names.zh_Hant, desk.names.en)
                for desk in config.desks])
        except grids.DeskCodeTaken as exc:
            raise StartupError(str(exc)) from exc
        await uow.commit()
        root = await uow.nodes.root()
        group = await uow.groups.for_node(root.id) if root else None
        if root is not None and (group is None or not group.active):
            # Routing climbs to the district centre as a last resort, so it needs a group: say
            # so early.
            log.warning("the district centre %s has no active group yet; an administrator "
                        "should send /bind %s in the district centre's group", root.code,
                        root.code)
