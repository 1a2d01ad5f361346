"""The `gridgate` command: run the bot, migrate the database, manage the org tree."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from bot.clock import SystemClock
from bot.config import Config, ConfigError, load_config, startup_problems
from bot.i18n import LANGUAGES, Catalogs, Translator
from bot.logs import configure_logging
from bot.sandbox.apispec import BUNDLED_SPEC
from bot.services import audit, export, grids, poster
from bot.services.orgtree import ImportFileError, parse_file
from bot.startup import (
    StartupError,
    database_failure,
    open_database,
    open_for_reading,
    prepare,
    where,
)
from storage import migrate
from storage.uow import UnitOfWork

EXIT_USAGE = 2
# What a shell reports for a process killed by SIGPIPE (128 + 13).
EXIT_BROKEN_PIPE = 141
NO_TOKEN_HELP = """\
gridgate: no Telegram bot token is configured.

To run against Telegram: talk to @BotFather in Telegram, send /newbot, and put the token it gives
you in the environment (TELEGRAM_BOT_TOKEN=123456:ABC... gridgate run) or in gridgate.toml
under [telegram] token = "...".

To try the bot without Telegram, run `gridgate demo`: it starts a local Bot API sandbox with a
page in the browser and the bot against it."""
DEMO_INSTEAD = """\
gridgate: no Telegram bot token is set, so this starts the demo: the bot against a local Bot API
sandbox (see `gridgate demo --help`). Set TELEGRAM_BOT_TOKEN to run against Telegram."""


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    # Given before or after the command (`gridgate --config A run` or `gridgate run --config
    # A`); defaults set on the shared options would let the command's copy erase the other.
    args.config = getattr(args, "config", None)
    args.verbose = getattr(args, "verbose", False)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        # Plainly, whatever log format the (broken) file asks for: this is for a person.
        print(f"gridgate: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    _configure_logging(config, args.verbose)
    sys.exit(_call(args.handler, config, args))


def _call(handler: Callable[[Config, argparse.Namespace], int],
          config: Config, args: argparse.Namespace) -> int:
    """Run the command; whatever goes wrong is one line for the operator and exit status 2
    (the whole traceback with -v), never a page of traceback. `gridgate run` is a service,
    though: an unexpected failure of it is logged with its traceback (see _service_failure)."""
    try:
        status = handler(config, args) or 0
        sys.stdout.flush()  # here, where a closed pipe can still be caught
        return status
    except KeyboardInterrupt:
        return 130
    except StartupError as exc:
        print(f"gridgate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # `gridgate grids list | head`: the reader took what it wanted and closed the pipe,
        # which is no failure of the command. Nothing to say; point standard output at nothing
        # so the flush at exit is quiet, and exit as a process killed by SIGPIPE would (as
        # other tools do), not with 2, which `set -o pipefail` scripts would take for misuse.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        if args.handler is _run:
            return _service_failure(exc, config)
        why = database_failure(exc, config.database.url)
        if why is None:
            why = _failed(exc)
            if not args.verbose:
                why += " (gridgate -v ... shows where)"
        print(f"gridgate: {why}", file=sys.stderr)
        logging.getLogger(__name__).debug("the failure in full", exc_info=True)
        return EXIT_USAGE


def _failed(exc: BaseException) -> str:
    said = str(exc).strip().splitlines()
    return f"failed: {type(exc).__name__}" + (f": {said[0]}" if said else "")


def _service_failure(exc: Exception, config: Config) -> int:
    """`gridgate run` stopped by an exception: it runs unattended, and a crash that happened
    once at night must be diagnosable from the journal afterwards, so an unexpected one is
    logged with its traceback (through the configured logging: JSON logs stay JSON), then
    the one-line summary. A database that cannot be used is expected, and stays one line.
    Status 1, not 2: starting again may well work (systemd's Restart=on-failure, the demo's
    supervisor), where 2 says the configuration is wrong."""
    log = logging.getLogger(__name__)
    why = database_failure(exc, config.database.url)
    if why is None:
        log.error("gridgate stopped on an unexpected error", exc_info=exc)
        why = _failed(exc)
    log.error("%s", why)
    return 1


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, action="append", default=argparse.SUPPRESS,
                        metavar="PATH",
                        help="configuration file (default: ./gridgate.toml, else the example); "
                             "repeat it to lay files over each other")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log more")
    parser = argparse.ArgumentParser(prog="gridgate", parents=[common],
                                     description="网格通 — grid-based community governance bot")
    parser.add_argument("--version", action="version", version=f"gridgate {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", parents=[common], help="run the bot (long polling, or webhook "
                         "mode); without a token and a deployment's settings, the demo")
    run.add_argument("--webhook", action="store_true",
                     help="take updates by webhook at [webhook] url (as [webhook] enabled = "
                          "true does)")
    run.add_argument("--listen", metavar="ADDRESS",
                     help="address of the bot's HTTP server (default: [server] listen)")
    run.add_argument("--port", type=int, metavar="N",
                     help="port of the bot's HTTP server (default: [server] port; 0: any free "
                          "port)")
    run.set_defaults(handler=_run)

    demo = sub.add_parser(
        "demo", parents=[common],
        help="try gridgate without Telegram: a local Bot API sandbox and its page, with the "
             "bot running against it",
        description="Starts a local Bot API server with a web page of chats (a resident, an "
                    "enterprise contact, a grid workers' group, the legal desk, the district "
                    "centre) and runs the bot against it on its own SQLite database, with the "
                    "demo district and short timers. Open the printed address in a browser.")
    _demo_arguments(demo)
    demo.set_defaults(handler=_demo)

    settings = sub.add_parser("config", parents=[common], help="the configuration")
    settings_sub = settings.add_subparsers(dest="config_command", required=True,
                                           metavar="ACTION")
    settings_sub.add_parser(
        "check", parents=[common],
        help="check it and print the values gridgate would use, with where each came from",
        description="Loads the configuration as `gridgate run` would (the files, then the "
                    "environment), checks it, and prints every value with the file, "
                    "environment variable or default it came from. Secrets are not shown. "
                    "Exit status 2 when the bot would refuse to start with it.",
    ).set_defaults(handler=_config_check)

    db = sub.add_parser("db", parents=[common], help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_sub.add_parser("upgrade", parents=[common], help="apply all migrations").set_defaults(
        handler=_async(_db_upgrade))
    backup = db_sub.add_parser(
        "backup", parents=[common],
        help="copy the SQLite database while the bot runs (PostgreSQL: use pg_dump)",
        description="Writes a consistent copy of the configured SQLite database with SQLite's "
                    "online backup API; the bot may go on running meanwhile. See "
                    "docs/deployment.md for restoring it, and for PostgreSQL.")
    backup.add_argument("path", type=Path,
                        help="the new backup file, or a folder to write "
                             "gridgate-YYYYMMDD-HHMMSS.db in")
    backup.set_defaults(handler=_db_backup)

    grid = sub.add_parser("grids", parents=[common], help="the org tree and grid boundaries")
    grid_sub = grid.add_subparsers(dest="grids_command", required=True, metavar="ACTION")
    imp = grid_sub.add_parser("import", parents=[common],
                              help="import a GeoJSON FeatureCollection or a CSV file")
    imp.add_argument("file", type=Path,
                     help="the district's places and grid boundaries (.geojson, .json or .csv; "
                          "the README's \"Import format\" says what they hold)")
    imp.set_defaults(handler=_async(_grids_import))
    grid_sub.add_parser("list", parents=[common], help="print the org tree").set_defaults(
        handler=_async(_grids_list))
    loc = grid_sub.add_parser("locate", parents=[common], help="which grid contains a point")
    loc.add_argument("lat", type=float, help="latitude (WGS84)")
    loc.add_argument("lon", type=float, help="longitude (WGS84)")
    loc.set_defaults(handler=_async(_grids_locate))
    _poster_parser(sub, common)
    _data_rights_parsers(sub, common)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gridgate")
    except PackageNotFoundError:  # a checkout run without installing it
        return "(not installed)"


def _config_check(config: Config, args: argparse.Namespace) -> int:
    from bot.config_check import lines, warnings

    for line in lines(config):
        print(line)
    for warning in warnings(config):
        print(f"gridgate: warning: {warning}", file=sys.stderr)
    problems = startup_problems(config)
    for problem in problems:
        print(f"gridgate: {problem}", file=sys.stderr)
    if problems:
        return EXIT_USAGE
    print(f"gridgate: {config.source}: the configuration is valid", file=sys.stderr)
    return 0


def _configure_logging(config: Config, verbose: bool) -> None:
    # [runtime] log_format and log_level; -v means DEBUG. bot.logs keeps httpx and httpcore
    # (URLs with the token), python-telegram-bot's debug output (whole updates) and
    # APScheduler's every tick out, whatever the level.
    configure_logging(config.runtime.log_format, config.runtime.log_level, verbose,
                      timezone=config.timezone)


def _async(command: Callable[[Config, argparse.Namespace], Awaitable[int]]):
    def handler(config: Config, args: argparse.Namespace) -> int:
        return asyncio.run(command(config, args))
    return handler


async def _with_database(config: Config, body) -> int:
    """A command that writes: the database is brought up to date first (SQLite migrates
    itself; PostgreSQL must be upgraded already) and the desks synced, but never the demo
    district loaded, which would stand in the way of the operator's own."""
    db = open_database(config)
    try:
        await prepare(db, config, SystemClock(), demo=False)
        async with UnitOfWork(db) as uow:
            return await body(uow)
    except StartupError as exc:
        print(f"gridgate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        await db.dispose()


async def _reading(config: Config, body) -> int:
    """A command that only reads: it creates, migrates and loads nothing. ``body`` gets None
    when there is nothing to read yet (no file, no schema)."""
    try:
        db = await open_for_reading(config)
    except StartupError as exc:
        print(f"gridgate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if db is None:
        print(f"gridgate: {where(config.database.url)} holds nothing yet (`gridgate grids "
              "import FILE` brings your district in; `gridgate run` starts the bot)",
              file=sys.stderr)
        return await body(None)
    try:
        async with UnitOfWork(db) as uow:
            return await body(uow)
    finally:
        await db.dispose()


async def _db_upgrade(config: Config, args: argparse.Namespace) -> int:
    db = open_database(config)
    try:
        before = await migrate.current_revision(db)
        await migrate.upgrade(db)
        after = await migrate.current_revision(db)
    finally:
        await db.dispose()
    print(f"database at revision {after}"
          + ("" if before == after else f" (was {before or 'empty'})"))
    return 0


def _db_backup(config: Config, args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url

    from storage.backup import BackupError, backup_sqlite, sqlite_path

    try:
        source = sqlite_path(config.database.url)
        if source is None:
            url = make_url(config.database.url)
            print("gridgate: the database is PostgreSQL, which gridgate does not copy itself; "
                  "back it up with pg_dump, for example:\n"
                  f"  pg_dump -Fc -h {url.host or 'localhost'} -p {url.port or 5432} "
                  f"-U {url.username or 'gridgate'} -d {url.database} -f {args.path}\n"
                  "(see docs/deployment.md)", file=sys.stderr)
            return EXIT_USAGE
        report = backup_sqlite(source, args.path,
                               busy_timeout_ms=config.database.sqlite_busy_timeout_ms)
    except BackupError as exc:
        print(f"gridgate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    tickets = "" if report.tickets is None else f", {report.tickets:,} tickets"
    print(f"backed up {report.source} to {report.target}: {report.size:,} bytes, schema "
          f"revision {report.revision or 'none'}{tickets}, integrity checked "
          f"({report.seconds:.1f}s)")
    return 0


async def _grids_import(config: Config, args: argparse.Namespace) -> int:
    # The file first: a mistyped name must not leave a new database behind (a gridgate.db
    # in the folder makes `gridgate run` without a token refuse instead of starting the demo).
    try:
        parsed = parse_file(args.file)
    except ImportFileError as exc:
        print(f"gridgate: {args.file}: {exc}", file=sys.stderr)
        return EXIT_USAGE

    async def body(uow: UnitOfWork) -> int:
        try:
            report = await grids.import_parsed(uow, SystemClock(), parsed)
        except grids.ImportRejected as exc:
            print(f"gridgate: {args.file}: nothing imported, {len(exc.problems)} problem(s):",
                  file=sys.stderr)
            for problem in exc.problems:
                print(f"  {problem}", file=sys.stderr)
            return EXIT_USAGE
        replaced = report.replaced_demo
        audit.record(uow, SystemClock(), _cli_actor(), "grids_import", target=args.file.name,
                     created=report.created, updated=report.updated,
                     unchanged=report.unchanged,
                     replaced_demo=replaced[0] if replaced else None)
        await uow.commit()
        if replaced:
            print(f"replaced the demo district {replaced[0]} ({replaced[1]} places, never "
                  "used) with the district of the file")
        print(f"imported {args.file}: {report.created} created, {report.updated} updated, "
              f"{report.unchanged} unchanged")
        if replaced and config.demo_district_when_empty:
            print("gridgate: set [general] demo_district_when_empty = false, so that an empty "
                  "database is not given the demo again", file=sys.stderr)
        return 0
    return await _with_database(config, body)


async def _grids_list(config: Config, args: argparse.Namespace) -> int:
    async def body(uow: UnitOfWork | None) -> int:
        nodes = await uow.nodes.all() if uow else []
        groups = {g.node_id: g for g in await uow.groups.bound()} if uow else {}
        children: dict[int | None, list] = {}
        for node in nodes:
            children.setdefault(node.parent_id, []).append(node)

        def show(parent_id: int | None, depth: int) -> None:
            for node in children.get(parent_id, []):
                group = groups.get(node.id)
                bound = "" if group is None else (
                    f"  [group {group.chat_id}{'' if group.active else ', inactive'}]")
                print(f"{'  ' * depth}{node.code}  {node.level}  {node.name}{bound}")
                show(node.id, depth + 1)

        show(None, 0)
        if not nodes:
            print("the org tree is empty; import one with `gridgate grids import FILE`")
        return 0
    return await _reading(config, body)


async def _grids_locate(config: Config, args: argparse.Namespace) -> int:
    async def body(uow: UnitOfWork | None) -> int:
        node = None
        if uow is not None:
            node = await grids.GridDirectory().locate(uow, lat=args.lat, lon=args.lon)
        if uow is None or node is None:
            print(f"no grid contains {args.lat}, {args.lon}")
            return 1
        path = await uow.nodes.path(node)
        print(" / ".join(f"{n.name} ({n.code})" for n in path))
        return 0
    return await _reading(config, body)


def _poster_parser(sub, common: argparse.ArgumentParser) -> None:
    posters = sub.add_parser(
        "poster", parents=[common],
        help="printable A4 posters with a QR code to the web chat, one PDF per place",
        description="Writes CODE.pdf for each place: its name, a QR code that opens the web "
                    "chat at that place ([web] public_url + /chat?at=CODE), that address in "
                    "text, what to report there and the emergency numbers. Needs [web] "
                    "public_url. Reads the org tree only; an unknown code writes nothing.")
    posters.add_argument("codes", nargs="*", metavar="CODE",
                         help="a place's code, as `gridgate grids list` prints it")
    posters.add_argument("--all-grids", action="store_true",
                         help="one poster for every grid of the org tree (with the CODEs, if "
                              "any)")
    posters.add_argument("--out", type=Path, default=Path(), metavar="DIR",
                         help="the folder to write the PDFs in (default: the current one; "
                              "made if missing)")
    posters.add_argument("--lang", choices=LANGUAGES, metavar="LANG",
                         help=f"the posters' language: {', '.join(LANGUAGES)} (default: "
                              "[general] default_language); a place without a name in it "
                              "keeps its Simplified Chinese name")
    posters.set_defaults(handler=_async(_poster))


async def _poster(config: Config, args: argparse.Namespace) -> int:
    if not args.codes and not args.all_grids:
        print("gridgate: poster: give the codes of the places, or --all-grids",
              file=sys.stderr)
        return EXIT_USAGE
    public_url = config.web.public_url
    if not public_url:
        # A code pointing at this machine (or the address it happens to be reached at) would
        # take residents nowhere once it is printed and stuck on a wall.
        print("gridgate: posters point at the web chat's public address, and none is set: "
              "set [web] public_url in gridgate.toml to the https address residents open "
              "(for example public_url = \"https://gridgate.example.gov.cn\")",
              file=sys.stderr)
        return EXIT_USAGE
    if args.out.exists() and not args.out.is_dir():
        print(f"gridgate: --out {args.out}: not a folder", file=sys.stderr)
        return EXIT_USAGE
    language = args.lang or config.default_language
    wanted: list[poster.Poster] = []

    async def body(uow: UnitOfWork | None) -> int:
        nodes = await uow.nodes.all() if uow else []
        by_code = {node.code: node for node in nodes}
        chosen = list(dict.fromkeys(args.codes))
        unknown = [code for code in chosen if code not in by_code]
        desks = [code for code in chosen if code in by_code and by_code[code].level == "desk"]
        if unknown or desks:
            for code in unknown:
                print(f"gridgate: {code!r}: no place has this code (`gridgate grids list` "
                      "prints them)", file=sys.stderr)
            for code in desks:
                print(f"gridgate: {code}: a desk, not a place: residents scan a poster where "
                      "they live", file=sys.stderr)
            print("gridgate: no poster written", file=sys.stderr)
            return EXIT_USAGE
        if args.all_grids:
            grids_in_tree = [node.code for node in nodes if node.level == "grid"]
            if not grids_in_tree:
                print("gridgate: the org tree has no grids; import yours with `gridgate grids "
                      "import FILE`", file=sys.stderr)
                return 1
            chosen += [code for code in grids_in_tree if code not in chosen]
        wanted.extend(poster.Poster(code=code, name=by_code[code].display_name(language),
                                    url=poster.chat_url(public_url, code))
                      for code in chosen)
        return 0

    status = await _reading(config, body)
    if status:
        return status
    # Drawn with the database closed: a district has hundreds of grids.
    return _write_posters(wanted, Catalogs.load()[language], args.out)


def _write_posters(posters: Sequence[poster.Poster], t: Translator, out: Path) -> int:
    """Each poster to out/CODE.pdf, through a temporary file renamed into place, so that a
    failure never leaves half a PDF behind, nor spoils the one printed last time."""
    import tempfile

    out.mkdir(parents=True, exist_ok=True)
    umask = os.umask(0)
    os.umask(umask)
    for one in posters:
        pdf = poster.render_pdf(one, t)
        target = out / f"{one.code}.pdf"
        with tempfile.NamedTemporaryFile(dir=out, prefix=f".{one.code}.", suffix=".tmp",
                                         delete=False) as temporary:
            try:
                temporary.write(pdf)
                temporary.close()
                # As a file the command wrote itself would be (the temporary one is 0600).
                os.chmod(temporary.name, 0o666 & ~umask)
                os.replace(temporary.name, target)
            except BaseException:
                os.unlink(temporary.name)
                raise
        print(target)
    return 0


def _data_rights_parsers(sub, common: argparse.ArgumentParser) -> None:
    """`gridgate export tickets` and `gridgate admin log`."""
    out = sub.add_parser("export", parents=[common], help="data for statistics")
    out_sub = out.add_subparsers(dest="export_command", required=True, metavar="WHAT")
    tickets = out_sub.add_parser(
        "tickets", parents=[common],
        help="tickets created in a range of days, without personal data",
        description="One row per ticket created from --from to --to (local days, both "
                    "included): number, kind, category, status, place codes, timestamps, "
                    "deadline, on-time flags, reopen count, close reason and follow-up "
                    "scores. No Telegram ids, names or phone numbers; free text only with "
                    "--with-text. CSV opens in Excel (UTF-8 with BOM). Every export is "
                    "recorded in the admin action log.")
    tickets.add_argument("--from", dest="first", required=True, metavar="DATE",
                         help="the first day (YYYY-MM-DD, in the configured time zone)")
    tickets.add_argument("--to", dest="last", required=True, metavar="DATE",
                         help="the last day, included")
    tickets.add_argument("--format", choices=export.FORMATS, default="csv",
                         help="csv (default) or jsonl")
    tickets.add_argument("--output", type=Path, metavar="FILE",
                         help="write to FILE (default: standard output)")
    tickets.add_argument("--with-text", action="store_true",
                         help="add the residents' descriptions and addresses and the "
                              "resolution notes, which may name people")
    tickets.set_defaults(handler=_async(_export_tickets))

    admin = sub.add_parser("admin", parents=[common], help="the admin action log")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True, metavar="ACTION")
    log = admin_sub.add_parser("log", parents=[common],
                               help="who did what to the data, oldest first")
    log.add_argument("--since", metavar="DATE", help="from this local day on (YYYY-MM-DD)")
    log.add_argument("--limit", type=int, metavar="N", help="only the latest N entries")
    log.add_argument("--json", action="store_true", help="one JSON object per line")
    log.set_defaults(handler=_async(_admin_log))


def _cli_actor() -> audit.Actor:
    """Who runs the command, for the admin action log: the operating-system account."""
    import getpass

    try:
        return audit.Actor.cli(getpass.getuser())
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return audit.Actor.cli(None)


async def _export_tickets(config: Config, args: argparse.Namespace) -> int:
    try:
        span = export.parse_range(args.first, args.last)
    except export.ExportError as exc:
        print(f"gridgate: {exc}", file=sys.stderr)
        return EXIT_USAGE

    async def body(uow: UnitOfWork) -> int:
        try:
            stream = args.output.open("wb") if args.output else sys.stdout.buffer
        except OSError as exc:
            print(f"gridgate: {args.output}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_USAGE
        count = await export.count(uow, config, span)
        # Logged (and committed) before a byte is written: an export that fails half-way
        # was still an export.
        audit.record(uow, SystemClock(), _cli_actor(), "tickets_export",
                     target=f"{span.first}..{span.last}", format=args.format,
                     tickets=count, with_text=args.with_text or None,
                     to="file" if args.output else "stdout")
        await uow.commit()
        try:
            writer = export.Writer(stream, args.format, with_text=args.with_text)
            async for row in export.rows(uow, config, span, with_text=args.with_text):
                writer.write(row)
        finally:
            if args.output:
                stream.close()
            else:
                stream.flush()
        if args.output:
            print(f"exported {writer.count} tickets to {args.output}", file=sys.stderr)
        return 0
    return await _with_database(config, body)


async def _admin_log(config: Config, args: argparse.Namespace) -> int:
    import json
    from datetime import datetime, time

    since = None
    try:
        if args.since:
            since = datetime.combine(export.parse_day(args.since, "--since"), time.min,
                                     tzinfo=config.timezone)
    except export.ExportError as exc:
        print(f"gridgate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.limit is not None and args.limit < 1:
        print("gridgate: --limit: give a number of entries, 1 or more", file=sys.stderr)
        return EXIT_USAGE

    async def body(uow: UnitOfWork | None) -> int:
        entries = await audit.entries(uow, since, limit=args.limit) if uow else []
        for row in entries:
            at = row.at.astimezone(config.timezone).isoformat(timespec="seconds")
            who = audit.actor_of(row).label
            if args.json:
                print(json.dumps({"at": at, "who": who, "action": row.action,
                                  "target": row.target, "details": row.details},
                                 ensure_ascii=False))
            else:
                details = json.dumps(row.details, ensure_ascii=False) if row.details else ""
                print(f"{at}  {who}  {row.action}  {row.target or '-'}  {details}".rstrip())
        if not entries and not args.json:
            print("no admin actions" + (f" since {args.since}" if args.since else ""))
        return 0
    return await _reading(config, body)


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to serve the sandbox on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int,
                        help="port to serve the sandbox on (default: 8080, or any free port "
                             "when 8080 is taken; 0: any free port)")
    parser.add_argument("--data", type=Path, metavar="DIR",
                        help="keep the database, the bot's log and the chats in DIR across "
                             "runs (default: a temporary folder, removed at the end)")
    parser.add_argument("--spec", type=Path, metavar="FILE",
                        default=os.environ.get("GRIDGATE_BOT_API_SPEC") or BUNDLED_SPEC,
                        help="a Bot API specification (bot-api-10.0.json) to check every call "
                             "against (default: $GRIDGATE_BOT_API_SPEC, or the copy gridgate "
                             "ships)")


def _demo(config: Config, args: argparse.Namespace) -> int:
    from bot.sandbox.demo import DemoOptions, run_demo

    if args.spec is not None and not args.spec.is_file():
        print(f"gridgate: {args.spec}: no such file (--spec wants bot-api-10.0.json)",
              file=sys.stderr)
        return EXIT_USAGE
    return run_demo(DemoOptions(host=args.host, port=args.port, data=args.data,
                                spec=args.spec, configs=args.config or (),
                                verbose=args.verbose))


def _is_deployment(args: argparse.Namespace) -> bool:
    """Settings or data of a real installation: then a missing token is a mistake (a lost
    environment variable, say), not a wish to try the demo."""
    return bool(args.config) or Path("gridgate.toml").is_file() or Path(
        "gridgate.db").is_file() or bool(os.environ.get("DATABASE_URL", "").strip())


def _run(config: Config, args: argparse.Namespace) -> int:
    if not config.telegram.token:
        if _is_deployment(args):
            print(NO_TOKEN_HELP, file=sys.stderr)
            return EXIT_USAGE
        print(DEMO_INSTEAD, file=sys.stderr)
        demo_args = _parser().parse_args(["demo"])
        demo_args.config, demo_args.verbose = None, args.verbose
        return _demo(config, demo_args)
    from bot.serve import ServeOptions, serve

    webhook = args.webhook or config.webhook.enabled
    if webhook and not config.webhook.url:
        print("gridgate: webhook mode needs [webhook] url (or GRIDGATE_WEBHOOK_URL): the public "
              "https address Telegram calls", file=sys.stderr)
        return EXIT_USAGE
    if webhook and not config.server.enabled:
        print("gridgate: webhook mode needs the HTTP server; set [server] enabled = true",
              file=sys.stderr)
        return EXIT_USAGE
    if args.port is not None and not 0 <= args.port <= 65535:
        print("gridgate: --port must be between 0 and 65535", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(serve(config, ServeOptions(webhook=webhook, listen=args.listen,
                                                  port=args.port, own_process=True)))
