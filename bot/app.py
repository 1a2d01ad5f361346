"""The one place that builds the Application and registers its handlers, in order."""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest

from bot.actions import backfill
from bot.actions.digests import schedule_upcoming as schedule_digests
from bot.actions.notifier import delivery_notices, rerouted_card_poster
from bot.bot_api_client import AiohttpRequest
from bot.console.routes import Console
from bot.context import CONTEXT_TYPES, App, Context
from bot.delivery import OutboxSender
from bot.delivery.replies import InlineReplies
from bot.delivery.web import WebChannel
from bot.health import Health
from bot.processor import ChatOrderedUpdateProcessor
from bot.runtime import Runtime
from bot.views import Kept, menu
from bot.webchat.routes import WebChat
from handlers import (
    binding,
    booking,
    booking_desk,
    enterprise,
    fallback,
    freetext,
    membership,
    my_tickets,
    privacy,
    relay,
    report,
    slots,
    start,
    stats,
    survey,
    tickets_group,
)
from handlers.commands import publish_command_menus
from handlers.console import member_nodes as console_members
from handlers.errors import on_error
from handlers.router import Router
from scheduler import digests, maintenance, retention
from scheduler.handlers import task_handlers
from scheduler.ticker import Ticker

log = logging.getLogger(__name__)

# Commands count only in new messages: an edited "/start" must not run /start again, and
# channel posts are not conversations.
NEW_MESSAGES = filters.UpdateType.MESSAGE
PRIVATE = filters.ChatType.PRIVATE & NEW_MESSAGES


# Bot API calls an update worker may have under way at once: a press's answer (and the
# taking away of its message's buttons) go beside the reply (handlers.reply).
CALLS_PER_WORKER = 3
# Bot API calls that may be under way at once besides the update workers': the outbox
# sender's (OutboxSender's default concurrency), the scheduler's tick, /readyz's getMe and one
# to spare.
OTHER_BOT_API_CALLS = 8 + 3


def bot_api_request(workers: int) -> AiohttpRequest:
    """The HTTP client for Bot API calls (getUpdates has its own): a connection for each call
    an update worker may have under way and for each other caller, all kept open between
    calls (for 5 s, as httpx does), so a burst neither waits for a connection (PTB gives up
    after its 1 s pool timeout) nor opens more connections, each with a TLS handshake, than
    there can be callers (PTB's default: 256). On aiohttp rather than PTB's httpx client,
    whose cost per call grows with the connections in its pool (bot.bot_api_client)."""
    return AiohttpRequest(connection_pool_size=workers * CALLS_PER_WORKER + OTHER_BOT_API_CALLS)


def build_application(rt: Runtime, *, request: BaseRequest | None = None,
                      get_updates_request: BaseRequest | None = None) -> App:
    token = rt.config.telegram.token
    if not token:
        raise ValueError("a bot token is required to build the application")
    builder = (
        ApplicationBuilder()
        .token(token)
        .base_url(rt.config.telegram.base_url)
        .base_file_url(rt.config.telegram.base_file_url)
        # Answers sent while handling an update wait out a 429 and do not stop at a press
        # that can no longer be answered.
        .rate_limiter(InlineReplies())
        .context_types(CONTEXT_TYPES)
        .concurrent_updates(ChatOrderedUpdateProcessor(
            rt.db, rt.clock, workers=rt.config.runtime.max_concurrent_updates,
            metrics=rt.metrics))
        .post_init(_post_init)
        .post_stop(_post_stop)
        .post_shutdown(_post_shutdown)
    )
    if request is not None:
        builder = builder.request(request).get_updates_request(get_updates_request or request)
    else:
        builder = builder.request(bot_api_request(rt.config.runtime.max_concurrent_updates))
        if get_updates_request is not None:
            builder = builder.get_updates_request(get_updates_request)
    app: App = builder.build()
    data = app.bot_data
    data.runtime = rt
    data.sender_factory = partial(OutboxSender, rt.db, rt.clock, rt.config, app.bot,
                                             web=WebChannel(rt.db, rt.clock,
                                                            wake=data.web_pages.wake),
                                             post_card=rerouted_card_poster(rt),
                                             lease=rt.config.delivery.lease,
                                             metrics=rt.metrics,
                                             notices=delivery_notices(rt))
    data.health = Health(rt.db, rt.clock, rt.config, ask_bot_api=app.bot.get_me)
    data.tick = Ticker(rt.db, rt.clock, task_handlers(rt),
                       batch_size=rt.config.scheduler.batch_size,
                       backoffs=rt.config.scheduler.retry_backoffs,
                       lease=rt.config.scheduler.lease).tick
    register_handlers(app)
    # Timers live in the database, so a restart loses none and several processes share them;
    # this tick only asks it what is due.
    app.job_queue.run_repeating(_tick, interval=rt.config.scheduler.tick_interval, first=1,
                                name="scheduled tasks",
                                job_kwargs={"max_instances": 1, "coalesce": True})
    app.job_queue.run_repeating(maintenance.purge_job, interval=timedelta(hours=1),
                                first=timedelta(minutes=1), name="purge processed updates")
    app.job_queue.run_repeating(digests.ensure_job, interval=timedelta(hours=1),
                                first=timedelta(hours=1), name="ensure digests")
    app.job_queue.run_repeating(retention.ensure_job, interval=timedelta(hours=1),
                                first=timedelta(minutes=2), name="retention sweep")
    return app


def register_handlers(app: App) -> None:
    # Messages in a conversation (a draft) or about a ticket, before the commands and the
    # fallbacks of group 0.
    Router(
        group_prompts=(tickets_group.prompt_reply, booking_desk.report_reply),
        relay_group=relay.from_group,
    ).register(app)
    report.register(app)
    enterprise.register(app)
    app.add_handler(CommandHandler("start", start.start, filters=NEW_MESSAGES))
    app.add_handler(CommandHandler("help", start.help_command, filters=NEW_MESSAGES))
    app.add_handler(CommandHandler("language", start.language_command, filters=NEW_MESSAGES))
    app.add_handler(CommandHandler("bind", binding.bind_command, filters=NEW_MESSAGES))
    app.add_handler(CommandHandler("unbind", binding.unbind_command, filters=NEW_MESSAGES))
    app.add_handler(CommandHandler("stats", stats.stats_command, filters=NEW_MESSAGES))
    app.add_handler(CommandHandler("slots", slots.slots_command, filters=NEW_MESSAGES))

    app.add_handler(CallbackQueryHandler(start.menu_callback,
                                         pattern=f"^({menu.MENU_HELP}|"
                                                 f"{menu.MENU_LANGUAGE})$"))
    app.add_handler(CallbackQueryHandler(start.language_callback,
                                         pattern=f"^{menu.LANGUAGE_PREFIX}"))
    app.add_handler(CallbackQueryHandler(binding.bind_move_callback,
                                         pattern=binding.MOVE_PATTERN))
    tickets_group.register(app)
    my_tickets.register(app)
    survey.register(app)
    booking.register(app)
    booking_desk.register(app)
    privacy.register(app)
    freetext.register(app)
    app.add_handler(CallbackQueryHandler(fallback.unknown_callback))

    app.add_handler(ChatMemberHandler(membership.my_chat_member,
                                      ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, membership.migrated))

    # A live location updates itself by editing its message: that is no edit to complain about.
    app.add_handler(MessageHandler(
        filters.ChatType.PRIVATE & filters.UpdateType.EDITED_MESSAGE & ~filters.LOCATION,
        fallback.edited_private_message))
    app.add_handler(MessageHandler(PRIVATE, fallback.unknown_private_message))

    app.add_error_handler(on_error)


async def _post_init(app: App) -> None:
    rt = app.bot_data.runtime
    await publish_command_menus(app.bot, rt.catalogs, rt.config.default_language)
    await schedule_digests(rt)  # idempotent: each digest is scheduled once
    await backfill.arm_missing(rt)  # idempotent: only tickets without timers
    # The outbox sender runs beside the update processing for the life of the process.
    sender = app.bot_data.sender = app.bot_data.sender_factory()
    sender.start()


async def _post_stop(app: App) -> None:
    sender, app.bot_data.sender = app.bot_data.sender, None
    if sender is not None:
        await sender.stop()


async def _tick(context: Context) -> None:
    rt = context.runtime
    ran = await context.bot_data.tick()
    # Marked after a whole tick: /readyz fails when ticks stop coming (or hang).
    context.bot_data.health.ticked()
    rt.metrics.last_tick.set_to_current_time()
    rt.metrics.scheduler_tasks.inc(ran)


async def _post_shutdown(app: App) -> None:
    await app.bot_data.runtime.db.dispose()


ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY,
                   Update.MY_CHAT_MEMBER]


def web_chat(app: App) -> WebChat:
    """The web chat's door for this Application: kept messages go out through its outbox
    sender, and a worker's photo is fetched from Telegram for the page."""
    data = app.bot_data

    async def send_kept(kept: Kept) -> None:
        await data.outbox_sender().send_held(kept.row_id, kept.chat_id, kept.not_before)

    async def download(file_id: str) -> bytes | None:
        try:
            found = await app.bot.get_file(file_id)
            return bytes(await found.download_as_bytearray())
        except TelegramError:
            log.info("web chat: a file could not be fetched from Telegram")
            return None

    return WebChat(data.runtime, send_kept=send_kept, download=download,
                   hub=data.web_pages)


def console_door(app: App) -> Console:
    """The centres' console for this Application: its sign-in link names the bot, and who
    is in which centre's group is asked of Telegram through it."""
    data = app.bot_data

    def username() -> str:
        try:
            return app.bot.username
        except RuntimeError:  # before the bot has met Telegram (getMe): no link yet
            return ""

    async def member_nodes(user_id: int) -> list[int]:
        return await console_members(app.bot, data, user_id)

    return Console(data.runtime, bot_username=username, member_nodes=member_nodes)
