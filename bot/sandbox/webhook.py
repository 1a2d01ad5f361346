"""Telegram's side of webhook mode: while a webhook is set, updates are POSTed to its URL one at
a time and in order, with the secret token header. An update stays pending until the bot
answers 2xx; a failure is retried after a growing pause and shown by getWebhookInfo
(last_error_date, last_error_message), as Telegram does."""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from bot.sandbox.world import TelegramServer

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_MAX_PAUSE = 30.0


class WebhookPusher:
    def __init__(self, world: TelegramServer, *, timeout: float = 10.0) -> None:
        self.world = world
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def run(self) -> None:
        """Deliver until cancelled."""
        async with aiohttp.ClientSession(timeout=self.timeout) as session:
            pause = 0.0
            while True:
                await self.world.wait_for_webhook_work()
                hook = self.world.webhook
                assert hook is not None
                update = self.world.pending_updates[0]
                error = await self._post(session, hook, update)
                if self.world.webhook is not hook:
                    continue  # set again or deleted meanwhile: start over with the new one
                if error is None:
                    self.world.confirm(update["update_id"] + 1)
                    pause = 0.0
                    continue
                hook["last_error_date"] = self.world.now()
                hook["last_error_message"] = error
                pause = min(max(pause * 2, 0.5), _MAX_PAUSE)
                log.info("webhook delivery failed (%s); next try in %.1f s", error, pause)
                await asyncio.sleep(pause)

    async def _post(self, session: aiohttp.ClientSession, hook: dict,
                    update: dict) -> str | None:
        headers = {SECRET_HEADER: hook["secret_token"]} if hook.get("secret_token") else {}
        try:
            async with session.post(hook["url"], json=update, headers=headers) as response:
                if 200 <= response.status < 300:
                    return None
                return f"Wrong response from the webhook: {response.status} {response.reason}"
        except TimeoutError:
            return "Connection timed out"
        except aiohttp.ClientError as exc:
            return f"Connection failed: {type(exc).__name__}"
        except (ValueError, TypeError) as exc:  # a URL aiohttp cannot even try
            return f"Invalid webhook URL ({type(exc).__name__})"
