"""The resident's report flow in Telegram: questions, answers, buttons (rules in
bot.services.reporting).

Every update follows the same pattern: load the draft, apply the answer, save the draft, build the
replies, commit, and only then send them, so whatever the bot acknowledged is in the database.

These handlers live in a handler group of their own that runs before the default group (see
`register`): they take a private message only while the person's conversation is a report (a
person has one private draft at a time: starting a report drops an "Add information" or a
withdrawal, and those drop an unfinished report), and otherwise let it through untouched to
the other handlers and the fallbacks.
"""

from __future__ import annotations

import functools
import html
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from telegram import Message, ReplyKeyboardRemove, Update
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    filters,
)

from bot.actions.notifier import Notifier
from bot.config import tier_of
from bot.context import runtime
from bot.i18n import Translator
from bot.logs import bind_log_context
from bot.runtime import Runtime
from bot.services import reporting, tickets
from bot.services.reporting import Answer, Outcome, Problem, Report, Step, Submitted
from bot.services.text import user_html
from bot.views.cards import STATUS_LABELS, WAY_LABELS, category_name, day_label, trimmed
from bot.views.places import place_html
from handlers import report_keyboards as kb
from handlers.common import command_of, translator_for
from handlers.replies import Kept, keep, send_kept
from storage.models import Draft, OrgNode, Ticket
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

# Before the default group 0, so a message that answers a step never reaches the fallback; a
# handler here that does not take an update simply returns, and group 0 gets it as usual.
PRIVATE_MESSAGES = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
# Steps whose question puts a reply keyboard (location / contact button) under the input field.
REPLY_KEYBOARD_STEPS = (Step.PLACE, Step.CONTACT)


def register(app: Application) -> None:
    """In group 0; the messages of the flow come through the router (report_message)."""
    app.add_handler(CommandHandler("report", report_command, filters=PRIVATE_MESSAGES))
    app.add_handler(CommandHandler("consult", consult_command, filters=PRIVATE_MESSAGES))
    app.add_handler(CommandHandler("matter", matter_command, filters=PRIVATE_MESSAGES))
    app.add_handler(CommandHandler("cancel", cancel_command, filters=PRIVATE_MESSAGES))
    app.add_handler(CallbackQueryHandler(report_callback, pattern=f"^{kb.PREFIX}"))


Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[bool]]


def _flow(handler: Handler) -> Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]:
    """A handler that returns True took the update: later groups must not see it. An error
    goes to the error handlers here, and also ends the update: otherwise PTB would carry on
    with group 0 and the fallback would answer "I did not understand" after the apology."""

    @functools.wraps(handler)
    async def run(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            handled = await handler(update, context)
        except Exception as exc:  # handed to the error handlers below
            await context.application.process_error(update, exc)
            raise ApplicationHandlerStop from None
        if handled:
            raise ApplicationHandlerStop

    return run


@dataclass
class Reply:
    """What to send once the transaction is committed, in order."""

    # Messages, and replies kept in the outbox (handlers.replies) where one must survive a crash.
    messages: list[tuple[str, Any] | Kept] = field(default_factory=list)
    edit: tuple[str, Any] | None = None  # new text and keyboard for the pressed message
    alert: str | None = None

    def say(self, text: str, markup: Any = None) -> None:
        self.messages.append((text, markup))

    def say_kept(self, rt: Runtime, uow: UnitOfWork, chat_id: int, text: str,
                 ticket: Ticket) -> None:
        """Say it through the outbox, in ``uow``'s transaction (handlers.replies)."""
        self.messages.append(keep(rt, uow, chat_id, "sendMessage",
                                  {"text": text, "parse_mode": "HTML"}, ticket=ticket))

    async def send(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is not None:
            await query.answer(self.alert, show_alert=self.alert is not None)
            if self.edit is not None:
                try:
                    await query.edit_message_text(self.edit[0], parse_mode="HTML",
                                                  reply_markup=self.edit[1])
                except BadRequest as exc:
                    # A second press on the same menu button shows what is already there.
                    if "not modified" not in str(exc).lower():
                        raise
        for message in self.messages:
            if isinstance(message, Kept):
                await send_kept(context, message)
                continue
            text, markup = message
            await update.effective_chat.send_message(text, parse_mode="HTML",
                                                     reply_markup=markup)


# -- entry points ------------------------------------------------------------------------------


async def unfinished_report(uow: UnitOfWork, user_id: int) -> Report | None:
    """For /start, inside its unit of work: the person's unfinished report, if any."""
    loaded = await reporting.load(uow, user_id)
    return loaded[1] if loaded is not None else None


async def offer_unfinished(update: Update, context: ContextTypes.DEFAULT_TYPE, t: Translator,
                           report: Report) -> None:
    """For /start, after its unit of work is closed: offer to continue the unfinished report
    (from `unfinished_report`) or to start over."""
    await update.effective_chat.send_message(
        unfinished_text(runtime(context), t, report), parse_mode="HTML",
        reply_markup=kb.unfinished(t))


async def _start(update: Update, context: ContextTypes.DEFAULT_TYPE, kind: str) -> bool:
    rt = runtime(context)
    reply = Reply()
    async with rt.uow() as uow:
        t = await translator_for(rt, uow, update)
        await _new_report(reply, rt, uow, t, update.effective_user.id, kind)
        await uow.commit()
    await reply.send(update, context)
    return True


@_flow
async def report_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    return await _start(update, context, reporting.REPORT)


@_flow
async def consult_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    return await _start(update, context, reporting.CONSULTATION)


@_flow
async def matter_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    return await _start(update, context, reporting.ENTERPRISE_DISPUTE)


@_flow
async def cancel_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    rt = runtime(context)
    user_id = update.effective_user.id
    async with rt.uow() as uow:
        newest = await uow.drafts.any_of(user_id)
        if newest is not None and newest.flow != reporting.FLOW:
            return False  # another flow is in progress: its own /cancel handles it
        t = await translator_for(rt, uow, update)
        if newest is not None:
            loaded = await reporting.load(uow, user_id)
            await reporting.discard(uow, user_id)
            text = _cancelled(t, loaded[1] if loaded else None)
        else:
            text = t("There is nothing to cancel.")
        await uow.commit()
    await update.effective_chat.send_message(text, parse_mode="HTML",
                                             reply_markup=ReplyKeyboardRemove())
    return True


async def take_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """The router's taker for the report flow: /cancel ends it, anything else answers it."""
    if command_of(update.effective_message) == "cancel":
        return await cancel_command(update, context)
    return await report_message(update, context)


async def report_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    rt = runtime(context)
    user_id = update.effective_user.id
    reply = Reply()
    async with rt.uow() as uow:
        newest = await uow.drafts.any_of(user_id)
        if newest is None or newest.flow != reporting.FLOW:
            return False
        row, report = await reporting.load(uow, user_id)
        t = await translator_for(rt, uow, update)
        before = report.step
        outcome = await reporting.answer_message(uow, rt.config, rt.grids, report,
                                                 _answer(update.effective_message),
                                                 user_id=user_id)
        reporting.save(uow, rt.clock, row, report)
        await _render(reply, rt, uow, t, report, outcome, before)
        await uow.commit()
    await reply.send(update, context)
    return True


@_flow
async def report_callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    rt = runtime(context)
    query = update.callback_query
    data, tagged, tag = query.data.partition(kb.DRAFT_TAG)
    action, _, arg = data.removeprefix(kb.PREFIX).partition(":")
    reply = Reply()
    done = False  # the pressed summary is finished with: its buttons go
    async with rt.uow() as uow:
        t = await translator_for(rt, uow, update)
        chat = update.effective_chat
        if chat is None or chat.type != chat.PRIVATE:
            reply.alert = t("This button is no longer valid.")
        elif tagged and not await _is_current(uow, update.effective_user.id, tag):
            # The summary of a report sent or cancelled since: it must not act on the next.
            reply.alert = t("That report was already sent or cancelled; this summary is out "
                            "of date.")
            done = True
        elif action == "new" and (arg or reporting.REPORT) in reporting.KINDS:
            await _new_report(reply, rt, uow, t, update.effective_user.id,
                              arg or reporting.REPORT)
            await uow.commit()
        else:
            loaded = await reporting.load(uow, update.effective_user.id)
            if loaded is None and query.data in (kb.RESUME, kb.RESTART):
                # The report was discarded meanwhile (another flow was started, or it was
                # cancelled or sent): the person still means to report, so a new one begins
                # and, being their only conversation now, takes their next answers.
                reply.say(t("That unfinished report is no longer kept. Please start again."))
                await _new_report(reply, rt, uow, t, update.effective_user.id,
                                  reporting.REPORT)
                await uow.commit()
            elif loaded is None and query.data == kb.CANCEL:
                # "Discard it" (under a reminder, say) pressed after the draft has gone.
                reply.alert = t("There is nothing to cancel.")
            elif loaded is not None and await _on_button(reply, rt, uow, t, update, *loaded,
                                                         action=action, arg=arg):
                done = bool(tagged) and await uow.drafts.get(update.effective_user.id,
                                                             reporting.FLOW) is None
                await uow.commit()
            else:
                # Forged data, or a button of a finished, cancelled or moved-on draft.
                reply = Reply(alert=t("This button is no longer valid."))
    await reply.send(update, context)
    if done:
        try:
            await query.edit_message_reply_markup(None)
        except BadRequest as exc:  # deleted meanwhile: its buttons are checked all the same
            log.debug("the summary's buttons stay: %s", exc.message)
    return True


async def _is_current(uow: UnitOfWork, user_id: int, token: str) -> bool:
    loaded = await reporting.load(uow, user_id)
    return loaded is not None and loaded[1].token == token


async def _new_report(reply: Reply, rt: Runtime, uow: UnitOfWork, t: Translator,
                      user_id: int, kind: str) -> None:
    loaded = await reporting.load(uow, user_id)
    if loaded is not None:
        reply.say(unfinished_text(rt, t, loaded[1]), kb.unfinished(t))
        return
    begun = await reporting.begin(uow, rt.clock, user_id, config=rt.config, kind=kind)
    if begun is None:  # an enterprise matter from someone who acts for no enterprise
        reply.say(t("Enterprise matters are reported by the contacts of a registered "
                    "enterprise. Register your enterprise with /enterprise, or ask a colleague "
                    "who registered it for the invitation code."))
        return
    await _ask(reply, rt, uow, t, begun[1])


async def begin_with_text(reply: Reply, rt: Runtime, uow: UnitOfWork, t: Translator,
                          user_id: int, kind: str, text: str | None, *,
                          media: Sequence[tuple[str, str]] = (),
                          spoken: tuple[str, str] | None = None,
                          location: tuple[float, float] | None = None) -> None:
    """A new report or consultation whose description is what the person had already
    written or said (bot.services.freetext), when that will do: it is not asked for again;
    nor are the photos or the place they had already sent."""
    begun = None
    if text is not None or media or spoken or location:
        begun = await reporting.begin(uow, rt.clock, user_id, config=rt.config, kind=kind)
    if begun is None:  # too little to describe anything (or an enterprise matter)
        await _new_report(reply, rt, uow, t, user_id, kind)
        return
    row, report = begun
    said = []
    report.prefill_media(rt.config, media)
    if report.media:
        said.append(t("Your photos or videos are attached to it ({count}).",
                      count=len(report.media)))
    if location is not None:
        grid = await rt.grids.locate(uow, lat=location[0], lon=location[1])
        report.prefill_place(*location, grid)
        said.append(t("The location you shared is where it is.") if grid is not None else
                    t("The location you shared is outside every grid we serve; you will be "
                      "asked to choose the grid."))
    outcome = None
    if text is not None:
        # The offer of these words showed the 110/119/120 guidance already if they signal
        # danger.
        warned = tickets.words_signal_danger(rt.config, text)
        outcome = report.prefill(rt.config, text, warned=warned)
        said.insert(0, t("Your message is its description: {text}",
                         text=user_html(trimmed(text, 300))))
    if spoken is not None:
        outcome = report.prefill_spoken(rt.config, *spoken)
        said.insert(0, t("Your voice message is its description.") if spoken[0] == "voice"
                    else t("Your video note is its description."))
    reporting.save(uow, rt.clock, row, report)
    if outcome is not None and outcome.newly_urgent:
        reply.say(emergency_text(t))
    await _ask(reply, rt, uow, t, report, prefix="\n".join(said) or None)


def unfinished_text(rt: Runtime, t: Translator, report: Report) -> str:
    """The offer to continue an unfinished report (HTML), for /start, /report and the idle
    reminder (scheduler.drafts), all under the buttons of `kb.unfinished`."""
    category = report.category(rt.config)
    if report.kind == reporting.CONSULTATION:
        return t("You have an unfinished legal consultation. Continue where you left off, or "
                 "start over?")
    if report.kind == reporting.ENTERPRISE_DISPUTE:
        return t("You have an unfinished enterprise matter. Continue where you left off, or "
                 "start over?")
    if category is None:
        return t("You have an unfinished report. Continue where you left off, or start over?")
    return t("You have an unfinished report (<b>{category}</b>). Continue where you left off, "
             "or start over?", category=html.escape(category.names.get(t.language)))


def _cancelled(t: Translator, report: Report | None) -> str:
    if report is not None and report.kind != reporting.REPORT:
        return t("Your request was cancelled; nothing was sent.")
    return t("Your report was cancelled; nothing was sent.")


# -- buttons -----------------------------------------------------------------------------------


async def _on_button(reply: Reply, rt: Runtime, uow: UnitOfWork, t: Translator, update: Update,
                     row: Draft, report: Report, *, action: str, arg: str) -> bool:
    """Apply a button of the draft's current step. False: not valid now (nothing changed)."""
    config = rt.config
    user = update.effective_user
    step = report.step
    before = step
    outcome: Outcome | None = None
    if action == "cancel" and not arg:
        await reporting.discard(uow, user.id)
        reply.say(_cancelled(t, report), ReplyKeyboardRemove())
        return True
    if action == "resume" and not arg:
        # Continuing makes the report the person's conversation again, and the only one.
        await reporting.resume(uow, rt.clock, row, report)
        await _ask(reply, rt, uow, t, report)
        return True
    if action == "restart" and not arg:
        begun = await reporting.begin(uow, rt.clock, user.id, config=config, kind=report.kind)
        if begun is None:
            await reporting.discard(uow, user.id)
            reply.say(_cancelled(t, report))
            return True
        await _ask(reply, rt, uow, t, begun[1], came_from=before)
        return True
    if action == "back":
        if arg != step or step is report.order(config)[0]:
            return False
        report.back(config)
        reporting.save(uow, rt.clock, row, report)
        await _ask(reply, rt, uow, t, report, came_from=before)
        return True
    if action == "cat" and step is Step.CATEGORY:
        outcome = report.choose_category(config, arg)
    elif action == "skip" and arg == step and step in (Step.MEDIA, Step.CONTACT):
        outcome = report.skip(config)
    elif action == "nomedia" and not arg and step is Step.MEDIA and report.media:
        outcome = report.drop_media(config)
    elif action == "anon" and not arg and step is Step.CONTACT:
        outcome = report.go_anonymous(config)
    elif action == "way" and step is Step.WAY:
        outcome = report.choose_way(config, arg)
    elif action == "day" and step is Step.DAY:
        outcome = report.choose_day(config, arg, reporting.visit_days(config, rt.clock.now()))
    elif action == "ent" and step is Step.ENTERPRISE and arg.isascii() and arg.isdigit():
        outcome = report.choose_enterprise(config, int(arg[:18]))
    elif action in ("place", "list", "node", "last") and step is Step.PLACE:
        outcome = await _place_button(reply, uow, t, report, config, action, arg)
    elif action == "edit" and step is Step.SUMMARY:
        outcome = Outcome(moved=True) if report.edit(config, arg) else None
    elif action == "submit" and not arg and step is Step.SUMMARY:
        return await _submit(reply, rt, uow, t, update, row, report)
    elif action == "new_anyway" and not arg and step is Step.DUPLICATE:
        return await _submit(reply, rt, uow, t, update, row, report, offer_duplicates=False)
    elif action == "join" and step is Step.DUPLICATE and arg == str(report.duplicate_of):
        return await _join(reply, rt, uow, t, update, row, report)
    if outcome is None:
        return False
    reporting.save(uow, rt.clock, row, report)
    await _render(reply, rt, uow, t, report, outcome, before)
    return True


async def _place_button(reply: Reply, uow: UnitOfWork, t: Translator, report: Report, config,
                        action: str, arg: str) -> Outcome | None:
    """The place step's inline choices; menus are browsed by editing the pressed message."""
    if action == "place" and not arg:
        reply.edit = (t("Or choose here:"),
                      kb.place_options(t, await reporting.last_grid(uow, report)))
        return Outcome()
    if action == "list" and not arg:
        reply.edit = await _places_menu(uow, t, None)
        return Outcome()
    if action == "last" and not arg:
        grid = await reporting.last_grid(uow, report)
        return report.choose_grid(config, grid) if grid is not None else None
    if action != "node" or not (arg.isascii() and arg.isdigit() and len(arg) <= 18):
        return None  # forged: ids are database integers
    node = await reporting.pickable(uow, int(arg))
    if node is None:
        return None
    if node.level == "grid":
        reply.edit = ("📍 " + place_html(await uow.nodes.path(node), t.language), None)
        return report.choose_grid(config, node)
    menu = await _places_menu(uow, t, node)
    if menu is None:
        return None
    reply.edit = menu
    return Outcome()


async def _places_menu(uow: UnitOfWork, t: Translator,
                       node: OrgNode | None) -> tuple[str, Any] | None:
    """Street → community → grid: the choices under `node` (the top level when None)."""
    children = await reporting.places_under(uow, node)
    if not children:
        return None
    titles = {"street": t("Choose the street or town:"),
              "community": t("Choose the community or village:"),
              "grid": t("Choose the grid:")}
    text = titles.get(tier_of(children[0].level), t("Choose the place:"))
    parent = await uow.nodes.get(node.parent_id) if node and node.parent_id else None
    if node is None or parent is None:
        back = kb.PLACE_OPTIONS
    else:
        path = await uow.nodes.path(node)
        text = "📍 " + place_html(path[1:], t.language) + "\n" + text
        back = kb.PLACE_LIST if parent.parent_id is None else kb.NODE + str(parent.id)
    return text, kb.places(t, children, back)


# -- submitting --------------------------------------------------------------------------------


async def _submit(reply: Reply, rt: Runtime, uow: UnitOfWork, t: Translator, update: Update,
                  row: Draft, report: Report, *, offer_duplicates: bool = True,
                  note: str | None = None) -> bool:
    config = rt.config
    user = update.effective_user
    missing = report.missing(config)
    if missing is not None:
        # Only a draft from an older release could get here; ask what is missing.
        report.step = missing
        reporting.save(uow, rt.clock, row, report)
        await _ask(reply, rt, uow, t, report)
        return True
    result = await reporting.submit(
        uow, rt.clock, config, report, user_id=user.id,
        name=reporting.display_name(user.first_name, user.last_name), language=t.language,
        offer_duplicates=offer_duplicates)
    if result.result is Submitted.OVER_LIMIT:
        reply.say(t("You have already sent {limit} reports within the last hour, the most we "
                    "accept. Your report is kept: press Submit again later.",
                    limit=config.limits.tickets_per_hour))
        return True
    if result.result is Submitted.NOT_CONTACT:
        reply.say(t("You no longer act for that enterprise, so the matter cannot be sent for "
                    "it. Start again with /matter."))
        await reporting.discard(uow, user.id)
        return True
    if result.result is Submitted.DUPLICATE:
        reporting.save(uow, rt.clock, row, report)
        await _ask(reply, rt, uow, t, report)
        return True
    ticket = result.ticket
    bind_log_context(ticket=ticket.number)
    group = await Notifier(rt, uow).post_card(ticket)
    log.info("ticket %s created from a report draft", ticket.number)
    lines = [note] if note else []
    if report.kind == reporting.CONSULTATION:
        lines.append(t("✅ <b>Your consultation is registered as No. {number}.</b>",
                       number=ticket.number))
    elif report.kind == reporting.ENTERPRISE_DISPUTE:
        lines.append(t("✅ <b>The enterprise matter is registered as No. {number}.</b>",
                       number=ticket.number))
    else:
        lines.append(t("✅ <b>Your report is registered as No. {number}.</b>",
                       number=ticket.number))
    if ticket.urgent:
        lines.append(t("🚨 It is marked urgent."))
    handler = await uow.nodes.get(group.node_id) if group and group.node_id else None
    if handler is not None:
        lines.append(t("It has been sent to <b>{place}</b>, who will handle it. You will be "
                       "told here when it is taken on, how it progresses and when it is "
                       "resolved.",
                       place=place_html(await uow.nodes.path(handler), t.language)))
    else:
        lines.append(t("The staff will take it up; you will be told here when it is taken "
                       "on, how it progresses and when it is resolved."))
    lines.append(t("To follow it, send /start and open “My tickets”."))
    # The number is known only here: it must reach the resident even if the process dies
    # right after the commit.
    reply.say_kept(rt, uow, user.id, "\n".join(lines), ticket)
    return True


async def _join(reply: Reply, rt: Runtime, uow: UnitOfWork, t: Translator, update: Update,
                row: Draft, report: Report) -> bool:
    user = update.effective_user
    result = await reporting.join(uow, rt.clock, report, user_id=user.id,
                                  ticket_id=report.duplicate_of)
    if result is None:
        # Closed while the resident was deciding: their report goes in as a new one.
        return await _submit(reply, rt, uow, t, update, row, report, offer_duplicates=False,
                             note=t("That report is no longer open, so yours is registered "
                                    "as a new one."))
    ticket = result.ticket
    if not result.already_reporter:
        group = await uow.groups.get(ticket.group_chat_id) if ticket.group_chat_id else None
        tg = rt.translator(group.language if group else rt.config.default_language)
        await Notifier(rt, uow).to_group(ticket, tg(
            "➕ Another resident reported the same problem (No. {number}). They will get "
            "the same updates.", number=ticket.number))
    reply.say_kept(rt, uow, user.id, t(
        "You are now following <b>No. {number}</b>: you will get the same updates as the "
        "person who reported it. To follow it, send /start and open “My tickets”.",
        number=ticket.number), ticket)
    return True


# -- questions and explanations ----------------------------------------------------------------


async def _render(reply: Reply, rt: Runtime, uow: UnitOfWork, t: Translator, report: Report,
                  outcome: Outcome, before: Step) -> None:
    """What to say after an answer was applied: guidance, explanation or the next question."""
    if outcome.silent:
        return
    if outcome.newly_urgent:
        reply.say(emergency_text(t))
    if outcome.problem is not None:
        text = _explain(t, outcome.problem, outcome.values, report)
        if outcome.show_places:
            await _offer_places(reply, uow, t, text)
        elif outcome.reask:
            await _ask(reply, rt, uow, t, report, prefix=text, again=report.step is before)
        else:
            reply.say(text)
        return
    if outcome.show_places:
        await _offer_places(reply, uow, t, t("Address noted: {address}",
                                             address=user_html(report.address or "")))
    elif outcome.moved:
        await _ask(reply, rt, uow, t, report, prefix=await _ack(uow, t, rt, report, before),
                   came_from=before)


async def _offer_places(reply: Reply, uow: UnitOfWork, t: Translator, lead: str) -> None:
    menu = await _places_menu(uow, t, None)
    if menu is None:
        reply.say(lead)
        return
    reply.say(lead + "\n\n" + menu[0], menu[1])


async def _ack(uow: UnitOfWork, t: Translator, rt: Runtime, report: Report,
               answered: Step) -> str | None:
    """A short confirmation of the answer just taken, put above the next question."""
    if answered is Step.CATEGORY:
        return t("Category: <b>{name}</b>",
                 name=html.escape(category_name(rt.config, report.category_code, t.language)))
    if answered is Step.WAY and report.way in WAY_LABELS:
        return t("Answer: {way}", way=t(WAY_LABELS[report.way]))
    if answered is Step.DAY and report.visit_day:
        return t("Day: {day}", day=day_label(t, report.visit_day))
    if answered is Step.ENTERPRISE:
        return t("Enterprise: <b>{name}</b>", name=await _enterprise_name(uow, report))
    if answered is Step.PLACE:
        return "📍 " + await _place_text(uow, t, report)
    if answered is Step.MEDIA:
        return t("✅ Received.") if report.media else None
    if answered in (Step.DESCRIPTION, Step.CONTACT):
        return t("✅ Noted.")
    return None


async def _ask(reply: Reply, rt: Runtime, uow: UnitOfWork, t: Translator, report: Report, *,
               prefix: str | None = None, came_from: Step | None = None,
               again: bool = False) -> None:
    """The question of the draft's current step (after `prefix`, an ack or explanation).

    `again`: asked again after an answer that did not do, at the same step. The place and
    contact steps put their share button under the input field with one message and offer
    their other choices in a second one (a message has either kind of buttons); asked again,
    the share button is still there (it stays until it is taken away), so the question
    comes with the other choices in one message: two a time would soon run into Telegram's
    limit of about one message a second in a private chat."""
    config = rt.config
    step = report.step
    if came_from in REPLY_KEYBOARD_STEPS and step not in REPLY_KEYBOARD_STEPS:
        # The location/contact button under the input field must go; only a message can
        # take it away, and that message cannot also carry the next question's buttons.
        reply.say(prefix or t("OK."), ReplyKeyboardRemove())
        prefix = None

    position = report.position(config)
    if position is not None:
        # Where the person is: a question among several, and how many are left.
        step_line = t("Step {step} of {total}", step=position[0], total=position[1])

    def lead(text: str) -> str:
        if position is not None:
            text = f"<i>{step_line}</i>\n{text}"
        return f"{prefix}\n\n{text}" if prefix else text

    kind = report.kind
    if step is Step.ENTERPRISE:
        found = [await uow.enterprises.get(enterprise_id)
                 for enterprise_id in report.data.get("enterprise_choices", [])]
        choices = [(e.id, e.name) for e in found if e is not None]
        reply.say(lead(t("<b>Report an enterprise matter</b>\nFor which enterprise?")),
                  kb.enterprises(t, choices))
    elif step is Step.CATEGORY and kind == reporting.CONSULTATION:
        reply.say(lead(t("<b>Legal consultation</b>\nA lawyer of the public legal service "
                         "will answer. What is your question about?")),
                  kb.categories(t, config.categories_of(kind)))
    elif step is Step.CATEGORY and kind == reporting.ENTERPRISE_DISPUTE:
        reply.say(lead(t("<b>Report an enterprise matter</b>\nWhat is it about?")),
                  kb.categories(t, config.categories_of(kind)))
    elif step is Step.CATEGORY:
        reply.say(lead(t("<b>Report a problem</b>\nWhat is it about? Choose a category.")),
                  kb.categories(t, config.categories_of("report")))
    elif step is Step.DESCRIPTION and kind == reporting.CONSULTATION:
        reply.say(lead(t("<b>Your question</b> in {min} to {max} characters: what happened, "
                         "what you want to know. Do not include other people's ID numbers. "
                         "You may also send a voice message.",
                         min=config.limits.description_min_chars,
                         max=config.limits.description_max_chars)),
                  kb.back_only(t, step))
    elif step is Step.WAY:
        reply.say(lead(t("<b>How would you like the answer?</b>\nIn this chat; by a call from "
                         "the lawyer (they will then see your phone number); or in person at "
                         "the public legal service point on a day you choose.")),
                  kb.ways(t, WAY_LABELS))
    elif step is Step.DAY:
        days = reporting.visit_days(config, rt.clock.now())
        reply.say(lead(t("<b>Which day would you like to come?</b> The service point is open "
                         "on working days; the lawyer will confirm the time.")),
                  kb.days(t, [(day, day_label(t, day)) for day in days]))
    elif step is Step.MEDIA and kind == reporting.CONSULTATION:
        count = len(report.media)
        text = t("<b>Documents</b> (optional): photos of papers or PDF files, up to {max}. Or "
                 "press “{button}”.", max=config.limits.max_photos,
                 button=kb.media_skip(t, count))
        if count:
            text += "\n" + t("You have added {count} file(s) so far; sending new ones replaces "
                             "them.", count=count)
        reply.say(lead(text), kb.media(t, count))
    elif step is Step.DESCRIPTION:
        reply.say(lead(t("<b>Describe the problem</b> in {min} to {max} characters: what is "
                         "wrong, since when, who is affected. You may also send a voice "
                         "message or a video note.",
                         min=config.limits.description_min_chars,
                         max=config.limits.description_max_chars)),
                  kb.back_only(t, step))
    elif step is Step.MEDIA:
        count = len(report.media)
        text = t("<b>Photos or videos</b> (optional): send up to {max}; an album counts as "
                 "one answer. Or press “{button}”.", max=config.limits.max_photos,
                 button=kb.media_skip(t, count))
        if count:
            text += "\n" + t("You have added {count} photo(s) or video(s) so far; sending new ones "
                             "replaces them.", count=count)
        reply.say(lead(text), kb.media(t, count))
    elif step is Step.PLACE:
        text = t("<b>Where is it?</b>\nShare the location with the button below, choose the "
                 "grid from the list, or type the address.")
        if report.address:
            text += "\n" + t("Address noted: {address}. Please also choose the grid.",
                             address=user_html(report.address))
        options = kb.place_options(t, await reporting.last_grid(uow, report))
        if again:
            reply.say(lead(text), options)
        else:
            reply.say(lead(text), kb.location_request(t))
            reply.say(t("Or choose here:"), options)
    elif step is Step.CONTACT and report.way == "call":
        _ask_contact(reply, t, lead(t(
            "<b>Your phone number</b>, so that the lawyer can call you back: share it with "
            "the button below. Only the staff handling your consultation see it.")),
            kb.contact_options(t, False, skip_allowed=False), again=again)
    elif step is Step.CONTACT:
        category = report.category(config)
        allowed = category is not None and category.anonymous_allowed
        text = t("<b>How can the workers reach you?</b>\nShare your phone number with the "
                 "button below. The workers see your name and only part of the number (such "
                 "as 138****5678).")
        if allowed:
            text += "\n" + t("You may also report anonymously: the workers then see neither "
                             "your name nor your number.")
        _ask_contact(reply, t, lead(text), kb.contact_options(t, allowed), again=again)
    elif step is Step.SUMMARY:
        reply.say(lead(await _summary(uow, t, rt, report)),
                  kb.summary(t, with_media=config.limits.max_photos > 0, kind=kind,
                             token=report.token))
    elif step is Step.DUPLICATE:
        await _ask_duplicate(reply, uow, t, rt, report, lead)


def _ask_contact(reply: Reply, t: Translator, question: str, options: Any, *,
                 again: bool) -> None:
    if again:  # the share button is still under the input field (see _ask)
        reply.say(question, options)
    else:
        reply.say(question, kb.contact_request(t))
        reply.say(t("Or:"), options)


async def _ask_duplicate(reply: Reply, uow: UnitOfWork, t: Translator, rt: Runtime,
                         report: Report, lead: Callable[[str], str]) -> None:
    # Someone else's report: only what identifies it as the same problem, never its
    # description, address or the people on it (it may even be anonymous).
    ticket = await uow.tickets.get(report.duplicate_of)
    nearby = reporting.nearby_summary(report, ticket)
    lines = [t("An open report of the same kind was made about {distance} m away: "
               "<b>No. {number}</b> · {category} · {status}.", distance=nearby.distance_m,
               number=ticket.number,
               category=html.escape(category_name(rt.config, ticket.category, t.language)),
               status=t(STATUS_LABELS[ticket.status])),
             t("Add yourself to it (you will get the same updates), or submit yours as a "
               "new report?")]
    reply.say(lead("\n".join(lines)), kb.duplicate(t, ticket.id, ticket.number))


async def _place_text(uow: UnitOfWork, t: Translator, report: Report) -> str:
    grid = await uow.nodes.get(report.grid_id) if report.grid_id else None
    parts = [place_html(await uow.nodes.path(grid), t.language)] if grid else []
    if report.address:
        parts.append(user_html(report.address))
    return " · ".join(parts) or t("not chosen")


async def _summary(uow: UnitOfWork, t: Translator, rt: Runtime, report: Report) -> str:
    if report.kind == reporting.CONSULTATION:
        return _consultation_summary(t, rt, report)
    lines = [t("<b>Please check your report</b>"), ""]
    if report.kind == reporting.ENTERPRISE_DISPUTE:
        lines.append(t("Enterprise: <b>{name}</b>", name=await _enterprise_name(uow, report)))
    lines.append(t("Category: <b>{name}</b>", name=html.escape(
        category_name(rt.config, report.category_code or "", t.language))))
    if report.urgent:
        lines.append(t("🚨 Urgent"))
    if report.description:
        lines.append(t("Description: {text}", text=user_html(report.description)))
    if report.spoken is not None:
        lines.append(t("Description: a voice message") if report.spoken[0] == "voice"
                     else t("Description: a video note"))
    if report.media:
        lines.append(t("Photos and videos: {count}", count=len(report.media)))
    if report.kind == reporting.REPORT:
        lines.append(t("Place: {place}", place=await _place_text(uow, t, report)))
    if report.location is not None:
        lines.append(t("Location: shared"))
    if report.anonymous:
        lines.append(t("Contact: anonymous (the workers see neither your name nor your "
                       "number)"))
    elif report.phone:
        lines.append(t("Contact: {phone}", phone=user_html(report.phone)))
    else:
        lines.append(t("Contact: not shared"))
    lines += ["", t("Press Submit to send it, or change any part first.")]
    return "\n".join(lines)


def _consultation_summary(t: Translator, rt: Runtime, report: Report) -> str:
    lines = [t("<b>Please check your consultation</b>"), "",
             t("Topic: <b>{name}</b>", name=html.escape(
                 category_name(rt.config, report.category_code or "", t.language)))]
    if report.description:
        lines.append(t("Question: {text}", text=user_html(report.description)))
    if report.spoken is not None:
        lines.append(t("Question: a voice message"))
    if report.way in WAY_LABELS:
        way = t(WAY_LABELS[report.way])
        if report.way == "visit" and report.visit_day:
            way += " · " + day_label(t, report.visit_day)
        lines.append(t("Answer: {way}", way=way))
    if report.media:
        lines.append(t("Documents: {count}", count=len(report.media)))
    if report.phone:
        lines.append(t("Contact: {phone}", phone=user_html(report.phone)))
    else:
        lines.append(t("Contact: not shared"))
    lines += ["", t("Press Submit to send it, or change any part first.")]
    return "\n".join(lines)




async def _enterprise_name(uow: UnitOfWork, report: Report) -> str:
    enterprise = await uow.enterprises.get(report.enterprise_id or 0)
    return user_html(enterprise.name) if enterprise else "—"


def emergency_text(t: Translator) -> str:
    """The 110/119/120 guidance, shown the moment words or a category signal danger (also
    to free text, handlers.freetext, before any report exists)."""
    return t("🚨 <b>If anyone is in danger, call now:</b>\n"
             "110 — police\n119 — fire\n120 — ambulance\n\n"
             "Your report will be marked urgent, but it does not replace an emergency call.")


def _explain(t: Translator, problem: Problem, values: dict[str, Any], report: Report) -> str:
    # A text that names a button names one the person has in front of them: the media step's
    # first button changes once something was sent, and a call-back offers no Skip.
    call_back = report.step is Step.CONTACT and report.way == "call"
    if problem is Problem.TOO_SHORT:
        return t("That is too short: please write at least {min} characters (this was "
                 "{count}).", **values)
    if problem is Problem.TOO_LONG:
        return t("That is too long: please keep it within {max} characters (this was "
                 "{count}).", **values)
    if problem is Problem.NO_WORDS:
        return t("Please write it in words: emoji and symbols alone do not say what is "
                 "wrong.")
    if problem is Problem.NOT_DESCRIPTION:
        return t("Please describe the problem in words, or send a voice message or a video "
                 "note. Stickers, photos and files do not work here (photos come next).")
    if problem is Problem.TOO_LARGE:
        return t("That file is too large ({size} MB). Bots can receive files of up to {limit} "
                 "MB; please send a smaller one.", **values)
    if problem is Problem.ALBUM_FULL:
        return t("Only the first {max} photos or videos are kept.", **values)
    if problem is Problem.NOT_MEDIA:
        return t("Please send photos or videos (up to {max}), or press “{button}”.",
                 button=kb.media_skip(t, len(report.media)), **values)
    if problem is Problem.NOT_PLACE:
        return t("Please share a location, choose from the list, or type the address.")
    if problem is Problem.ADDRESS_TOO_LONG:
        return t("Please keep the address within {max} characters (this was {count}).",
                 **values)
    if problem is Problem.OUTSIDE_GRIDS:
        return t("That location is outside every grid we serve. Please choose the grid from "
                 "the list.")
    if problem is Problem.NOT_CONTACT and not call_back:
        return t("Please share your phone number with the button below, or press “{button}”.",
                 button=kb.contact_skip(t))
    if problem in (Problem.NOT_CONTACT, Problem.PHONE_NEEDED):
        return t("A call-back needs your phone number: share it with the button below, or go "
                 "back and choose another way to be answered.")
    if problem is Problem.NOT_DOCUMENT:
        return t("Please send photos or PDF files (up to {max}), or press “{button}”.",
                 max=values.get("max", ""), button=kb.media_skip(t, len(report.media)))
    if problem is Problem.NOT_OWN_CONTACT and call_back:
        return t("That is someone else's contact. Please share your own number with the "
                 "button below.")
    if problem is Problem.NOT_OWN_CONTACT:
        return t("That is someone else's contact. Please share your own number with the "
                 "button below, or press “{button}”.", button=kb.contact_skip(t))
    return t("Please use the buttons below.")


def _answer(message: Message) -> Answer:
    """The parts of a message the flow looks at."""
    album = message.media_group_id
    if message.text is not None:
        return Answer("text", text=message.text)
    if message.location is not None:  # also set for venues and live locations
        return Answer("location", latitude=message.location.latitude,
                      longitude=message.location.longitude)
    if message.contact is not None:
        return Answer("contact", contact_user_id=message.contact.user_id,
                      phone=message.contact.phone_number)
    if message.photo:
        largest = max(message.photo, key=lambda size: size.width * size.height)
        return Answer("photo", file_id=largest.file_id, file_size=largest.file_size,
                      album=album)
    for kind in ("video", "voice", "video_note"):
        media = getattr(message, kind)
        if media is not None:
            return Answer(kind, file_id=media.file_id, file_size=media.file_size, album=album)
    if message.document is not None:
        document = message.document
        return Answer("document", file_id=document.file_id, file_size=document.file_size,
                      album=album, mime=document.mime_type)
    return Answer("other", album=album)
