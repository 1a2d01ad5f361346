"""An online backup of the SQLite database: a consistent copy taken while the bot runs.

SQLite's backup API (``sqlite3.Connection.backup``) copies the database page by page inside one
read transaction. In WAL mode, which gridgate uses, a reader does not block the writer, so the
bot goes on handling updates meanwhile, and the copy is the database as it stood when the
backup began: every transaction committed by then, none after. (Copying the file with ``cp``
instead can tear a transaction in half, and misses whatever still sits in ``gridgate.db-wal``.)

PostgreSQL is backed up with its own tools (``pg_dump -Fc``); see docs/deployment.md.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(Exception):
    """The backup cannot be made; the message says why, for the operator."""


@dataclass(frozen=True)
class BackupReport:
    source: Path
    target: Path
    size: int  # bytes
    revision: str | None  # the schema's Alembic revision in the copy
    tickets: int | None
    seconds: float


def sqlite_path(url: str) -> Path | None:
    """The database file a SQLite URL names; None for any other database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("the database is in memory; there is nothing to back up")
    return Path(parsed.database)


def backup_sqlite(source: Path, target: Path, *, busy_timeout_ms: int = 5000,
                  now: datetime | None = None) -> BackupReport:
    """Copy ``source`` to ``target`` (a new file, or a folder to put
    ``gridgate-YYYYMMDD-HHMMSS.db`` in), checked and complete, or raise ``BackupError``.

    The copy is written beside its final name and renamed when it is whole, so a half-made
    backup never stands under the name; it is readable by its owner only (it holds personal
    data) and in rollback-journal mode, a single file that needs no ``-wal`` beside it."""
    started = time.monotonic()
    if not source.is_file():
        raise BackupError(f"{source}: no such database file (is [database] url right?)")
    if target.is_dir():
        stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%d-%H%M%S")
        target = target / f"gridgate-{stamp}.db"
    if target.exists():
        raise BackupError(f"{target} already exists; give a new name, or remove it first")
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent}: no such folder")
    partial = target.with_name(f".{target.name}.partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BackupError(f"{partial} exists: another backup to {target} is under way, or "
                          "one was interrupted (then remove it)") from None
    except OSError as exc:
        raise BackupError(f"cannot write {target}: {exc.strerror}") from None
    os.close(fd)
    try:
        revision, tickets = _copy(source, partial, busy_timeout_ms)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return BackupReport(source=source, target=target, size=target.stat().st_size,
                        revision=revision, tickets=tickets,
                        seconds=time.monotonic() - started)


def _copy(source: Path, partial: Path, busy_timeout_ms: int) -> tuple[str | None, int | None]:
    # Read-only: a wrong path must not leave a new, empty database behind.
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True,
                          timeout=busy_timeout_ms / 1000)
    try:
        dst = sqlite3.connect(partial)
        try:
            try:
                src.backup(dst)  # all pages in one step: one read transaction, one snapshot
            except sqlite3.Error as exc:
                raise BackupError(f"{source}: the backup failed: {exc}") from None
            dst.execute("PRAGMA journal_mode=DELETE")
            problems = [row[0] for row in dst.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise BackupError(f"the copy of {source} fails SQLite's integrity check: "
                                  + "; ".join(problems[:5]))
            revision = _scalar(dst, "SELECT version_num FROM alembic_version")
            tickets = _scalar(dst, "SELECT count(*) FROM ticket")
        finally:
            dst.close()
    finally:
        src.close()
    with partial.open("rb+") as f:
        os.fsync(f.fileno())
    return revision, tickets


def _scalar(conn: sqlite3.Connection, sql: str):
    try:
        row = conn.execute(sql).fetchone()
    except sqlite3.OperationalError:  # no such table: not (yet) a gridgate database
        return None
    return row[0] if row else None
