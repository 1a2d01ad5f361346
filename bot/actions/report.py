"""The resident's report flow (a problem, a legal consultation, an enterprise matter): each
answer, button and command is one action (rules in bot.services.reporting, texts in
bot.views.report).

Every action follows the same pattern: load the draft, apply the answer, save the draft,
build the answer's views, commit, and only then does the door send them, so whatever the
bot acknowledged is in the database.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from bot.actions.notifier import Notifier
from bot.actions.outbox import keep
from bot.actions.people import Who, translator
from bot.i18n import Translator
from bot.logs import bind_log_context
from bot.runtime import Runtime
from bot.services import reporting, tickets
from bot.services.reporting import Outcome, Report, Step, Submitted
from bot.services.text import user_html
from bot.views import Answer, Ask, View
from bot.views import report as views
from bot.views.cards import trimmed
from bot.views.places import place_html
from storage.models import Draft, OrgNode
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Press:
    """A pressed button of the flow: its data, and the name of who pressed it (for the
    ticket, should the press submit the report)."""

    data: str
    name: str = ""


# -- commands and messages ---------------------------------------------------------------------


async def start(rt: Runtime, who: Who, kind: str) -> Answer:
    """/report, /consult, /matter and the menu's entries: a new request of this kind, or the
    offer to continue an unfinished one."""
    answer = Answer()
    async with rt.uow() as uow:
        t = await translator(rt, uow, who)
        await _new_report(answer, rt, uow, t, who.user_id, kind)
        await uow.commit()
    return answer


async def cancel(rt: Runtime, who: Who) -> Answer:
    """/cancel while the report is the person's conversation (or none is). Not this flow's
    when another conversation is in progress: its own /cancel handles it."""
    async with rt.uow() as uow:
        newest = await uow.drafts.any_of(who.user_id)
        if newest is not None and newest.flow != reporting.FLOW:
            return Answer.not_mine()
        t = await translator(rt, uow, who)
        if newest is not None:
            answer = await take(rt, uow, t, who, newest, None)
        else:
            answer = Answer([View(views.nothing_to_cancel(t), ask=Ask.TEXT)])
        await uow.commit()
    return answer


async def take(rt: Runtime, uow: UnitOfWork, t: Translator, who: Who, row: Draft,
               message: reporting.Answer | None) -> Answer:
    """Inside the caller's unit of work (the caller commits): a message while ``row``, the
    person's newest draft, is their report; ``message`` None: /cancel."""
    report = _report_of(row)
    if message is None:
        await reporting.discard(uow, who.user_id)
        return Answer([views.cancelled(t, report)])
    answer = Answer()
    before = report.step
    outcome = await reporting.answer_message(uow, rt.config, rt.grids, report, message,
                                             user_id=who.user_id)
    await reporting.save(uow, rt.clock, row, report)
    await _render(answer, rt, uow, t, report, outcome, before)
    return answer


def _report_of(row: Draft) -> Report:
    """The report a draft row holds, read as reporting.load reads it (without reading the
    row again)."""
    try:
        return Report(row.step, row.data or {}, row.id)
    except ValueError:  # a step this version does not know: that step starts over
        return Report(Step.CATEGORY, row.data or {}, row.id)


async def unfinished_report(uow: UnitOfWork, user_id: int) -> Report | None:
    """For /start, inside its unit of work: the person's unfinished report, if any."""
    loaded = await reporting.load(uow, user_id)
    return loaded[1] if loaded is not None else None


# -- buttons -----------------------------------------------------------------------------------


async def press(rt: Runtime, who: Who, pressed: Press) -> Answer:
    """A button of the flow ("rp:..."), pressed in a private chat."""
    data, tagged, tag = pressed.data.partition(views.DRAFT_TAG)
    action, _, arg = data.removeprefix(views.PREFIX).partition(":")
    user_id = who.user_id
    answer = Answer()
    async with rt.uow() as uow:
        t = await translator(rt, uow, who)
        if who.in_group:
            return Answer(alert=t("This button is no longer valid."))
        starts = action == "new" and (arg or reporting.REPORT) in reporting.KINDS
        # The draft is read once: for the summary's token and for the button (a new report
        # reads it where it begins).
        loaded = None if starts and not tagged else await reporting.load(uow, user_id)
        if tagged and (loaded is None or loaded[1].token != tag):
            # The summary of a report sent or cancelled since: it must not act on the next.
            return Answer(alert=t("That report was already sent or cancelled; this summary "
                                  "is out of date."), unbutton=True)
        if starts:
            await _new_report(answer, rt, uow, t, user_id, arg or reporting.REPORT)
            await uow.commit()
            return answer
        if loaded is None and pressed.data in (views.RESUME, views.RESTART):
            # The report was discarded meanwhile (another flow was started, or it was
            # cancelled or sent): the person still means to report, so a new one begins
            # and, being their only conversation now, takes their next answers.
            start = len(answer.say)
            answer.add(View(t("That unfinished report is no longer kept. Please start again.")))
            await _new_report(answer, rt, uow, t, user_id, reporting.REPORT)
            answer.say[start:] = views.one_message(answer.say[start:])
            await uow.commit()
            return answer
        if loaded is None and pressed.data == views.CANCEL:
            # "Discard it" (under a reminder, say) pressed after the draft has gone.
            return Answer(alert=views.nothing_to_cancel(t))
        if loaded is not None and await _on_button(answer, rt, uow, t, who, pressed.name,
                                                   *loaded, action=action, arg=arg):
            # The pressed summary is finished with once its report is: its buttons go.
            answer.unbutton = bool(tagged) and not await uow.drafts.exists(
                user_id, reporting.FLOW)
            await uow.commit()
            return answer
    # Forged data, or a button of a finished, cancelled or moved-on draft.
    return Answer(alert=t("This button is no longer valid."))


async def _new_report(answer: Answer, rt: Runtime, uow: UnitOfWork, t: Translator,
                      user_id: int, kind: str) -> None:
    loaded = await reporting.load(uow, user_id)
    if loaded is not None:
        answer.add(views.unfinished(rt.config, t, loaded[1]))
        return
    begun = await reporting.begin(uow, rt.clock, user_id, config=rt.config, kind=kind)
    if begun is None:  # an enterprise matter from someone who acts for no enterprise
        answer.add(views.no_enterprise(t))
        return
    await _ask(answer, rt, uow, t, begun[1])


async def begin_with_text(answer: Answer, rt: Runtime, uow: UnitOfWork, t: Translator,
                          user_id: int, kind: str, text: str | None, *,
                          media: Sequence[tuple[str, str]] = (),
                          spoken: tuple[str, str] | None = None,
                          location: tuple[float, float] | None = None) -> None:
    """Within the caller's unit of work (it commits): a new report or consultation whose
    description is what the person had already written or said (bot.services.freetext),
    when that will do: it is not asked for again; nor are the photos or the place they had
    already sent."""
    begun = None
    if text is not None or media or spoken or location:
        begun = await reporting.begin(uow, rt.clock, user_id, config=rt.config, kind=kind)
    if begun is None:  # too little to describe anything (or an enterprise matter)
        await _new_report(answer, rt, uow, t, user_id, kind)
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
    await reporting.save(uow, rt.clock, row, report)
    start = len(answer.say)
    if outcome is not None and outcome.newly_urgent:
        answer.add(views.emergency(t))
    await _ask(answer, rt, uow, t, report, prefix="\n".join(said) or None)
    answer.say[start:] = views.one_message(answer.say[start:])


async def _on_button(answer: Answer, rt: Runtime, uow: UnitOfWork, t: Translator, who: Who,
                     name: str, row: Draft, report: Report, *, action: str, arg: str) -> bool:
    """Apply a button of the draft's current step. False: not valid now (nothing changed)."""
    config = rt.config
    user_id = who.user_id
    step = report.step
    before = step
    outcome: Outcome | None = None
    if action == "cancel" and not arg:
        await reporting.discard(uow, user_id)
        answer.add(views.cancelled(t, report))
        return True
    if action == "resume" and not arg:
        # Continuing makes the report the person's conversation again, and the only one.
        await reporting.resume(uow, rt.clock, row, report)
        await _ask(answer, rt, uow, t, report)
        return True
    if action == "restart" and not arg:
        begun = await reporting.begin(uow, rt.clock, user_id, config=config, kind=report.kind)
        if begun is None:
            await reporting.discard(uow, user_id)
            answer.add(View(views.cancelled(t, report).text))
            return True
        await _ask(answer, rt, uow, t, begun[1], came_from=before)
        return True
    if action == "back":
        if arg != step or step is report.order(config)[0]:
            return False
        report.back(config)
        await reporting.save(uow, rt.clock, row, report)
        await _ask(answer, rt, uow, t, report, came_from=before)
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
        outcome = await _place_button(answer, uow, t, report, config, action, arg)
    elif action == "edit" and step is Step.SUMMARY:
        outcome = Outcome(moved=True) if report.edit(config, arg) else None
    elif action == "submit" and not arg and step is Step.SUMMARY:
        return await _submit(answer, rt, uow, t, user_id, name, row, report)
    elif action == "new_anyway" and not arg and step is Step.DUPLICATE:
        return await _submit(answer, rt, uow, t, user_id, name, row, report,
                             offer_duplicates=False)
    elif action == "join" and step is Step.DUPLICATE and arg == str(report.duplicate_of):
        return await _join(answer, rt, uow, t, user_id, name, row, report)
    if outcome is None:
        return False
    await reporting.save(uow, rt.clock, row, report)
    await _render(answer, rt, uow, t, report, outcome, before)
    return True


async def _place_button(answer: Answer, uow: UnitOfWork, t: Translator, report: Report, config,
                        action: str, arg: str) -> Outcome | None:
    """The place step's inline choices; menus are browsed by editing the pressed message."""
    if action == "place" and not arg:
        answer.edit = View(t("Or choose here:"),
                           views.place_options(t, await reporting.last_grid(uow, report)))
        return Outcome()
    if action == "list" and not arg:
        # From a community's poster (the web chat), the list opens at that community.
        near = report.data.get("near_node_id")
        node = await reporting.pickable(uow, near) if isinstance(near, int) else None
        answer.edit = (await _places_menu(uow, t, node) if node is not None else None) or \
            await _places_menu(uow, t, None)
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
        answer.edit = View("📍 " + place_html(await uow.nodes.path(node), t.language))
        return report.choose_grid(config, node)
    menu = await _places_menu(uow, t, node)
    if menu is None:
        return None
    answer.edit = menu
    return Outcome()


async def _places_menu(uow: UnitOfWork, t: Translator, node: OrgNode | None) -> View | None:
    """Street → community → grid: the choices under `node` (the top level when None)."""
    children = await reporting.places_under(uow, node)
    if not children:
        return None
    parent = await uow.nodes.get(node.parent_id) if node and node.parent_id else None
    if node is None or parent is None:
        return views.places_menu(t, children, path=(), back=views.PLACE_OPTIONS)
    path = await uow.nodes.path(node)
    back = views.PLACE_LIST if parent.parent_id is None else views.NODE + str(parent.id)
    return views.places_menu(t, children, path=path[1:], back=back)


# -- submitting --------------------------------------------------------------------------------


async def _submit(answer: Answer, rt: Runtime, uow: UnitOfWork, t: Translator, user_id: int,
                  name: str, row: Draft, report: Report, *, offer_duplicates: bool = True,
                  note: str | None = None) -> bool:
    config = rt.config
    missing = report.missing(config)
    if missing is not None:
        # Only a draft from an older release could get here; ask what is missing.
        report.step = missing
        await reporting.save(uow, rt.clock, row, report)
        await _ask(answer, rt, uow, t, report)
        return True
    result = await reporting.submit(uow, rt.clock, config, report, user_id=user_id, name=name,
                                    language=t.language, offer_duplicates=offer_duplicates)
    if result.result is Submitted.OVER_LIMIT:
        answer.add(View(t("You have already sent {limit} reports within the last hour, the "
                          "most we accept. Your report is kept: press Submit again later.",
                          limit=config.limits.tickets_per_hour)))
        return True
    if result.result is Submitted.NOT_CONTACT:
        answer.add(View(t("You no longer act for that enterprise, so the matter cannot be "
                          "sent for it. Start again with /matter.")))
        await reporting.discard(uow, user_id)
        return True
    if result.result is Submitted.DUPLICATE:
        await reporting.save(uow, rt.clock, row, report)
        await _ask(answer, rt, uow, t, report)
        return True
    ticket = result.ticket
    bind_log_context(ticket=ticket.number)
    group = await Notifier(rt, uow).post_card(ticket)
    log.info("ticket %s created from a report draft", ticket.number)
    handler = await uow.nodes.get(group.node_id) if group and group.node_id else None
    place = (place_html(await uow.nodes.path(handler), t.language)
             if handler is not None else None)
    # The number is known only here: it must reach the resident even if the process dies
    # right after the commit.
    answer.add(await keep(rt, uow, user_id,
                          views.registered(t, report, ticket, handler_place=place, note=note),
                          ticket=ticket))
    return True


async def _join(answer: Answer, rt: Runtime, uow: UnitOfWork, t: Translator, user_id: int,
                name: str, row: Draft, report: Report) -> bool:
    result = await reporting.join(uow, rt.clock, report, user_id=user_id,
                                  ticket_id=report.duplicate_of)
    if result is None:
        # Closed while the resident was deciding: their report goes in as a new one.
        return await _submit(answer, rt, uow, t, user_id, name, row, report,
                             offer_duplicates=False,
                             note=t("That report is no longer open, so yours is registered "
                                    "as a new one."))
    ticket = result.ticket
    if not result.already_reporter:
        group = await uow.groups.get(ticket.group_chat_id) if ticket.group_chat_id else None
        tg = rt.translator(group.language if group else rt.config.default_language)
        await Notifier(rt, uow).to_group(ticket, views.joined_note(tg, ticket))
    answer.add(await keep(rt, uow, user_id, views.joined(t, ticket), ticket=ticket))
    return True


# -- questions and explanations ----------------------------------------------------------------


async def _render(answer: Answer, rt: Runtime, uow: UnitOfWork, t: Translator, report: Report,
                  outcome: Outcome, before: Step) -> None:
    """What to say after an answer was applied: guidance, explanation or the next question."""
    if outcome.silent:
        return
    start = len(answer.say)
    if outcome.newly_urgent:
        answer.add(views.emergency(t))
    await _say_next(answer, rt, uow, t, report, outcome, before)
    answer.say[start:] = views.one_message(answer.say[start:])


async def _say_next(answer: Answer, rt: Runtime, uow: UnitOfWork, t: Translator,
                    report: Report, outcome: Outcome, before: Step) -> None:
    if outcome.problem is not None:
        text = views.explain(t, outcome.problem, outcome.values, report)
        if outcome.show_places:
            await _offer_places(answer, uow, t, text)
        elif outcome.reask:
            await _ask(answer, rt, uow, t, report, prefix=text, again=report.step is before)
        else:
            answer.add(View(text))
        return
    if outcome.show_places:
        await _offer_places(answer, uow, t, t("Address noted: {address}",
                                              address=user_html(report.address or "")))
    elif outcome.moved:
        known = await _known(uow, t, report, before)
        await _ask(answer, rt, uow, t, report,
                   prefix=views.ack(rt.config, t, report, before, known), came_from=before)


async def _offer_places(answer: Answer, uow: UnitOfWork, t: Translator, lead: str) -> None:
    menu = await _places_menu(uow, t, None)
    if menu is None:
        answer.add(View(lead))
        return
    answer.add(View(lead + "\n\n" + menu.text, menu.buttons))


async def _known(uow: UnitOfWork, t: Translator, report: Report, step: Step) -> views.Known:
    """What the summary, or the acknowledgement of ``step``, shows from the database: the
    report's place and its enterprise."""
    place, enterprise = "", "—"
    summary = step is Step.SUMMARY
    if step is Step.PLACE or (summary and report.kind == reporting.REPORT):
        grid = await uow.nodes.get(report.grid_id) if report.grid_id else None
        place = views.place_text(t, await uow.nodes.path(grid) if grid else [], report)
    if step is Step.ENTERPRISE or (summary and report.kind == reporting.ENTERPRISE_DISPUTE):
        found = await uow.enterprises.get(report.enterprise_id or 0)
        enterprise = user_html(found.name) if found else "—"
    return views.Known(place=place, enterprise=enterprise)


async def _ask(answer: Answer, rt: Runtime, uow: UnitOfWork, t: Translator, report: Report, *,
               prefix: str | None = None, came_from: Step | None = None,
               again: bool = False) -> None:
    """The question of the draft's current step (after `prefix`), read and built."""
    config = rt.config
    step = report.step
    known = views.Known()
    visit_days: list[str] = []
    if step is Step.ENTERPRISE:
        found = [await uow.enterprises.get(enterprise_id)
                 for enterprise_id in report.data.get("enterprise_choices", [])]
        known = views.Known(enterprise_choices=tuple((e.id, e.name) for e in found
                                                     if e is not None))
    elif step is Step.DAY:
        visit_days = reporting.visit_days(config, rt.clock.now())
    elif step is Step.PLACE:
        known = views.Known(last_grid=await reporting.last_grid(uow, report))
    elif step is Step.SUMMARY:
        known = await _known(uow, t, report, Step.SUMMARY)
    elif step is Step.DUPLICATE:
        known = views.Known(duplicate=await uow.tickets.get(report.duplicate_of))
    for view in views.question(config, t, report, known, prefix=prefix, came_from=came_from,
                               again=again, visit_days=visit_days):
        answer.add(view)
