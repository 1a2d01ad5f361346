"""`gridgate demo`: the sandbox with the demo district's people, and the bot running against it.

The cast: a resident, an enterprise contact, two grid workers in the group of grid
SFQ-DH-01-G1, a lawyer at the legal desk, and a member of staff of the district centre who is
an administrator and binds the three groups the first time, as a real administrator would
(the bot is added to each group, then ``/bind CODE``). The lawyer then opens a week of
check-up slots with ``/slots add``, so that the enterprise contact has something to book.
The bot is exactly `gridgate run`, in a child process, on its own SQLite database, with the
demo's short timers laid over the usual configuration (bot/data/gridgate.demo.toml); a bot
that stops unexpectedly is started again. Its HTTP server listens on a port the demo chooses,
so that the page and the announcement can link to the bot's web chat (the second door, for
residents without Telegram) at the grid that has a group: a web resident and a Telegram
resident reach the same grid workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from bot.config import example_config_path
from bot.i18n import N_, Catalogs
from bot.sandbox.apispec import BotApiSpec
from bot.sandbox.people import People, Person
from bot.sandbox.server import Pane, Sandbox
from bot.sandbox.world import JSON, TelegramServer

log = logging.getLogger(__name__)

DEFAULT_PORT = 8080
BOT_ID = 7_100_000_001
BOT_USER: JSON = {
    "id": BOT_ID, "is_bot": True, "first_name": "网格通", "username": "gridgate_demo_bot",
    "can_join_groups": True, "can_read_all_group_messages": False,
    "supports_inline_queries": False, "can_connect_to_business": False,
    "has_main_web_app": False,
}
RESIDENT, ENTERPRISE_CONTACT = 1001, 1002
WORKER_A, WORKER_B, LAWYER, CENTRE_STAFF = 1101, 1102, 1201, 1301
GRID_GROUP, DESK_GROUP, CENTRE_GROUP = -1_001_000_000_001, -1_001_000_000_002, -1_001_000_000_003
GRID_CODE, DESK_CODE, CENTRE_CODE = "SFQ-DH-01-G1", "legal", "SFQ"
# Inside the grid that has a group: where a resident "is" when the page asks nothing else.
GRID_POINT = (31.228, 121.42)
# The demo district's time zone (the example configuration's): the sample slots' days.
DEMO_TIMEZONE = ZoneInfo("Asia/Shanghai")
SAMPLE_SLOT_DAYS = 7
# Written into the data folder at each start of the bot: where its web chat is served.
WEB_OVERLAY = "web-chat.toml"
# Addresses that mean "every interface": the browser's address for the chat is not known.
_WILDCARD_HOSTS = ("0.0.0.0", "::", "")

CAST = (
    Person(RESIDENT, "王小明", phone="+8613800138000", role=N_("Resident")),
    Person(ENTERPRISE_CONTACT, "陈静", phone="+8613912345678", role=N_("Enterprise contact")),
    Person(WORKER_A, "李建国", phone="+8613700001101", role=N_("Grid worker")),
    Person(WORKER_B, "张秀英", phone="+8613700001102", role=N_("Grid worker")),
    Person(LAWYER, "赵明", phone="+8613700001201", role=N_("Lawyer")),
    Person(CENTRE_STAFF, "周伟", phone="+8613700001301",
           role=N_("District centre staff, administrator")),
)
GROUPS = (
    # chat id, title, members, the node it serves
    (GRID_GROUP, "东湖一社区第1网格 网格员群",
     {WORKER_A: "administrator", WORKER_B: "member", CENTRE_STAFF: "administrator"}, GRID_CODE),
    (DESK_GROUP, "公共法律服务 律师群", {LAWYER: "member", CENTRE_STAFF: "administrator"},
     DESK_CODE),
    (CENTRE_GROUP, "示范区综治中心", {CENTRE_STAFF: "creator"}, CENTRE_CODE),
)
PANES = (
    Pane(RESIDENT, N_("Resident"), (RESIDENT,)),
    Pane(ENTERPRISE_CONTACT, N_("Enterprise contact"), (ENTERPRISE_CONTACT,)),
    Pane(GRID_GROUP, N_("Grid workers' group"), (WORKER_A, WORKER_B, CENTRE_STAFF),
         place=GRID_CODE),
    Pane(DESK_GROUP, N_("Legal service desk"), (LAWYER, CENTRE_STAFF), place=DESK_CODE),
    Pane(CENTRE_GROUP, N_("District centre"), (CENTRE_STAFF,), place=CENTRE_CODE),
)


def new_token() -> str:
    return f"{BOT_ID}:{secrets.token_urlsafe(27)}"


def demo_sandbox(token: str, *, spec: BotApiSpec | None, catalogs: Catalogs) -> Sandbox:
    """The demo's sandbox, its people in place, the groups not yet bound (see ``bind_groups``)."""
    world = TelegramServer(spec, strict=False, bot_user=BOT_USER, closed=True,
                           long_poll_cap=None)
    people = People(world)
    for person in CAST:
        people.add(Person(**vars(person)))  # a copy: language changes stay in this sandbox
    for chat_id, title, members, _ in GROUPS:
        people.add_group(chat_id, title, members)
    return Sandbox(world=world, people=people, token=token, panes=list(PANES),
                   catalogs=catalogs, map=demo_map())


def bind_groups(sandbox: Sandbox) -> None:
    """The administrator adds the bot to each group and binds it (the updates wait for the bot)."""
    for chat_id, _, _, code in GROUPS:
        sandbox.people.add_bot(chat_id, CENTRE_STAFF)
        sandbox.people.say(chat_id, CENTRE_STAFF, f"/bind {code}")


def open_sample_slots(sandbox: Sandbox, today: date) -> str:
    """The lawyer opens check-up slots on the working days of the week after ``today``, as the
    desk would with ``/slots add`` (waiting for the bot like the binding). Returns the
    command."""
    first = today + timedelta(days=1)
    last = first + timedelta(days=SAMPLE_SLOT_DAYS - 1)
    command = f"/slots add {first.isoformat()}..{last.isoformat()} 09:00-12:00 60m 2"
    sandbox.people.say(DESK_GROUP, LAWYER, command)
    return command


def demo_map() -> JSON:
    text = (resources.files("bot") / "data" / "demo_district.geojson").read_text("utf-8")
    return json.loads(text)


def overlay_path() -> Path:
    return Path(str(resources.files("bot") / "data" / "gridgate.demo.toml"))


# -- running it ---------------------------------------------------------------------------------

@dataclass
class DemoOptions:
    host: str = "127.0.0.1"
    port: int | None = None  # None: 8080, or any free port when 8080 is taken
    data: Path | None = None  # None: a temporary folder, removed at the end
    spec: Path | None = None
    # The base configuration (none: the usual file), then files laid over the demo's timers.
    configs: Sequence[Path] = ()
    verbose: bool = False


class DemoRunner:
    """The sandbox in this process, the bot in a child process, until stopped."""

    MAX_QUICK_CRASHES = 5  # within QUICK seconds of each other: give up instead of looping
    QUICK = 60.0

    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        self.stopping = asyncio.Event()
        self.process: asyncio.subprocess.Process | None = None
        self.restart_requested = False
        self._restarting: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.exit_status = 0
        self.default_port_taken = False  # 8080 was busy, so another port was chosen
        self.web_port: int | None = None  # the bot's HTTP server (its web chat)
        self.web_host = ""  # the host of the web chat's address, as the sandbox's

    async def run(self) -> int:
        opts = self.options
        try:
            spec = BotApiSpec.load(opts.spec) if opts.spec else None
        except (OSError, ValueError, KeyError) as exc:
            print(f"gridgate: {opts.spec}: not a Bot API specification ({exc})", file=sys.stderr)
            return 2
        keep = opts.data is not None
        # Absolute: the bot runs in this folder and finds its database by this path.
        folder = (opts.data or Path(tempfile.mkdtemp(prefix="gridgate-demo-"))).resolve()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            return await self._run_in(folder, keep, spec)
        finally:
            if not keep:
                shutil.rmtree(folder, ignore_errors=True)

    async def _run_in(self, folder: Path, keep: bool, spec: BotApiSpec | None) -> int:
        token_file = folder / "token"
        token = token_file.read_text().strip() if keep and token_file.is_file() else new_token()
        sandbox = demo_sandbox(token, spec=spec, catalogs=Catalogs.load())
        world_file = folder / "sandbox.json"
        if not (keep and sandbox.load(world_file)):
            bind_groups(sandbox)  # a new world: the administrator binds the groups
            open_sample_slots(sandbox, datetime.now(DEMO_TIMEZONE).date())
        if keep:
            token_file.write_text(token)
        sandbox.restart_bot = self.restart
        self.sandbox = sandbox
        try:
            address = await self._listen(sandbox)
        except OSError as exc:
            port = DEFAULT_PORT if self.options.port is None else self.options.port
            print(f"gridgate: cannot listen on {self.options.host}:{port} ({exc.strerror}); "
                  "choose another address or port with --host or --port", file=sys.stderr)
            return 2
        # Chosen before the announcement, which gives the web chat's address.
        self.web_host = urlsplit(address).hostname or self.options.host
        self._choose_web_port(sandbox)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.stopping.set)
        # Only now: "Stop with Ctrl+C" must hold from the moment it is printed.
        self._announce(address, folder, keep, spec)
        saver = asyncio.create_task(self._keep_saving(sandbox, world_file)) if keep else None
        try:
            await self._supervise(sandbox, address, folder)
        finally:
            if saver is not None:
                saver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await saver
                await sandbox.save(world_file)
            await sandbox.stop()
        return self.exit_status

    async def _listen(self, sandbox: Sandbox) -> str:
        opts = self.options
        if opts.port is not None:
            return await sandbox.start(opts.host, opts.port)
        try:
            return await sandbox.start(opts.host, DEFAULT_PORT)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            # Nobody asked for this port: any free one will do, and the announcement says why
            # the address is not the usual one (someone who had 8080 open sees another page).
            self.default_port_taken = True
            return await sandbox.start(opts.host, 0)

    def _announce(self, address: str, folder: Path, keep: bool, spec: BotApiSpec | None) -> None:
        lines = [
            f"gridgate demo: open {address}/ in a browser.",
            f"  The web chat, for residents without Telegram: {self.sandbox.web_chat_url}",
            *([f"  The centres' console: {self.sandbox.web_chat_url.split('/chat', 1)[0]}"
               "/console (周伟 signs in by sending the /start command it shows)"]
              if self.sandbox.web_chat_url else []),
            *([f"  Port {DEFAULT_PORT} is in use (another program, or a demo already running), "
               "so the demo took a free one; choose it with --port."]
              if self.default_port_taken else []),
            f"  The bot runs against the local Bot API at {address} (no Telegram needed).",
            f"  Database and bot log: {folder}"
            + ("" if keep else " (removed when the demo stops; keep them with --data DIR)"),
            "  Bot API calls are checked against " + (
                spec.version if spec else "nothing (give the specification with --spec FILE)"),
            "  Stop with Ctrl+C.",
        ]
        print("\n".join(lines), flush=True)

    async def _supervise(self, sandbox: Sandbox, address: str, folder: Path) -> None:
        crashes: list[float] = []
        log_path = folder / "bot.log"
        while not self.stopping.is_set():
            sandbox.set_bot_status("starting")
            self._choose_web_port(sandbox)
            self._write_web_overlay(folder)
            with log_path.open("ab") as log_file:
                self.process = await asyncio.create_subprocess_exec(
                    *self._bot_command(folder), env=self._bot_env(sandbox.token, address, folder),
                    cwd=folder, stdin=asyncio.subprocess.DEVNULL, stdout=log_file,
                    stderr=log_file if not self.options.verbose else None,
                    preexec_fn=_ends_with(os.getpid()))
            waiter = asyncio.create_task(self.process.wait())
            stop = asyncio.create_task(self.stopping.wait())
            await asyncio.wait({waiter, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not waiter.done():
                await self._terminate()
            stop.cancel()
            status = self.process.returncode
            if self.stopping.is_set():
                sandbox.set_bot_status("stopped")
                break
            if self.restart_requested:
                self.restart_requested = False
                continue
            if status == 2:  # the bot refused its configuration: starting again will not help
                sandbox.set_bot_status("stopped")
                self._tell_failure(log_path, status)
                self.exit_status = 2
                break
            now = time.monotonic()
            crashes = [t for t in crashes if now - t < self.QUICK] + [now]
            self._tell_failure(log_path, status)
            if len(crashes) >= self.MAX_QUICK_CRASHES:
                sandbox.set_bot_status("stopped")
                print("gridgate demo: the bot keeps stopping; giving up", file=sys.stderr)
                self.exit_status = 1
                break
            sandbox.set_bot_status("crashed")
            # A pause before the next try; the page's restart button cuts it short.
            self._wake.clear()
            waits = {asyncio.ensure_future(self.stopping.wait()),
                     asyncio.ensure_future(self._wake.wait())}
            await asyncio.wait(waits, timeout=min(2 ** len(crashes), 30),
                               return_when=asyncio.FIRST_COMPLETED)
            for wait in waits:
                wait.cancel()

    def _bot_command(self, folder: Path) -> list[str]:
        # The first file (or the usual one) is the base, the demo's timers go over it, and any
        # further files over those; last, where the web chat is, which only the demo knows.
        # The bot runs in the data folder: paths must be absolute.
        local = Path("gridgate.toml")
        base, *more = list(self.options.configs) or [
            local if local.is_file() else Path(str(example_config_path()))]
        files = [str(path.resolve())
                 for path in [base, overlay_path(), *more, folder / WEB_OVERLAY]]
        command = [sys.executable, "-m", "bot", "run",
                   *(arg for path in files for arg in ("--config", path)),
                   "--listen", self.options.host, "--port", str(self.web_port)]
        return command + (["-v"] if self.options.verbose else [])

    def _choose_web_port(self, sandbox: Sandbox) -> None:
        """The port of the bot's HTTP server: the one the page and the announcement already
        link to while nobody else has taken it (a restarted bot keeps its address), else any
        free one, which the page is told."""
        host = self.options.host
        if self.web_port is not None and _free_port(host, self.web_port) is not None:
            return
        port = _free_port(host, 0)
        if port is None:
            raise OSError(errno.EADDRNOTAVAIL, f"no free port on {host}")
        self.web_port = port
        sandbox.set_web_chat_url(
            f"{self._web_origin()}/chat?at={quote(GRID_CODE, safe='')}")

    def _web_origin(self) -> str:
        host = self.web_host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.web_port}"

    def _write_web_overlay(self, folder: Path) -> None:
        """The web chat on, with the address the browser opens as its origin (its Origin check
        then accepts the page the demo links to). A demo on every interface gives no address:
        the chat then takes requests from whatever name it is reached by."""
        public = self.options.host not in _WILDCARD_HOSTS
        lines = [
            "# Written by `gridgate demo` each time it starts its bot, laid over the others:",
            "# the web chat, served by the bot's HTTP server on the port the demo chose.",
            "[server]", "enabled = true", "", "[web]", "enabled = true",
            *([f"public_url = {json.dumps(self._web_origin())}"] if public else []), "",
        ]
        (folder / WEB_OVERLAY).write_text("\n".join(lines), encoding="utf-8")

    def _bot_env(self, token: str, address: str, folder: Path) -> dict[str, str]:
        env = dict(os.environ)
        env.update(TELEGRAM_BOT_TOKEN=token, TELEGRAM_API_BASE_URL=address,
                   DATABASE_URL=f"sqlite+aiosqlite:///{folder / 'gridgate.db'}",
                   PYTHONUNBUFFERED="1")
        return env

    async def restart(self) -> None:
        """Stop the bot (as an operator's SIGTERM would) and start it again; returns at once."""
        if self.process is None or self.process.returncode is not None:
            self._wake.set()  # waiting after a crash: try again now
            return
        self.restart_requested = True
        self.sandbox.set_bot_status("stopping")
        self._restarting = asyncio.create_task(self._terminate())

    async def _terminate(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=30)
        except TimeoutError:
            process.kill()
            await process.wait()

    def _tell_failure(self, log_path: Path, status: int | None) -> None:
        tail = log_path.read_text("utf-8", errors="replace").splitlines()[-15:]
        print(f"gridgate demo: the bot exited with status {status}; the end of {log_path}:",
              file=sys.stderr)
        for line in tail:
            print(f"  {line}", file=sys.stderr)

    async def _keep_saving(self, sandbox: Sandbox, path: Path) -> None:
        changed = asyncio.Event()
        sandbox.world.listeners.append(
            lambda event: event["event"] != "call" and changed.set())
        while True:
            await changed.wait()
            changed.clear()
            await asyncio.sleep(2)  # one write for a burst of changes
            await sandbox.save(path)


def _free_port(host: str, port: int) -> int | None:
    """``port`` (0: any) if nobody listens on it at ``host``, as the bot's server would bind it
    (connections of an earlier bot still closing do not count); None when taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return None
        return int(probe.getsockname()[1])


def _ends_with(parent: int):
    """In the bot's process before it starts (Linux): end it when the demo ends, even by
    SIGKILL, so no bot is left polling a sandbox that is gone."""
    if not sys.platform.startswith("linux"):
        return None

    def tie() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the demo died before the tie was made
            os._exit(1)

    return tie


_PR_SET_PDEATHSIG = 1


def run_demo(options: DemoOptions) -> int:
    return asyncio.run(DemoRunner(options).run())
