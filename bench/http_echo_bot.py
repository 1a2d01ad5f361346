"""The bare bot of bench/http_conversation.py, in a process of its own: a plain
python-telegram-bot Application with one MessageHandler that echoes each message (its text, or
"received" when it has none) and one CallbackQueryHandler that answers each press. Nothing
else: no database, no state.

    TELEGRAM_BOT_TOKEN=… TELEGRAM_API_BASE_URL=http://127.0.0.1:PORT python bench/http_echo_bot.py
        [--webhook-port PORT] [--workers 64]

Without --webhook-port it long-polls the Bot API server (PTB's Updater, as run_polling would).
With it, it sets a webhook at http://127.0.0.1:PORT/webhook and takes the updates on a small
aiohttp server that checks the secret token, puts the update in the Application's queue and
answers 200 at once (PTB's own webhook server needs tornado, which is not installed). It runs
until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal

from aiohttp import web
from telegram import Update
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    await message.chat.send_message(message.text or "received")


async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.callback_query.answer()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--webhook-port", type=int)
    parser.add_argument("--workers", type=int, default=64)
    args = parser.parse_args()
    base = os.environ["TELEGRAM_API_BASE_URL"].rstrip("/")
    builder = (ApplicationBuilder().token(os.environ["TELEGRAM_BOT_TOKEN"])
               .base_url(f"{base}/bot").base_file_url(f"{base}/file/bot")
               .concurrent_updates(args.workers))
    if args.webhook_port:
        builder = builder.updater(None)
    app = builder.build()
    app.add_handler(MessageHandler(filters.ALL, echo))
    app.add_handler(CallbackQueryHandler(answer))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    runner: web.AppRunner | None = None
    async with app:
        if args.webhook_port:
            secret = secrets.token_urlsafe(24)

            async def take(request: web.Request) -> web.Response:
                if request.headers.get(SECRET_HEADER) != secret:
                    return web.Response(status=403)
                await app.update_queue.put(Update.de_json(await request.json(), app.bot))
                return web.Response()

            server = web.Application()
            server.router.add_post("/webhook", take)
            runner = web.AppRunner(server, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", args.webhook_port).start()
            await app.bot.set_webhook(f"http://127.0.0.1:{args.webhook_port}/webhook",
                                      secret_token=secret, max_connections=40)
        else:
            await app.updater.start_polling(timeout=10)
        await app.start()
        await stop.wait()
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        await app.stop()
        if runner is not None:
            await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
