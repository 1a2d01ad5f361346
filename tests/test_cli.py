"""The `gridgate` command as an operator runs it: real processes, real exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.startup import NotMigrated, prepare
from storage import migrate
from tests.conftest import BACKENDS, pg_schema
from tests.harness import make_config

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


def test_grids_list_locate_and_db_upgrade_on_the_demo(tmp_path: Path) -> None:
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
