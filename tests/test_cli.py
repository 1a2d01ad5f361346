"""The `gridgate` command as an operator runs it: real processes, real exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.config import example_config_path, load_config
from bot.sandbox.demo import overlay_path as demo_overlay
from bot.startup import NotMigrated, prepare
from storage import migrate
from storage.db import create_database
from storage.uow import UnitOfWork
from tests.conftest import BACKENDS, PG_URL, pg_schema
from tests.harness import make_config
from tests.sandbox_client import free_port

ROOT = Path(__file__).resolve().parent.parent


def gridgate(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
             config: str | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("TELEGRAM_BOT_TOKEN", "DATABASE_URL", "GRIDGATE_TIMEZONE",
                            "TELEGRAM_API_BASE_URL")}
    environ["PYTHONPATH"] = str(ROOT)
    environ["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'gridgate.db'}"
    environ.update(env or {})
    if config is not None:
        (tmp_path / "gridgate.toml").write_text(config, "utf-8")
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=tmp_path, env=environ,
                          capture_output=True, text=True, timeout=120, check=False)


def test_run_without_a_token_says_how_to_get_one(tmp_path: Path) -> None:
    # DATABASE_URL is set (a deployment): a missing token is a mistake, not a wish to try.
    result = gridgate(tmp_path, "run")
    assert result.returncode == 2
    assert "@BotFather" in result.stderr and "gridgate demo" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_lost_token_on_a_machine_with_data_is_an_error_not_a_demo(tmp_path: Path) -> None:
    (tmp_path / "gridgate.db").write_bytes(b"")  # the quick start's database is here
    result = gridgate(tmp_path, "run", env={"DATABASE_URL": ""})
    assert result.returncode == 2 and "@BotFather" in result.stderr


def test_options_count_before_the_command_too(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text("[general]\ndemo_district_when_empty = false\n")
    for args in (("--config", "empty.toml", "grids", "list"),
                 ("grids", "list", "--config", "empty.toml")):
        result = gridgate(tmp_path, *args)
        assert result.returncode == 0, result.stderr
        assert "the org tree is empty" in result.stdout, args


@pytest.mark.parametrize(("config", "env", "expected"), [
    ("[timings.claim]\nremind_after = \"30x\"\n", {}, 'timings.claim.remind_after: "30x"'),
    ("[general\n", {}, "line 1"),
    ("", {"GRIDGATE_TIMEZONE": "Mars/Base"}, "GRIDGATE_TIMEZONE"),
    ("", {"DATABASE_URL": "mysql://x@y/z"}, "DATABASE_URL"),
])
def test_a_bad_config_is_one_clear_message_and_exit_2(tmp_path: Path, config: str,
                                                      env: dict[str, str],
                                                      expected: str) -> None:
    result = gridgate(tmp_path, "grids", "list", config=config, env=env)
    assert result.returncode == 2, result
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def load_demo(tmp_path: Path) -> None:
    """The database as `gridgate run` leaves it on its first start: migrated, with the demo
    district in it (the example's demo_district_when_empty) and the example's desks."""
    async def start() -> None:
        db = create_database(f"sqlite+aiosqlite:///{tmp_path / 'gridgate.db'}")
        try:
            await prepare(db, load_config(example_config_path(), {}), FakeClock())
        finally:
            await db.dispose()
    asyncio.run(start())


def test_grids_list_locate_and_db_upgrade_on_the_demo(tmp_path: Path) -> None:
    load_demo(tmp_path)
    listing = gridgate(tmp_path, "grids", "list")
    assert listing.returncode == 0, listing.stderr
    assert "SFQ-DH-01-G1  grid  东湖一社区第1网格" in listing.stdout
    assert "legal  desk" in listing.stdout
    found = gridgate(tmp_path, "grids", "locate", "31.23", "121.42")
    assert found.returncode == 0
    assert found.stdout.strip() == ("示范区 (SFQ) / 东湖街道 (SFQ-DH) / 东湖第一社区 (SFQ-DH-01) / "
                                    "东湖一社区第1网格 (SFQ-DH-01-G1)")
    missing = gridgate(tmp_path, "grids", "locate", "31.22", "121.30")
    assert missing.returncode == 1 and "no grid contains" in missing.stdout
    upgrade = gridgate(tmp_path, "db", "upgrade")
    assert upgrade.returncode == 0
    assert f"revision {migrate.head_revision()}" in upgrade.stdout
    # What an operator reads is gridgate's, not Alembic's chatter or the bot's warnings.
    for result in (listing, found, upgrade):
        assert "alembic" not in result.stderr and "district centre" not in result.stderr


def test_reading_commands_create_migrate_and_load_nothing(tmp_path: Path) -> None:
    database = tmp_path / "gridgate.db"
    for args in (("grids", "list"), ("grids", "locate", "31.23", "121.42"), ("admin", "log"),
                 ("config", "check")):
        result = gridgate(tmp_path, *args)
        assert result.returncode in (0, 1), (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert not database.exists(), f"`gridgate {' '.join(args)}` created the database"
    listing = gridgate(tmp_path, "grids", "list")
    assert "the org tree is empty" in listing.stdout
    assert "holds nothing yet" in listing.stderr and "grids import" in listing.stderr

    # A migrated database stays empty: listing it does not load the demo district.
    assert gridgate(tmp_path, "db", "upgrade").returncode == 0
    listing = gridgate(tmp_path, "grids", "list")
    assert listing.returncode == 0 and "the org tree is empty" in listing.stdout

    # An older schema is not upgraded behind the operator's back, nor read wrongly.
    older = tmp_path / "older"
    older.mkdir()
    assert gridgate(older, "db", "upgrade").returncode == 0
    asyncio.run(_downgrade(older / "gridgate.db", "0005"))
    refused = gridgate(older, "grids", "list")
    assert refused.returncode == 2, refused
    assert "older than this gridgate" in refused.stderr
    assert "gridgate db upgrade" in refused.stderr
    assert asyncio.run(_revision(older / "gridgate.db")) == "0005"


async def _downgrade(path: Path, revision: str) -> None:
    from alembic import command
    from sqlalchemy import text

    db = create_database(f"sqlite+aiosqlite:///{path}")
    try:
        # Only the recorded revision: enough for the command to see an older schema.
        async with db.engine.begin() as connection:
            await connection.execute(text("UPDATE alembic_version SET version_num = :r"),
                                     {"r": revision})
    finally:
        await db.dispose()
    assert command  # the real downgrade is not what is under test


async def _revision(path: Path) -> str | None:
    db = create_database(f"sqlite+aiosqlite:///{path}")
    try:
        return await migrate.current_revision(db)
    finally:
        await db.dispose()


# A district of the operator's own, over the same ground as the demo's first grid.
def district(code: str = "JY") -> dict:
    def square(west: float, east: float) -> dict:
        return {"type": "Polygon", "coordinates": [[[west, 31.21], [east, 31.21], [east, 31.24],
                                                    [west, 31.24], [west, 31.21]]]}

    def feature(suffix: str, name: str, level: str, parent: str | None, shape: dict) -> dict:
        return {"type": "Feature", "geometry": shape, "properties": {
            "code": code + suffix, "name": name, "level": level,
            "parent": None if parent is None else code + parent}}

    return {"type": "FeatureCollection", "features": [
        feature("", "锦园区", "district", None, square(121.40, 121.45)),
        feature("-HX", "花溪街道", "street", "", square(121.40, 121.45)),
        feature("-HX-01", "花溪第一社区", "community", "-HX", square(121.40, 121.45)),
        feature("-HX-01-G1", "花溪一社区第1网格", "grid", "-HX-01", square(121.40, 121.425)),
        feature("-HX-01-G2", "花溪一社区第2网格", "grid", "-HX-01", square(121.425, 121.45)),
    ]}


def write_district(folder: Path, name: str = "district.geojson", code: str = "JY") -> str:
    (folder / name).write_text(json.dumps(district(code), ensure_ascii=False), "utf-8")
    return name


def test_importing_a_district_replaces_the_untouched_demo(tmp_path: Path) -> None:
    load_demo(tmp_path)  # the bot was started once, as the quick start does
    result = gridgate(tmp_path, "grids", "import", write_district(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "replaced the demo district SFQ (19 places, never used)" in result.stdout
    assert "5 created" in result.stdout
    assert "demo_district_when_empty = false" in result.stderr  # or it comes back
    listing = gridgate(tmp_path, "grids", "list").stdout.splitlines()
    assert listing[0] == "JY  district  锦园区"
    assert "SFQ" not in "\n".join(listing)
    assert "  legal  desk  公共法律服务" in listing  # the desks hang under the new district
    located = gridgate(tmp_path, "grids", "locate", "31.228", "121.42")
    assert located.stdout.strip().endswith("花溪一社区第1网格 (JY-HX-01-G1)")
    log = gridgate(tmp_path, "admin", "log").stdout
    assert '"replaced_demo": "SFQ"' in log

    # Into a database that has nothing yet, the demo is never loaded on the way.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    first = gridgate(fresh, "grids", "import", write_district(fresh))
    assert first.returncode == 0, first.stderr
    assert "replaced" not in first.stdout and "5 created" in first.stdout


def test_a_file_that_cannot_be_read_leaves_no_database_behind(tmp_path: Path) -> None:
    # A gridgate.db left in the folder would make `gridgate run` without a token refuse
    # instead of starting the demo.
    result = gridgate(tmp_path, "grids", "import", "distrct.geojson")
    assert result.returncode == 2
    assert result.stderr == ("gridgate: distrct.geojson: cannot read it (No such file or "
                             "directory)\n"), result.stderr
    assert not (tmp_path / "gridgate.db").exists()


def test_a_used_demo_or_another_district_is_kept_and_the_way_out_said(tmp_path: Path) -> None:
    load_demo(tmp_path)

    async def bind_a_group() -> None:
        from storage.models import GroupChat

        db = create_database(f"sqlite+aiosqlite:///{tmp_path / 'gridgate.db'}")
        try:
            async with UnitOfWork(db) as uow:
                node = await uow.nodes.by_code("SFQ-DH-01-G1")
                now = FakeClock().now()
                uow.groups.add(GroupChat(chat_id=-100123, title="网格群", chat_type="supergroup",
                                         node_id=node.id, active=True, bound_at=now,
                                         created_at=now, updated_at=now))
                await uow.commit()
        finally:
            await db.dispose()

    asyncio.run(bind_a_group())
    used = gridgate(tmp_path, "grids", "import", write_district(tmp_path))
    assert used.returncode == 2
    assert "demo district 'SFQ', which has been used (1 bound groups)" in used.stderr
    assert "new database" in used.stderr and "Traceback" not in used.stderr
    assert gridgate(tmp_path, "grids", "list").stdout.startswith("SFQ  district")

    mine = tmp_path / "mine"
    mine.mkdir()
    assert gridgate(mine, "grids", "import", write_district(mine)).returncode == 0
    other = gridgate(mine, "grids", "import", write_district(mine, "other.geojson", "QT"))
    assert other.returncode == 2
    assert "already holds the district 'JY'" in other.stderr
    assert "new database" in other.stderr


def test_database_failures_are_one_line_and_exit_2(tmp_path: Path) -> None:
    closed = free_port()
    cases = [
        (f"postgresql://gridgate:s3cret@127.0.0.1:{closed}/gridgate", "connection refused"),
        ("postgresql://gridgate:s3cret@nowhere.invalid:5432/gridgate", "is not known (DNS)"),
        (f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'x.db'}", "there is no folder"),
    ]
    if "postgresql" in BACKENDS:
        server = PG_URL.rsplit("/", 1)[0]
        cases.append((f"{server}/gridgate_missing_{os.getpid()}", "does not exist"))
    imported = write_district(tmp_path)
    for url, expected in cases:
        for args in (("db", "upgrade"), ("grids", "import", imported),
                     ("export", "tickets", "--from", "2026-01-01", "--to", "2026-01-02")):
            result = gridgate(tmp_path, *args, env={"DATABASE_URL": url})
            assert result.returncode == 2, (url, args, result.stderr)
            lines = result.stderr.splitlines()
            assert len(lines) == 1 and expected in lines[0], (url, args, result.stderr)
            assert "s3cret" not in result.stderr


def test_run_on_a_database_it_cannot_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """Not 2: starting again may work once the database is back, and a supervisor (the
    demo's) takes 2 for a configuration that never will."""
    url = f"postgresql://gridgate:s3cret@127.0.0.1:{free_port()}/gridgate"
    result = gridgate(tmp_path, "run", env={"DATABASE_URL": url,
                                            "TELEGRAM_BOT_TOKEN": "123456789:AAEsecret"})
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "connection refused" in lines[0], result.stderr
    assert "s3cret" not in result.stderr


def test_only_the_databases_own_failures_are_blamed_on_it() -> None:
    from bot.startup import database_failure

    # An unreadable file is not "the database cannot be used".
    assert database_failure(PermissionError(13, "Permission denied"), "sqlite:///x.db") is None


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`gridgate grids list | head -1`: the reader goes before gridgate has written."""
    load_demo(tmp_path)
    read, write = os.pipe()
    os.close(read)  # nobody will read: every write fails with EPIPE
    environ = {**os.environ, "PYTHONPATH": str(ROOT),
               "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'gridgate.db'}"}
    try:
        result = subprocess.run([sys.executable, "-m", "bot", "grids", "list"], cwd=tmp_path,
                                env=environ, stdout=write, stderr=subprocess.PIPE, text=True,
                                timeout=120, check=False)
    finally:
        os.close(write)
    assert result.stderr == ""
    # As a process killed by SIGPIPE: not 2, which `set -o pipefail` would take for misuse.
    assert result.returncode == 141


def test_version_and_config_check(tmp_path: Path) -> None:
    from importlib.metadata import version

    shown = gridgate(tmp_path, "--version")
    assert shown.returncode == 0 and shown.stdout.strip() == f"gridgate {version('gridgate')}"

    overlay = tmp_path / "mine.toml"
    overlay.write_text('[general]\nadmins = [42]\n\n[limits]\nmax_photos = 3\n', "utf-8")
    token = "123456789:AAEsecretsecretsecret"
    result = gridgate(tmp_path, "--config", str(example_config_path()), "--config",
                      str(overlay), "config", "check",
                      env={"TELEGRAM_BOT_TOKEN": token, "DATABASE_URL":
                           "postgresql://gridgate:s3cret@db.internal:5432/gridgate"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    tomllib.loads(out)  # TOML: a line can be copied into gridgate.toml as it is
    assert re.search(r'^admins = \[42\] +# .*mine\.toml$', out, re.M)
    assert re.search(r'^max_photos = 3 +# .*mine\.toml$', out, re.M)
    assert re.search(r'^tickets_per_hour = 5 +# .*gridgate\.example\.toml$', out, re.M)
    assert re.search(r'^token = "\(set, not shown\)" +# \$TELEGRAM_BOT_TOKEN$', out, re.M)
    assert re.search(r'^url = "postgresql\+asyncpg://gridgate:\*\*\*@db\.internal:5432/'
                     r'gridgate" +# \$DATABASE_URL$', out, re.M)
    assert re.search(r'^# url is not set +# default$', out, re.M)  # [webhook]
    assert re.search(r"^# \[\[categories\]\]: 15 \(neighbour_dispute, ", out, re.M)
    assert token.split(":")[1] not in out + result.stderr and "s3cret" not in out

    alone = gridgate(tmp_path, "--config", str(demo_overlay()), "config", "check")
    assert alone.returncode == 2
    assert "no [[categories]]" in alone.stderr


def test_config_check_shows_no_secret_of_a_url(tmp_path: Path) -> None:
    # The bot takes Telegram's calls at the webhook URL's path, which may be the secret that
    # keeps others from posting updates (PTB's examples put the token there).
    hook = "https://bot.example.org:8443/telegram/hook-s3cret?x=y"
    result = gridgate(tmp_path, "config", "check", env={"GRIDGATE_WEBHOOK_URL": hook})
    assert result.returncode == 0, result.stderr
    assert re.search(r'^url = "https://bot\.example\.org:8443/\*\*\*" +# '
                     r'\$GRIDGATE_WEBHOOK_URL$', result.stdout, re.M), result.stdout
    assert "s3cret" not in result.stdout + result.stderr

    # Whatever else is a URL never shows a user name or password; the checks refuse them in
    # the Bot API's address today, and the listing must not rely on that.
    from bot.config_check import _value

    assert _value("telegram.api_base_url", "https://gg:s3cret@bot-api.example.org") == (
        '"https://***@bot-api.example.org"')
    assert _value("somewhere.url", "http://gg:s3cret@example.org/path") == (
        '"http://***@example.org/path"')
    assert _value("telegram.api_base_url", "https://api.telegram.org") == (
        '"https://api.telegram.org"')


def test_run_refuses_a_configuration_without_categories(tmp_path: Path) -> None:
    """The demo's overlay given alone replaces the whole configuration: a bot whose /report
    offers only Cancel must not start as if all were well."""
    result = gridgate(tmp_path, "--config", str(demo_overlay()), "run",
                      env={"TELEGRAM_BOT_TOKEN": "123456789:AAEsecretsecretsecret"})
    assert result.returncode == 2
    assert "no [[categories]]" in result.stderr
    assert f"--config WHOLE.toml --config {demo_overlay()} run" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "gridgate.db").exists()


def test_grids_import_reports_every_problem_and_writes_nothing(tmp_path: Path) -> None:
    demo = json.loads((resources.files("bot") / "data" / "demo_district.geojson")
                      .read_text("utf-8"))
    demo["features"][4]["properties"]["parent"] = "NOWHERE"
    demo["features"][6]["geometry"] = {"type": "Polygon", "coordinates": [[
        [121.40, 31.20], [121.41, 31.21], [121.41, 31.20], [121.40, 31.21], [121.40, 31.20]]]}
    (tmp_path / "bad.geojson").write_text(json.dumps(demo, ensure_ascii=False), "utf-8")
    result = gridgate(tmp_path, "grids", "import", "bad.geojson",
                      config="[general]\ndemo_district_when_empty = false\n")
    assert result.returncode == 2
    assert "nothing imported" in result.stderr
    assert "feature 4" in result.stderr and "NOWHERE" in result.stderr
    assert "feature 6" in result.stderr and "elf-intersection" in result.stderr
    assert "Traceback" not in result.stderr
    listing = gridgate(tmp_path, "grids", "list")
    assert "the org tree is empty" in listing.stdout

    good = json.loads((resources.files("bot") / "data" / "demo_district.geojson")
                      .read_text("utf-8"))
    (tmp_path / "good.geojson").write_text(json.dumps(good, ensure_ascii=False), "utf-8")
    first = gridgate(tmp_path, "grids", "import", "good.geojson")
    assert first.returncode == 0 and "19 created" in first.stdout
    again = gridgate(tmp_path, "grids", "import", "good.geojson")
    assert "0 created, 0 updated, 19 unchanged" in again.stdout
    unreadable = tmp_path / "notes.txt"
    unreadable.write_text("hello", "utf-8")
    odd = gridgate(tmp_path, "grids", "import", "notes.txt")
    assert odd.returncode == 2 and "Traceback" not in odd.stderr


@pytest.mark.skipif("postgresql" not in BACKENDS, reason="PostgreSQL deselected")
async def test_postgresql_must_be_upgraded_deliberately() -> None:
    async with pg_schema() as db:
        with pytest.raises(NotMigrated, match="gridgate db upgrade"):
            await prepare(db, make_config(), FakeClock())


def test_the_bots_own_process_freezes_what_start_up_built() -> None:
    """gridgate run settles its garbage collection once started (bot.serve): what start-up
    built is frozen, and the youngest objects are collected less often. Checked in a process
    of its own: the tests' own process is left as it is."""
    code = ("import gc\n"
            "import bot.app\n"
            "from bot.serve import YOUNG_COLLECTION_EVERY, settle_garbage_collection\n"
            "before = gc.get_threshold()\n"
            "settle_garbage_collection()\n"
            "assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()\n"
            "assert gc.get_threshold() == (YOUNG_COLLECTION_EVERY, *before[1:])\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1],
                   timeout=60)
