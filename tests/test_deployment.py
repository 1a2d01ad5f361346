"""Issue 7, part 6: the deployment guide (docs/deployment.md) checked by running its steps.

* SQLite: `gridgate db backup` while gridgate writes to the database, the guide's restore steps,
  and the tickets read back, each complete; gridgate carries on with the restored file.
* PostgreSQL: a role and a database it owns, `gridgate db upgrade`, tickets, `pg_dump -Fc`,
  `createdb` and `pg_restore --no-owner --role` into a fresh database, the tickets read back and
  a new one created there.
* `gridgate db upgrade` from an older revision, after the bot refused to start on it.
* The systemd unit: `systemd-analyze verify` and `security --offline`.
* nginx: `nginx -t` on the example, then nginx with it (a throwaway certificate, ports on
  localhost) in front of a real `gridgate run --webhook` serving the sandbox's bot.

The tools come from Debian (.ci/run installs nginx and systemd); without them these tests fail
rather than skip, as the database tests do without a database.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

import asyncpg
import pytest
from sqlalchemy import func, select

from storage import migrate
from storage.db import create_database
from storage.models import Ticket, TicketEvent
from tests.conftest import BACKENDS
from tests.harness import ADMIN, BotEnv, make_config, start_bot, stop_bot
from tests.telegram_fake import Chat, User
from tests.test_report_flow import press, to_summary

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
GROUP = Chat(-1007200000001, "supergroup", title="东湖一社区第1网格")
INSIDE = (31.23, 121.42)  # SFQ-DH-01-G1
needs_postgresql = pytest.mark.skipif("postgresql" not in BACKENDS,
                                      reason="PostgreSQL deselected")


def _environ(env: dict[str, str]) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("TELEGRAM_BOT_TOKEN", "DATABASE_URL", "GRIDGATE_TIMEZONE",
                            "TELEGRAM_API_BASE_URL", "GRIDGATE_WEBHOOK_URL",
                            "GRIDGATE_WEBHOOK_SECRET")}
    environ.update(PYTHONPATH=str(ROOT), **env)
    return environ


def gridgate(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The `gridgate` command as an operator runs it, with only the given deployment variables."""
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, env=_environ(env),
                          capture_output=True, text=True, timeout=120, check=False)


async def run(*args: str, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """A command, awaited (the event loop goes on meanwhile)."""
    process = await asyncio.create_subprocess_exec(
        *args, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return subprocess.CompletedProcess(list(args), process.returncode or 0, out.decode(),
                                       err.decode())


async def agridgate(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await run(sys.executable, "-m", "bot", *args, cwd=cwd, env=_environ(env))


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    assert found, f"{name} is not installed (.ci/run installs it from Debian)"
    return found


def config(**sections):
    # Many reports from one place: no "join the nearby ticket?" and no hourly limit here.
    return make_config(limits={"duplicate_radius_m": 0, "tickets_per_hour": 1000}, **sections)


async def report(env: BotEnv, n: int) -> None:
    """Resident n reports from inside the bound grid, through the real Application."""
    resident = User(720_000 + n, f"居民{n}", language_code="zh-hans")
    await to_summary(env, resident, at=(INSIDE[0] + n * 1e-5, INSIDE[1]))
    await press(env, resident, "rp:submit")


async def tickets_in(url: str) -> list[tuple[int, str, int]]:
    """(id, number, events) of every ticket, read back through gridgate's own models."""
    db = create_database(url)
    try:
        async with db.sessions() as session:
            rows = await session.execute(
                select(Ticket.id, Ticket.number, func.count(TicketEvent.id))
                .outerjoin(TicketEvent, TicketEvent.ticket_id == Ticket.id)
                .group_by(Ticket.id, Ticket.number).order_by(Ticket.id))
            return [tuple(row) for row in rows]
    finally:
        await db.dispose()


# -- SQLite: an online backup, and restoring it -------------------------------------------------


async def test_sqlite_backup_while_gridgate_writes_then_restore(tmp_path: Path,
                                                                catalogs) -> None:
    path = tmp_path / "gridgate.db"
    url = f"sqlite:///{path}"
    env = {"DATABASE_URL": url}
    assert (await agridgate(tmp_path, "db", "upgrade", env=env)).returncode == 0
    live_url = f"sqlite+aiosqlite:///{path}"
    db = create_database(live_url)
    bot = await start_bot(db, catalogs, config=config())
    await bot.send(bot.updates.command(GROUP, "/bind", "SFQ-DH-01-G1", user=ADMIN))

    # gridgate goes on taking reports, one after the other, all through the backup.
    committed: list[float] = []
    stop, progress = asyncio.Event(), asyncio.Event()

    async def residents_report() -> None:
        n = 0
        while not stop.is_set():
            await report(bot, n)
            committed.append(time.monotonic())
            progress.set()
            n += 1

    async def until(test) -> None:
        while not test():
            progress.clear()
            await asyncio.wait_for(progress.wait(), 60)

    writer = asyncio.create_task(residents_report())
    try:
        await until(lambda: len(committed) >= 3)
        folder = tmp_path / "backups"
        folder.mkdir()
        started = time.monotonic()
        backup = await agridgate(tmp_path, "db", "backup", str(folder), env=env)
        ended = time.monotonic()
        await until(lambda: len([t for t in committed if t > ended]) >= 2)  # and after it
    finally:
        stop.set()
        await writer
    assert backup.returncode == 0, backup.stderr
    during = [t for t in committed if started < t < ended]
    assert during, "no report was taken while the backup ran"
    before_stop = await tickets_in(live_url)
    await stop_bot(bot)  # the service is stopped for the restore
    await db.dispose()
    bot.fake.assert_no_violations()
    assert bot.errors == []

    # What the command says, and what it wrote.
    target, backed_up = _backup_written(backup.stdout, path, folder)
    assert 3 <= backed_up < len(before_stop)
    _restore(target, path)
    upgrade = await agridgate(tmp_path, "db", "upgrade", env=env)
    assert upgrade.returncode == 0, upgrade.stderr
    assert upgrade.stdout.strip() == f"database at revision {migrate.head_revision()}"

    # The copy is one instant of the database: the first tickets, each with its whole history.
    restored = await tickets_in(live_url)
    assert len(restored) == backed_up
    assert [(i, n) for i, n, _ in restored] == [(i, n) for i, n, _ in before_stop[:backed_up]]
    assert restored == before_stop[:backed_up]
    assert all(events >= 1 for _, _, events in restored)

    # gridgate carries on with the restored file: a new report gets a new number.
    db = create_database(live_url)
    bot = await start_bot(db, catalogs, config=config(), first_update_id=1_000_000)
    try:
        await report(bot, 999)
    finally:
        await stop_bot(bot)
        await db.dispose()
    after = await tickets_in(live_url)
    assert len(after) == backed_up + 1
    assert after[-1][1] not in {n for _, n, _ in restored}


def _backup_written(said: str, database: Path, folder: Path) -> tuple[Path, int]:
    """What `gridgate db backup FOLDER` said and wrote: the backup and its ticket count."""
    found = re.fullmatch(r"backed up (\S+) to (\S+): ([\d,]+) bytes, schema revision (\w+), "
                         r"([\d,]+) tickets, integrity checked \([\d.]+s\)\n", said)
    assert found, said
    source, target = Path(found[1]), Path(found[2])
    assert source == database and target.parent == folder
    assert re.fullmatch(r"gridgate-\d{8}-\d{6}\.db", target.name)
    assert found[4] == migrate.head_revision()
    assert int(found[3].replace(",", "")) == target.stat().st_size
    assert target.stat().st_mode & 0o777 == 0o600  # it holds personal data
    assert sorted(p.name for p in folder.iterdir()) == [target.name]  # no partial file left
    return target, int(found[5].replace(",", ""))


def _restore(backup: Path, database: Path) -> None:
    """The guide's restore, with the bot stopped: keep what is there, with its -wal and -shm
    (a -wal left beside the restored file would be replayed into it), put the backup in place."""
    for name in (database.name, f"{database.name}-wal", f"{database.name}-shm"):
        if (database.parent / name).exists():
            (database.parent / name).rename(database.parent / f"{name}.before-restore")
    shutil.copyfile(backup, database)
    database.chmod(0o600)


def test_backup_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'gridgate.db'}"}
    missing = gridgate(tmp_path, "db", "backup", "copy.db", env=env)
    assert missing.returncode == 2 and "no such database file" in missing.stderr
    assert not (tmp_path / "gridgate.db").exists()  # nothing created by asking
    assert gridgate(tmp_path, "db", "upgrade", env=env).returncode == 0
    first = gridgate(tmp_path, "db", "backup", "copy.db", env=env)
    assert first.returncode == 0, first.stderr
    again = gridgate(tmp_path, "db", "backup", "copy.db", env=env)
    assert again.returncode == 2 and "already exists" in again.stderr
    pg = gridgate(tmp_path, "db", "backup", "x.dump",
                  env={"DATABASE_URL": "postgresql://gg:s3cret@db.example:5433/gridgate"})
    assert pg.returncode == 2
    assert "pg_dump -Fc -h db.example -p 5433 -U gg -d gridgate -f x.dump" in pg.stderr
    assert "s3cret" not in pg.stderr and "Traceback" not in pg.stderr


# -- PostgreSQL: pg_dump and pg_restore into a fresh database ----------------------------------


@asynccontextmanager
async def postgres_admin() -> AsyncIterator[asyncpg.Connection]:
    admin = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="test")
    try:
        yield admin
    finally:
        await admin.close()


@needs_postgresql
async def test_pg_dump_and_restore_into_a_fresh_database(tmp_path: Path, catalogs) -> None:
    suffix = uuid.uuid4().hex[:10]
    role, source, fresh = f"gg_role_{suffix}", f"gg_src_{suffix}", f"gg_dst_{suffix}"
    password = "p@ss:w/rd"  # percent-encoded in the URL, as the guide says
    pg = {"PGHOST": "127.0.0.1", "PGPORT": "5432", "PGPASSWORD": password,
          **{k: v for k, v in os.environ.items() if not k.startswith("PG")}}
    async with postgres_admin() as admin:
        await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        try:
            await admin.execute(
                f"CREATE DATABASE {source} OWNER {role} ENCODING 'UTF8' TEMPLATE template0")
            url = f"postgresql://{role}:{quote(password, safe='')}@127.0.0.1:5432/{source}"
            first = await agridgate(tmp_path, "db", "upgrade", env={"DATABASE_URL": url})
            assert first.returncode == 0, first.stderr
            assert first.stdout.strip() == (
                f"database at revision {migrate.head_revision()} (was None)")
            assert password not in first.stdout + first.stderr

            async_url = url.replace("postgresql://", "postgresql+asyncpg://")
            db = create_database(async_url)
            bot = await start_bot(db, catalogs, config=config())
            try:
                await bot.send(bot.updates.command(GROUP, "/bind", "SFQ-DH-01-G1", user=ADMIN))
                for n in range(3):
                    await report(bot, n)
            finally:
                await stop_bot(bot)
                await db.dispose()
            original = await tickets_in(async_url)
            assert len(original) == 3

            dump = tmp_path / "gridgate.dump"
            dumped = await run(tool("pg_dump"), "-Fc", "-h", "127.0.0.1", "-U", role,
                               "-d", source, "-f", str(dump), env=pg)
            assert dumped.returncode == 0 and dumped.stderr == "", dumped.stderr
            made = await run(tool("createdb"), "-h", "127.0.0.1", "-U", "postgres", "-O", role,
                             "-E", "UTF8", "-T", "template0", fresh, env=pg)
            assert made.returncode == 0, made.stderr
            restored_run = await run(tool("pg_restore"), "-h", "127.0.0.1", "-U", "postgres",
                                     "--no-owner", f"--role={role}", "-d", fresh, str(dump),
                                     env=pg)
            assert restored_run.returncode == 0 and restored_run.stderr == "", \
                restored_run.stderr

            fresh_url = url.rsplit("/", 1)[0] + f"/{fresh}"
            owners = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres",
                                           database=fresh)
            try:
                tables = await owners.fetch(
                    "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'")
            finally:
                await owners.close()
            assert len(tables) > 10 and {t["tableowner"] for t in tables} == {role}

            upgrade = await agridgate(tmp_path, "db", "upgrade",
                                      env={"DATABASE_URL": fresh_url})
            assert upgrade.returncode == 0, upgrade.stderr
            assert upgrade.stdout.strip() == f"database at revision {migrate.head_revision()}"
            fresh_async = fresh_url.replace("postgresql://", "postgresql+asyncpg://")
            assert await tickets_in(fresh_async) == original

            # The bot starts on the restored database and the numbering carries on.
            db = create_database(fresh_async)
            bot = await start_bot(db, catalogs, config=config(), first_update_id=1_000_000)
            try:
                await report(bot, 7)
            finally:
                await stop_bot(bot)
                await db.dispose()
            after = await tickets_in(fresh_async)
            assert after[:3] == original and len(after) == 4
            assert after[3][0] > original[-1][0]
            assert after[3][1] not in {n for _, n, _ in original}
        finally:
            for name in (source, fresh):
                await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            await admin.execute(f"DROP ROLE IF EXISTS {role}")


# -- upgrading from an older release -----------------------------------------------------------


@needs_postgresql
async def test_db_upgrade_from_an_older_revision(tmp_path: Path) -> None:
    name = f"gg_upgrade_{uuid.uuid4().hex[:10]}"
    async with postgres_admin() as admin:
        await admin.execute(f"CREATE DATABASE {name}")
        try:
            url = f"postgresql://postgres@127.0.0.1:5432/{name}"
            old = create_database(url.replace("postgresql://", "postgresql+asyncpg://"))
            try:
                await migrate.upgrade(old, "0005")  # what an older release left
                async with old.engine.begin() as conn:
                    await conn.exec_driver_sql(
                        "INSERT INTO org_node (code, level, name, created_at, updated_at) "
                        "VALUES ('OLD', 'district', '旧区', now(), now())")
            finally:
                await old.dispose()
            env = {"DATABASE_URL": url, "TELEGRAM_BOT_TOKEN": "123456:ABCdef",
                   # Never reached: the bot stops at the schema.
                   "TELEGRAM_API_BASE_URL": "http://127.0.0.1:9"}

            refused = await agridgate(tmp_path, "run", env=env)
            assert refused.returncode == 2, refused.stderr
            assert "gridgate db upgrade" in refused.stderr
            assert "Traceback" not in refused.stderr

            upgrade = await agridgate(tmp_path, "db", "upgrade", env={"DATABASE_URL": url})
            assert upgrade.returncode == 0, upgrade.stderr
            assert upgrade.stdout.strip() == (
                f"database at revision {migrate.head_revision()} (was 0005)")
            listing = await agridgate(tmp_path, "grids", "list", env={"DATABASE_URL": url})
            assert listing.returncode == 0, listing.stderr
            assert "OLD  district  旧区" in listing.stdout
        finally:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_sqlite_db_upgrade_from_an_older_revision(tmp_path: Path) -> None:
    path = tmp_path / "gridgate.db"

    async def old_release() -> None:
        db = create_database(f"sqlite+aiosqlite:///{path}")
        try:
            await migrate.upgrade(db, "0005")
        finally:
            await db.dispose()

    asyncio.run(old_release())
    upgrade = gridgate(tmp_path, "db", "upgrade", env={"DATABASE_URL": f"sqlite:///{path}"})
    assert upgrade.returncode == 0, upgrade.stderr
    assert upgrade.stdout.strip() == (
        f"database at revision {migrate.head_revision()} (was 0005)")


# -- the systemd unit ---------------------------------------------------------------------------


def _unit_here(tmp_path: Path) -> Path:
    """The unit as shipped, but starting this machine's gridgate (verify wants the program)."""
    text = (DEPLOY / "gridgate.service").read_text("utf-8")
    assert "ExecStart=/opt/gridgate/venv/bin/gridgate " in text
    program = shutil.which("gridgate") or str(Path(sys.executable).parent / "gridgate")
    unit = tmp_path / "gridgate.service"
    unit.write_text(text.replace("/opt/gridgate/venv/bin/gridgate", program), "utf-8")
    return unit


def test_the_systemd_unit_verifies_and_is_locked_down(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    unit = _unit_here(tmp_path)
    verified = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                              check=False)
    # verify exits 0 on keys it ignores; anything it says is a mistake in the file.
    assert verified.returncode == 0 and verified.stdout + verified.stderr == "", \
        verified.stdout + verified.stderr
    security = subprocess.run([analyze, "security", "--offline=true", str(unit)],
                              capture_output=True, text=True, check=False)
    exposure = re.search(r"Overall exposure level for gridgate\.service: ([\d.]+)",
                         security.stdout)
    assert exposure, security.stdout + security.stderr
    assert float(exposure[1]) <= 2.0, security.stdout

    text = unit.read_text("utf-8")
    settings = dict(re.findall(r"^(\w+)=(.*)$", text, re.MULTILINE))
    assert settings["User"] == "gridgate" and settings["Restart"] == "on-failure"
    assert settings["EnvironmentFile"] == "/etc/gridgate/gridgate.env"
    # Longer than the default [runtime] shutdown_timeout, which SIGTERM's drain may use up.
    stop_after = int(settings["TimeoutStopSec"].removesuffix("s"))
    assert stop_after > make_config().runtime.shutdown_timeout.total_seconds() + 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
