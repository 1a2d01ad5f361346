"""The deployment guide (docs/deployment.md) checked by running its steps.

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
import json
import os
import re
import shutil
import signal
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
    return make_config(limits={"duplicate_radius_m": 0, "tickets_per_hour": 1_000_000},
                       **sections)


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
            # A resident's pace, not a tight loop: on the loop's own thread SQLite takes
            # thousands of reports while the backup runs, and the copy would grow with them.
            await asyncio.sleep(0.02)

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
                f"database at revision {migrate.head_revision()} (was empty)")
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


# -- nginx in front of the webhook ------------------------------------------------------------

NGINX_SITE = DEPLOY / "nginx" / "gridgate.conf"
# Stands in for Telegram's networks, from which the test's sandbox calls the webhook: the
# outsider's calls come from 127.0.0.1.
TELEGRAM_STAND_IN = "127.0.0.2"


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for localhost (and the example's name)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    made = subprocess.run(
        [tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext",
         "subjectAltName=DNS:localhost,DNS:bot.example.org,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)], capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stderr
    return cert, key


def _site(folder: Path, cert: Path, key: Path) -> str:
    """The example with this machine's certificate and log paths; nothing else changed."""
    text = NGINX_SITE.read_text("utf-8")
    for old, new in (("/etc/letsencrypt/live/bot.example.org/fullchain.pem", str(cert)),
                     ("/etc/letsencrypt/live/bot.example.org/privkey.pem", str(key)),
                     ("/var/log/nginx/gridgate.access.log", str(folder / "access.log")),
                     ("/var/www/letsencrypt", str(folder / "www"))):
        assert old in text, old
        text = text.replace(old, new)
    return text


def _nginx_conf(folder: Path, site: str) -> Path:
    (folder / "site.conf").write_text(site, "utf-8")
    temp = {name: folder / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    conf = folder / "nginx.conf"
    conf.write_text("\n".join([
        # As root, nginx's workers would drop to nobody, who cannot read this test's folder.
        "user root;" if os.geteuid() == 0 else "",
        "daemon off;",
        "worker_processes 1;",
        f"pid {folder / 'nginx.pid'};",
        f"error_log {folder / 'error.log'} warn;",
        "events { worker_connections 64; }",
        "http {",
        f"    access_log {folder / 'access.log'};",
        f"    client_body_temp_path {temp['body']};",
        f"    proxy_temp_path {temp['proxy']};",
        f"    fastcgi_temp_path {temp['fastcgi']};",
        f"    uwsgi_temp_path {temp['uwsgi']};",
        f"    scgi_temp_path {temp['scgi']};",
        f"    include {folder / 'site.conf'};",
        "}", ""]), "utf-8")
    return conf


async def _web_chat_through(http, public: str) -> None:
    origin = {"Origin": public}
    async with http.post(f"{public}/chat/api/session", json={}, headers=origin) as response:
        assert response.status == 200, await response.text()
        opened = await response.json()
        assert response.cookies["gg_chat"]["secure"], "behind https the cookie is Secure"
        assert "max-age" in response.headers["Strict-Transport-Security"]
    assert opened["messages"], "the welcome"
    headers = {**origin, "X-CSRF-Token": opened["csrf"]}
    async with http.post(f"{public}/chat/api/send", json={"key": "deploykey01", "text": "/help"},
                         headers={**headers, "Origin": "https://evil.example"}) as response:
        assert response.status == 403
    socket = await http.ws_connect(f"{public}/chat/ws", headers=origin)
    await socket.send_json({"after": opened["cursor"]})
    async with http.post(f"{public}/chat/api/send", json={"key": "deploykey02", "text": "/help"},
                         headers=headers) as response:
        assert response.status == 200, await response.text()
    pushed = await asyncio.wait_for(socket.receive_json(), 20)
    assert pushed["messages"] and pushed["cursor"] > opened["cursor"]
    await socket.close()


def test_nginx_accepts_the_example(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    conf = _nginx_conf(tmp_path, _site(tmp_path, cert, key))
    checked = subprocess.run([tool("nginx"), "-t", "-c", str(conf), "-p", str(tmp_path)],
                             capture_output=True, text=True, check=False)
    said = checked.stdout + checked.stderr
    assert checked.returncode == 0, said
    assert "test is successful" in said and "[warn]" not in said and "[emerg]" not in said


def _on_ports(site: str, *, https: int, http: int, bot: int) -> str:
    """The example on localhost ports: the bot's [server] port, and nginx's own two. The
    webhook also lets the test's Telegram stand-in in, beside Telegram's networks."""
    site = re.sub(r"\n\s*listen \[::\]:\d+( ssl)?;", "", site)
    replaced = (site.replace("listen 443 ssl;", f"listen 127.0.0.1:{https} ssl;")
                .replace("listen 80;", f"listen 127.0.0.1:{http};")
                .replace("server 127.0.0.1:8081;", f"server 127.0.0.1:{bot};")
                .replace("allow 149.154.160.0/20;",
                         f"allow {TELEGRAM_STAND_IN};\n        allow 149.154.160.0/20;"))
    assert replaced.count(str(https)) == 1 and replaced.count(f"127.0.0.1:{bot}") == 1
    assert TELEGRAM_STAND_IN in replaced
    return replaced


async def _until_answers(url: str, session, within: float = 60) -> None:
    import aiohttp

    deadline = time.monotonic() + within
    while True:
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        assert time.monotonic() < deadline, f"{url} does not answer within {within} s"
        await asyncio.sleep(0.2)


async def test_nginx_in_front_of_gridgate(tmp_path: Path, catalogs, monkeypatch) -> None:
    import ssl

    import aiohttp

    from bot.sandbox import demo
    from bot.sandbox import webhook as sandbox_webhook
    from bot.web import SECRET_HEADER, derived_secret
    from tests.sandbox_client import People, bound, last_id
    from tests.telegram_fake import load_spec

    cert, key = _certificate(tmp_path)
    trusting = ssl.create_default_context(cafile=str(cert))
    https, http, bot_port = _free_port(), _free_port(), _free_port()
    conf = _nginx_conf(tmp_path, _on_ports(_site(tmp_path, cert, key), https=https, http=http,
                                           bot=bot_port))

    # The sandbox plays Telegram: it calls the webhook from the stand-in address, and trusts
    # the throwaway certificate as Telegram trusts a real one.
    class TelegramSide:
        def __getattr__(self, name):
            return getattr(aiohttp, name)

        @staticmethod
        def ClientSession(*args, **kwargs):
            kwargs["connector"] = aiohttp.TCPConnector(ssl=trusting,
                                                       local_addr=(TELEGRAM_STAND_IN, 0))
            return aiohttp.ClientSession(*args, **kwargs)

    monkeypatch.setattr(sandbox_webhook, "aiohttp", TelegramSide())
    sandbox = demo.demo_sandbox(demo.new_token(), spec=load_spec(), catalogs=catalogs)
    demo.bind_groups(sandbox)
    address = await sandbox.start()

    public = f"https://localhost:{https}"
    settings = tmp_path / "deployment.toml"
    settings.write_text(f"""
[webhook]
enabled = true
url = "{public}/telegram/webhook"

[server]
listen = "127.0.0.1"
port = {bot_port}

[web]
public_url = "{public}"

[runtime]
log_format = "json"
""", "utf-8")
    log_path = tmp_path / "bot.log"
    configs = [str(ROOT / "bot" / "data" / "gridgate.example.toml"), str(demo.overlay_path()),
               str(settings)]
    with log_path.open("wb") as log:
        bot = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", *[a for c in configs for a in ("--config", c)], "run",
            cwd=tmp_path, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            env=_environ({"TELEGRAM_BOT_TOKEN": sandbox.token,
                          "TELEGRAM_API_BASE_URL": address, "PYTHONUNBUFFERED": "1",
                          "DATABASE_URL": f"sqlite:///{tmp_path / 'gridgate.db'}"}))
    nginx = await asyncio.create_subprocess_exec(
        tool("nginx"), "-c", str(conf), "-p", str(tmp_path),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    outsider = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusting),
                                     timeout=aiohttp.ClientTimeout(total=20))
    stand_in = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=trusting, local_addr=(TELEGRAM_STAND_IN, 0)),
        timeout=aiohttp.ClientTimeout(total=20))
    internal = f"http://127.0.0.1:{bot_port}"
    try:
        await _until_answers(f"{internal}/healthz", outsider)
        await _until_answers(f"{public}/healthz", outsider, within=20)

        # From the internet: liveness goes through; readiness and metrics do not.
        for path, status in (("/healthz", 200), ("/metrics", 403), ("/readyz", 403),
                             ("/", 404), ("/admin", 404), ("/telegram/webhook", 403)):
            async with outsider.get(f"{public}{path}", allow_redirects=False) as response:
                assert response.status == status, (path, response.status)
        async with outsider.get(f"http://127.0.0.1:{http}/healthz",
                                allow_redirects=False) as response:
            assert response.status == 301
            assert response.headers["Location"] == "https://127.0.0.1/healthz"
        # The webhook only takes calls from Telegram's networks, secret or not...
        secret = {SECRET_HEADER: derived_secret(sandbox.token)}
        async with outsider.post(f"{public}/telegram/webhook", json={"update_id": 1},
                                 headers=secret) as response:
            assert response.status == 403
        # ... and from there, only with the secret: that refusal is gridgate's own.
        async with stand_in.post(f"{public}/telegram/webhook",
                                 json={"update_id": 1}) as response:
            assert response.status == 403
        # Inside, the monitoring reads what the world may not.
        async with outsider.get(f"{internal}/metrics") as response:
            assert response.status == 200 and "gridgate_" in await response.text()
        await _until_answers(f"{internal}/readyz", outsider)

        # The residents' web chat goes through, over TLS: its session, its calls (from its
        # own origin only) and its WebSocket.
        await _web_chat_through(outsider, public)

        # Telegram → nginx → gridgate → the Bot API: the demo's groups are bound (their
        # /bind went through the webhook) and a resident's /start is answered.
        people = People(outsider, address)
        await bound(people, sandbox)
        mark = last_id(await people.messages(demo.RESIDENT))
        await people.say(demo.RESIDENT, demo.RESIDENT, "/start")
        await people.wait_for(demo.RESIDENT, lambda m: m["from"]["is_bot"]
                              and m["message_id"] > mark, "the answer to /start")
    finally:
        await outsider.close()
        await stand_in.close()
        if bot.returncode is None:
            bot.send_signal(signal.SIGTERM)
        stopped = await asyncio.wait_for(bot.wait(), 60)
        if nginx.returncode is None:
            nginx.send_signal(signal.SIGQUIT)  # nginx's graceful stop
        await asyncio.wait_for(nginx.wait(), 30)
        await sandbox.stop()
    assert stopped == 0, log_path.read_text("utf-8")

    # nginx passed Telegram's calls on, and they were taken.
    calls = [line for line in (tmp_path / "access.log").read_text("utf-8").splitlines()
             if '"POST /telegram/webhook ' in line and line.startswith(TELEGRAM_STAND_IN)]
    assert [line for line in calls if '" 200 ' in line], calls
    # The bot's log is JSON, one object a line, in a real process too.
    lines = log_path.read_text("utf-8").splitlines()
    assert lines and all(json.loads(line)["level"] for line in lines), lines[:5]
    assert any("webhook set" in json.loads(line)["message"] for line in lines)
    assert sandbox.world.violations == [], sandbox.world.violations


# -- Section 9: from an empty server to a district that takes reports ------------------------


def _section(title: str) -> str:
    guide = (ROOT / "docs" / "deployment.md").read_text("utf-8")
    start = guide.index(f"\n## {title}")
    return guide[start:guide.index("\n## ", start + 1)]


async def test_from_an_empty_database_to_the_first_report(tmp_path: Path, catalogs) -> None:
    """Section 9 of the guide, step by step, as an operator runs it: the commands it shows
    against an empty folder, the bot started, the groups bound by the administrator, and a
    resident's report that reaches the grid's group. The sandbox plays Telegram."""
    import aiohttp

    from bot.config import example_config_path
    from bot.sandbox import demo
    from tests.sandbox_client import People, last_id, text_of
    from tests.telegram_fake import load_spec
    from tests.test_cli import write_district
    from tests.test_e2e_sandbox import report

    guide = _section("9. Your district")
    command = "gridgate --config /etc/gridgate/gridgate.toml"

    def shown(*args: str) -> list[str]:
        """The command as the guide shows it (so the guide cannot drift from what runs)."""
        line = f"{command} {' '.join(args)}"
        assert line in guide, f"the guide does not show `{line}`"
        return [*args]

    # 1 and 2: administrators, no demo; the example's categories and desks as they are.
    settings = example_config_path().read_text("utf-8")
    for old, new in (("admins = []", f"admins = [{demo.CENTRE_STAFF}]"),
                     ("demo_district_when_empty = true", "demo_district_when_empty = false")):
        assert new.split("[")[0].split("=")[0].strip() in guide
        assert old in settings
        settings = settings.replace(old, new, 1)
    assert "demo_district_when_empty = false" in guide
    (tmp_path / "gridgate.toml").write_text(settings, "utf-8")
    sandbox = demo.demo_sandbox(demo.new_token(), spec=load_spec(), catalogs=catalogs)
    address = await sandbox.start()
    env = {"TELEGRAM_BOT_TOKEN": sandbox.token, "TELEGRAM_API_BASE_URL": address,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'gridgate.db'}", "PYTHONUNBUFFERED": "1"}
    config = ["--config", "gridgate.toml"]
    bot = None
    try:
        checked = await agridgate(tmp_path, *config, *shown("config", "check"), env=env)
        assert checked.returncode == 0, checked.stderr
        assert f"admins = [{demo.CENTRE_STAFF}]" in checked.stdout
        assert sandbox.token.split(":")[1] not in checked.stdout

        # 3 and 4: the schema, the district, the tree as the guide shows it.
        upgraded = await agridgate(tmp_path, *config, *shown("db", "upgrade"), env=env)
        assert upgraded.returncode == 0, upgraded.stderr
        write_district(tmp_path)
        imported = await agridgate(tmp_path, *config,
                                   *shown("grids", "import", "district.geojson"), env=env)
        assert imported.returncode == 0, imported.stderr
        assert f"# {imported.stdout.strip()}" in guide
        listed = await agridgate(tmp_path, *config, *shown("grids", "list"), env=env)
        tree = guide.split(f"{command} grids list\n", 1)[1].split("   ```", 1)[0]
        assert listed.stdout.splitlines() == [
            line.strip().removeprefix("# ") for line in tree.splitlines()], listed.stdout

        # 5: the bot, as the service starts it.
        assert "systemctl enable --now gridgate" in guide
        log_path = tmp_path / "bot.log"
        with log_path.open("wb") as log:
            bot = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", *config, "run", cwd=tmp_path,
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, env=_environ(env))

        async with aiohttp.ClientSession() as session:
            people = People(session, address)
            # 6: the administrator adds the bot to each group and binds it.
            for chat_id, code in ((demo.CENTRE_GROUP, "JY"), (demo.GRID_GROUP, "JY-HX-01-G1"),
                                  (demo.DESK_GROUP, "legal")):
                assert f"/bind {code} " in guide
                sandbox.people.add_bot(chat_id, demo.CENTRE_STAFF)
                mark = last_id(await people.messages(chat_id))
                await people.say(chat_id, demo.CENTRE_STAFF, f"/bind {code}")
                await people.wait_for(chat_id, lambda m: m["from"]["is_bot"] and m.get(
                    "reply_to_message", {}).get("text", "").startswith("/bind"),
                    f"the answer to /bind {code}", 60, after=mark)
            listed = await agridgate(tmp_path, *config, "grids", "list", env=env)
            assert f"JY  district  锦园区  [group {demo.CENTRE_GROUP}]" in listed.stdout
            assert f"JY-HX-01-G1  grid  花溪一社区第1网格  [group {demo.GRID_GROUP}]" in (
                listed.stdout)

            # 7: a resident reports from inside the grid; the card reaches its group.
            assert "/report" in guide
            number = await report(people, description="花溪路口的路灯坏了三天", photo=False)
            card = await people.wait_for_button(demo.GRID_GROUP, "tk:claim:",
                                                f"the card of {number}")
            assert number in text_of(card)
    finally:
        stopped = None
        if bot is not None:
            if bot.returncode is None:
                bot.send_signal(signal.SIGTERM)
            stopped = await asyncio.wait_for(bot.wait(), 60)
        await sandbox.stop()
    log = (tmp_path / "bot.log").read_text("utf-8")
    assert stopped == 0, log
    assert "Traceback" not in log, log
    assert "the district centre JY has no active group yet" in log  # as step 5 says
    assert sandbox.world.violations == [], sandbox.world.violations
