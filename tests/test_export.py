"""`gridgate export tickets` and `gridgate admin log`: the rows and their fields on both
databases (local days, `--to` included, no personal data unless asked, Excel-safe CSV), and
the commands as an operator runs them (exit codes, messages, the log of every export)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.services import export, tickets
from bot.services.tickets import NewReport
from bot.startup import prepare
from storage.models import TicketSurvey
from storage.uow import UnitOfWork
from tests.harness import make_config
from tests.test_cli import gridgate

REPORTER = 100_901
NASTY = "=HYPERLINK(\"http://x\",\"点我\")"


async def _ticket(uow, config, clock: FakeClock, *, at: datetime, description: str = "路灯坏了",
                  address: str | None = "东湖路 1 号", scores: tuple[int, ...] = ()) -> int:
    clock.set(at)
    grid = await uow.nodes.by_code("SFQ-DH-01-G1")
    ticket = await tickets.create(uow, clock, config, NewReport(
        category=config.category("sanitation"), description=description,
        reporter_id=REPORTER, language="zh_Hans", grid_id=grid.id, address=address,
        latitude=31.2301, longitude=121.4202, reporter_name="张三",
        reporter_phone="13812345678"))
    for n, score in enumerate(scores):
        uow.session.add(TicketSurvey(ticket_id=ticket.id, user_id=REPORTER + n, round=n,
                                     status="answered", solved=True, score=score,
                                     created_at=at, answered_at=at))
    return ticket.id


async def _export(uow, config, first: str, last: str, fmt: str, *,
                  with_text: bool = False) -> bytes:
    out = io.BytesIO()
    writer = export.Writer(out, fmt, with_text=with_text)
    async for row in export.rows(uow, config, export.parse_range(first, last),
                                 with_text=with_text):
        writer.write(row)
    return out.getvalue()


async def test_rows_cover_local_days_with_the_last_included_and_no_personal_data(db) -> None:
    config = make_config()
    clock = FakeClock()
    await prepare(db, config, clock)
    async with UnitOfWork(db) as uow:
        # 2026-11-23 23:30 and 2026-11-24 00:10 in Shanghai, and one on the 25th.
        await _ticket(uow, config, clock, at=datetime(2026, 11, 23, 15, 30, tzinfo=UTC),
                      scores=(2, 5))
        await _ticket(uow, config, clock, at=datetime(2026, 11, 23, 16, 10, tzinfo=UTC),
                      description=NASTY, address="+86 东湖路")
        await _ticket(uow, config, clock, at=datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
        await uow.commit()

        data = await _export(uow, config, "2026-11-23", "2026-11-24", "csv")
        assert data.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs
        text = data.decode("utf-8-sig")
        assert "\r\n" in text
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [r["created_at"] for r in rows] == ["2026-11-23T23:30:00+08:00",
                                                   "2026-11-24T00:10:00+08:00"]
        assert list(rows[0]) == list(export.FIELDS)
        first = rows[0]
        assert (first["category"], first["status"], first["node_level"], first["grid_code"]) == (
            "sanitation", "open", "grid", "SFQ-DH-01-G1")
        assert first["survey_scores"] == "2;5" and first["survey_mean"] == "3.5"
        assert first["urgent"] == "false" and first["on_time"] == ""
        assert first["deadline_at"].endswith("+08:00")
        for secret in ("张三", "13812345678", str(REPORTER), "路灯", "东湖路", "31.2301"):
            assert secret not in text, secret

        one_day = await _export(uow, config, "2026-11-24", "2026-11-24", "jsonl")
        [line] = one_day.decode("utf-8").splitlines()
        assert json.loads(line)["created_at"] == "2026-11-24T00:10:00+08:00"
        assert json.loads(line)["survey_scores"] == [] and "description" not in json.loads(line)

        # Free text only when asked, and formulas defused in CSV (not in JSON Lines).
        with_text = (await _export(uow, config, "2026-11-23", "2026-11-24", "csv",
                                   with_text=True)).decode("utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(with_text)))
        assert rows[1]["description"] == "'" + NASTY and rows[1]["address"] == "'+86 东湖路"
        assert rows[0]["description"] == "路灯坏了"
        assert "13812345678" not in with_text and "张三" not in with_text
        lines = (await _export(uow, config, "2026-11-24", "2026-11-24", "jsonl",
                               with_text=True)).decode().splitlines()
        assert json.loads(lines[0])["description"] == NASTY


@pytest.mark.parametrize("value, cell", [
    ("=1+2", "'=1+2"), ("+1", "'+1"), ("-x", "'-x"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("plain", "plain"), ("", ""), (None, ""),
    (True, "true"), (False, "false"), ([5, 3], "5;3"), (-2, "-2"), (3.5, "3.5"),
])
def test_cells_are_safe_for_spreadsheets(value, cell) -> None:
    assert export.safe_cell(value) == cell


@pytest.mark.parametrize("first, last, problem", [
    ("2026-13-01", "2026-12-01", "--from: '2026-13-01' is not a date"),
    ("yesterday", "2026-12-01", "--from: 'yesterday' is not a date"),
    ("2026-12-01", "2026-12-1", "--to: '2026-12-1' is not a date"),
    ("2026-12-02", "2026-12-01", "--from 2026-12-02 is after --to 2026-12-01"),
])
def test_bad_ranges_are_refused_with_what_is_wrong(first, last, problem) -> None:
    with pytest.raises(export.ExportError) as refused:
        export.parse_range(first, last)
    assert problem in str(refused.value)


def test_the_commands_as_an_operator_runs_them(tmp_path: Path) -> None:
    for args, message in ((("--from", "2026-02-30", "--to", "2026-03-01"),
                           "gridgate: --from: '2026-02-30' is not a date (use YYYY-MM-DD)"),
                          (("--from", "2026-03-02", "--to", "2026-03-01"),
                           "gridgate: --from 2026-03-02 is after --to 2026-03-01")):
        result = gridgate(tmp_path, "export", "tickets", *args)
        assert result.returncode == 2, result
        assert result.stderr.strip() == message and result.stdout == ""
    result = gridgate(tmp_path, "export", "tickets", "--from", "2026-03-01", "--to",
                      "2026-03-01", "--format", "xlsx")
    assert result.returncode == 2 and "invalid choice: 'xlsx'" in result.stderr

    target = tmp_path / "out.csv"
    result = gridgate(tmp_path, "export", "tickets", "--from", "2026-03-01", "--to",
                      "2026-03-31", "--output", str(target))
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == b"\xef\xbb\xbf" + ",".join(export.FIELDS).encode() + b"\r\n"
    assert "exported 0 tickets" in result.stderr
    stdout = gridgate(tmp_path, "export", "tickets", "--from", "2026-03-01", "--to",
                      "2026-03-31", "--format", "jsonl", "--with-text")
    assert stdout.returncode == 0 and stdout.stdout == ""

    (tmp_path / "tree.csv").write_text(
        "code,name,name_zh_hant,name_en,level,parent\nSFQ,示范区,,,district,\n", "utf-8")
    imported = gridgate(tmp_path, "grids", "import", "tree.csv")
    assert imported.returncode == 0, imported.stderr

    log = gridgate(tmp_path, "admin", "log")
    assert log.returncode == 0, log.stderr
    lines = log.stdout.splitlines()
    assert [line.split("  ")[2] for line in lines] == ["tickets_export", "tickets_export",
                                                       "grids_import"]
    assert "cli:" in lines[0] and "2026-03-01..2026-03-31" in lines[0]
    assert '"with_text": true' in lines[1] and '"to": "stdout"' in lines[1]
    assert '"format": "csv"' in lines[0] and '"to": "file"' in lines[0]
    as_json = gridgate(tmp_path, "admin", "log", "--json", "--limit", "1")
    [entry] = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert (entry["action"], entry["target"]) == ("grids_import", "tree.csv")
    # The export loaded nothing into the new database: the import created the district.
    assert (entry["details"]["created"], entry["details"]["updated"]) == (1, 0)

    future = gridgate(tmp_path, "admin", "log", "--since", "2999-01-01")
    assert future.returncode == 0 and future.stdout.strip() == "no admin actions since 2999-01-01"
    for bad in (("--since", "soon"), ("--limit", "0")):
        refused = gridgate(tmp_path, "admin", "log", *bad)
        assert refused.returncode == 2 and refused.stderr.startswith("gridgate: "), bad
        assert "Traceback" not in refused.stderr

