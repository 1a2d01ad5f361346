"""One sandbox: a Bot API world with its people, served on one address.

The bot talks to ``/bot<token>/…`` as it would to api.telegram.org (bot/sandbox/api.py); the
people use the page at ``/`` and its JSON and WebSocket API under ``/sandbox/``
(bot/sandbox/page.py); a webhook, once set, gets its updates pushed (bot/sandbox/webhook.py).
Every Bot API call is checked against the specification when one is given, and each violation
is logged, kept and shown on the page.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from bot.i18n import Catalogs
from bot.sandbox.api import add_bot_api
from bot.sandbox.page import add_page
from bot.sandbox.people import People
from bot.sandbox.webhook import WebhookPusher
from bot.sandbox.world import JSON, TelegramServer

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 51 * 1024 * 1024  # bots upload files of up to 50 MB, people less


@dataclass(frozen=True)
class Pane:
    """One chat shown on the page: whose it is (``role``, a msgid) and who may speak in it."""

    chat_id: int
    role: str
    speakers: tuple[int, ...]
    place: str | None = None  # the org-tree code a group serves, to mark it on the map


@dataclass
class Sandbox:
    world: TelegramServer
    people: People
    token: str
    panes: list[Pane]
    catalogs: Catalogs
    map: JSON = field(default_factory=lambda: {"type": "FeatureCollection", "features": []})
    language: str = "zh_Hans"
    bot_status: str = "starting"  # starting, running, stopping, stopped, crashed
    # What "restart the bot" on the page does (the demo restarts its bot process).
    restart_bot: Callable[[], Awaitable[None]] | None = None
    # The bot's own web chat, for residents without Telegram (the demo's bot serves it);
    # None: this sandbox runs no bot of its own, so the page offers none.
    web_chat_url: str | None = None
    _listeners: list[Callable[[JSON], None]] = field(default_factory=list, init=False)
    _runner: web.AppRunner | None = field(default=None, init=False)
    _pusher: asyncio.Task[None] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.world.listeners.append(self._on_world_event)

    # -- serving --------------------------------------------------------------------------------
    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        add_bot_api(app, self.world, self.token)
        add_page(app, self)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0: any free port); returns the address, e.g. http://127.0.0.1:8081."""
        runner = web.AppRunner(self.web_app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self._pusher = asyncio.create_task(WebhookPusher(self.world).run(),
                                           name="sandbox webhook pusher")
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._pusher is not None:
            self._pusher.cancel()
            try:
                await self._pusher
            except asyncio.CancelledError:
                pass
            except Exception:  # it died earlier; stopping must still close the server
                log.exception("the webhook pusher had stopped")
        if self._runner is not None:
            await self._runner.cleanup()

    # -- what the page is told ------------------------------------------------------------------
    def subscribe(self, listener: Callable[[JSON], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def publish(self, event: JSON) -> None:
        for listener in list(self._listeners):
            listener(event)

    def set_bot_status(self, status: str) -> None:
        self.bot_status = status
        self.publish({"type": "bot", "status": status})

    def set_web_chat_url(self, url: str | None) -> None:
        self.web_chat_url = url
        self.publish({"type": "web_chat", "url": url})

    def _on_world_event(self, event: JSON) -> None:
        kind = event["event"]
        if kind == "call":
            # The bot is up once it asks for updates: everything before that is start-up.
            # (Only a bot that is starting: a stopping one still polls until it is gone.)
            if event["method"] in ("getUpdates", "setWebhook") and \
                    self.bot_status == "starting":
                self.set_bot_status("running")
            return
        if kind == "violation":
            for violation in event["violations"]:
                log.warning("Bot API violation: %s: %s", event["method"], violation)
        out: JSON
        if kind == "message":
            key = (event["chat_id"], event["message_id"])
            out = {"type": "message", "chat_id": event["chat_id"], "edited": event["edited"],
                   "message": self.world.messages.get(key)}
            if out["message"] is None:
                return
        elif kind == "keyboard":
            out = {"type": "keyboard", "chat_id": event["chat_id"],
                   "keyboard": self.world.reply_keyboards.get(event["chat_id"])}
        elif kind == "commands":
            out = {"type": "commands", "menus": self.command_menus()}
        else:
            out = {"type": kind, **{k: v for k, v in event.items() if k != "event"}}
        self.publish(out)

    def command_menus(self) -> dict[str, dict[str, list[JSON]]]:
        """Per pane and speaker, the commands their Telegram app offers."""
        return {str(pane.chat_id): {
            str(user_id): self.world.command_menu(
                pane.chat_id, user_id, self.people.persons[user_id].language_code)
            for user_id in pane.speakers} for pane in self.panes}

    # -- keeping the world ----------------------------------------------------------------------
    async def save(self, path: Path) -> None:
        """Write the world to ``path``, and each file once into ``files/`` beside it; a crash
        while writing leaves the previous world file. The writing happens off the event loop."""
        folder = path.parent / "files"
        new_files: dict[Path, bytes] = {}

        def keep_file(file_id: str, content: bytes) -> str:
            name = hashlib.sha256(file_id.encode()).hexdigest()
            if not (folder / name).is_file():
                new_files[folder / name] = content
            return name

        text = json.dumps({"world": self.world.snapshot(keep_file), "language": self.language},
                          ensure_ascii=False)

        def write() -> None:
            folder.mkdir(parents=True, exist_ok=True)
            for file, content in new_files.items():
                partial = file.with_suffix(".partial")
                partial.write_bytes(content)
                partial.replace(file)
            partial = path.with_suffix(path.suffix + ".partial")
            partial.write_text(text, encoding="utf-8")
            partial.replace(path)

        await asyncio.to_thread(write)

    def load(self, path: Path) -> bool:
        """The world as ``save`` left it; False when there is no saved world."""
        if not path.is_file():
            return False
        data = json.loads(path.read_text(encoding="utf-8"))
        folder = path.parent / "files"
        self.world.restore(data["world"], lambda name: (folder / name).read_bytes())
        self.language = data.get("language", self.language)
        for person in self.people.persons.values():
            person.language_code = self.world.users.get(person.id, {}).get(
                "language_code", person.language_code)
        return True
