"""What the report flow says: its questions, summaries, explanations and buttons (rules in
bot.services.reporting, use cases in bot.actions.report).

Buttons that answer a step carry the step they belong to (``rp:back:media``), so a button left
on an older message cannot act on whatever step the draft has reached since. Each button's
data stays within Telegram's 64 bytes.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bot.config import Category, Config, tier_of
from bot.i18n import Translator
from bot.services import reporting
from bot.services.reporting import Problem, Report, Step
from bot.services.text import user_html
from bot.views import Ask, Button, Kept, Row, View
from bot.views.cards import STATUS_LABELS, WAY_LABELS, category_name, day_label
from bot.views.places import place_html
from storage.models import OrgNode, Ticket

PREFIX = "rp:"
NEW = "rp:new"            # the main menu's "Report a problem"
NEW_CONSULTATION = "rp:new:consultation"        # "Legal consultation"
NEW_ENTERPRISE_MATTER = "rp:new:enterprise_dispute"  # "Enterprise matter"
RESUME = "rp:resume"
RESTART = "rp:restart"
CANCEL = "rp:cancel"
CATEGORY = "rp:cat:"      # + category code
BACK = "rp:back:"         # + the step the button was shown at
SKIP = "rp:skip:"         # + media | contact
NO_MEDIA = "rp:nomedia"
PLACE_OPTIONS = "rp:place"
PLACE_LIST = "rp:list"
LAST_GRID = "rp:last"
NODE = "rp:node:"         # + org node id
ANONYMOUS = "rp:anon"
EDIT = "rp:edit:"         # + description | media | place | contact
SUBMIT = "rp:submit"
JOIN = "rp:join:"         # + ticket id
NEW_ANYWAY = "rp:new_anyway"
WAY = "rp:way:"           # + chat | call | visit
DAY = "rp:day:"           # + ISO date
ENTERPRISE = "rp:ent:"    # + enterprise id
# The summary's buttons end in "@" + the draft's token (rp:submit@3fa94c1e): one left on the
# summary of a report sent or cancelled since must not act on the next report.
DRAFT_TAG = "@"

# Telegram shows at most 100 buttons in one inline keyboard.
MAX_PLACE_BUTTONS = 98
# Steps whose question puts a share button (location / contact) under the input field.
SHARE_STEPS = (Step.PLACE, Step.CONTACT)


# -- buttons -----------------------------------------------------------------------------------


def _back(t: Translator, step: str) -> Button:
    return Button(t("⬅️ Back"), BACK + step)


def _pairs(buttons: list[Button]) -> list[list[Button]]:
    return [buttons[i:i + 2] for i in range(0, len(buttons), 2)]


def categories(t: Translator, options: Sequence[Category]) -> tuple[Row, ...]:
    rows = [[Button(c.names.get(t.language), CATEGORY + c.code)] for c in options]
    rows.append([Button(t("✖️ Cancel"), CANCEL)])
    return View.rows(*rows)


def back_only(t: Translator, step: str) -> tuple[Row, ...]:
    return View.rows([_back(t, step)])


def media_skip(t: Translator, count: int) -> str:
    """The media step's button that goes on without sending (more): texts name it by this."""
    return t("Keep these photos") if count else t("Skip")


def media(t: Translator, count: int) -> tuple[Row, ...]:
    first = [Button(media_skip(t, count), SKIP + "media")]
    if count:
        first.append(Button(t("Remove the photos"), NO_MEDIA))
    return View.rows(first, [_back(t, "media")])


def contact_skip(t: Translator) -> str:
    """The contact step's button for giving no number (absent for a call-back)."""
    return t("Skip")


def place_options(t: Translator, last_grid: OrgNode | None) -> tuple[Row, ...]:
    rows = []
    if last_grid is not None:
        rows.append([Button(t("Same place as last time: {grid}",
                              grid=last_grid.display_name(t.language)), LAST_GRID)])
    rows.append([Button(t("Choose from the list"), PLACE_LIST)])
    rows.append([_back(t, "place")])
    return View.rows(*rows)


def places(t: Translator, nodes: Sequence[OrgNode], back: str) -> tuple[Row, ...]:
    buttons = [Button(node.display_name(t.language), NODE + str(node.id))
               for node in nodes[:MAX_PLACE_BUTTONS]]
    return View.rows(*_pairs(buttons), [Button(t("⬅️ Back"), back)])


def ways(t: Translator, labels: dict[str, str]) -> tuple[Row, ...]:
    rows = [[Button(t(label), WAY + way)] for way, label in labels.items()]
    rows.append([_back(t, "way")])
    return View.rows(*rows)


def days(t: Translator, options: Sequence[tuple[str, str]]) -> tuple[Row, ...]:
    """(ISO date, label) pairs, two per row."""
    buttons = [Button(label, DAY + day) for day, label in options]
    return View.rows(*_pairs(buttons), [_back(t, "day")])


def enterprises(t: Translator, options: Sequence[tuple[int, str]]) -> tuple[Row, ...]:
    rows = [[Button(name, ENTERPRISE + str(enterprise_id))]
            for enterprise_id, name in options[:MAX_PLACE_BUTTONS]]
    rows.append([Button(t("✖️ Cancel"), CANCEL)])
    return View.rows(*rows)


def contact_options(t: Translator, anonymous_allowed: bool, *,
                    skip_allowed: bool = True) -> tuple[Row, ...]:
    rows = [[Button(contact_skip(t), SKIP + "contact")]] if skip_allowed else []
    if anonymous_allowed:
        rows.append([Button(t("🕶 Report anonymously"), ANONYMOUS)])
    rows.append([_back(t, "contact")])
    return View.rows(*rows)


def summary(t: Translator, *, with_media: bool, kind: str = "report",
            token: str | None = None) -> tuple[Row, ...]:
    if kind == "consultation":
        edits = [Button(t("✏️ Question"), EDIT + "description"),
                 Button(t("✏️ Answer by"), EDIT + "way")]
        more = [Button(t("✏️ Documents"), EDIT + "media")] if with_media else []
        more.append(Button(t("✏️ Contact"), EDIT + "contact"))
    else:
        edits = [Button(t("✏️ Description"), EDIT + "description")]
        if with_media:
            edits.append(Button(t("✏️ Photos"), EDIT + "media"))
        more = [Button(t("✏️ Contact"), EDIT + "contact")]
        if kind == "report":
            more.insert(0, Button(t("✏️ Place"), EDIT + "place"))
    rows = [
        [Button(t("✅ Submit"), SUBMIT)],
        edits,
        more,
        [_back(t, "summary"), Button(t("✖️ Cancel"), CANCEL)],
    ]
    if token is not None:
        tag = f"{DRAFT_TAG}{token}"
        rows = [[Button(b.label, b.data + tag) for b in row] for row in rows]
    return View.rows(*rows)


def duplicate(t: Translator, ticket_id: int, number: str) -> tuple[Row, ...]:
    return View.rows(
        [Button(t("➕ Add me to No. {number}", number=number), JOIN + str(ticket_id))],
        [Button(t("Submit as a new report"), NEW_ANYWAY)],
        [_back(t, "duplicate")],
    )


def unfinished_buttons(t: Translator) -> tuple[Row, ...]:
    return View.rows(
        [Button(t("▶️ Continue my report"), RESUME)],
        [Button(t("🔄 Start over"), RESTART), Button(t("✖️ Discard it"), CANCEL)],
    )


# -- texts -------------------------------------------------------------------------------------


def emergency_text(t: Translator) -> str:
    """The 110/119/120 guidance, shown the moment words or a category signal danger (also
    to free text, before any report exists)."""
    return t("🚨 <b>If anyone is in danger, call now:</b>\n"
             "110 — police\n119 — fire\n120 — ambulance\n\n"
             "Your report will be marked urgent, but it does not replace an emergency call.")


def emergency(t: Translator) -> View:
    return View(emergency_text(t))


def one_message(says: Sequence[View | Kept]) -> list[View | Kept]:
    """``says`` with its first message put above the second in the same message, when the
    first is plain words (no buttons, no change to the input field, nothing attached: the 110
    guidance, a line saying what happened) and the second is a view: the person reads the
    same words in the same order, and the bot makes one Bot API call instead of two (a
    private chat also takes only about one message a second)."""
    if len(says) < 2:
        return list(says)
    first, second = says[0], says[1]
    if not (isinstance(first, View) and isinstance(second, View)) or first.buttons \
            or first.ask is not Ask.NOTHING or first.attachments or second.attachments:
        return list(says)
    return [replace(second, text=f"{first.text}\n\n{second.text}"), *says[2:]]


def unfinished_text(config: Config, t: Translator, report: Report) -> str:
    """The offer to continue an unfinished report (HTML), for /start, /report and the idle
    reminder, all under the buttons of `unfinished_buttons`."""
    category = report.category(config)
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


def unfinished(config: Config, t: Translator, report: Report) -> View:
    return View(unfinished_text(config, t, report), unfinished_buttons(t))


def cancelled(t: Translator, report: Report | None) -> View:
    if report is not None and report.kind != reporting.REPORT:
        text = t("Your request was cancelled; nothing was sent.")
    else:
        text = t("Your report was cancelled; nothing was sent.")
    return View(text, ask=Ask.TEXT)


def nothing_to_cancel(t: Translator) -> str:
    return t("There is nothing to cancel.")


def no_enterprise(t: Translator) -> View:
    return View(t("Enterprise matters are reported by the contacts of a registered "
                  "enterprise. Register your enterprise with /enterprise, or ask a colleague "
                  "who registered it for the invitation code."))


def place_text(t: Translator, path: Sequence[OrgNode], report: Report) -> str:
    """The report's place (HTML): the grid's path and the address, as far as known."""
    parts = [place_html(path, t.language)] if path else []
    if report.address:
        parts.append(user_html(report.address))
    return " · ".join(parts) or t("not chosen")


@dataclass(frozen=True)
class Known:
    """What the flow's texts show from the database, read by the action: the report's place
    (HTML), its enterprise's name (HTML), the enterprises to choose from, the person's last
    grid, and the open report it may duplicate."""

    place: str = ""
    enterprise: str = "—"
    enterprise_choices: tuple[tuple[int, str], ...] = ()
    last_grid: OrgNode | None = None
    duplicate: Ticket | None = None


def summary_text(config: Config, t: Translator, report: Report, known: Known) -> str:
    if report.kind == reporting.CONSULTATION:
        return _consultation_summary(config, t, report)
    lines = [t("<b>Please check your report</b>"), ""]
    if report.kind == reporting.ENTERPRISE_DISPUTE:
        lines.append(t("Enterprise: <b>{name}</b>", name=known.enterprise))
    lines.append(t("Category: <b>{name}</b>", name=html.escape(
        category_name(config, report.category_code or "", t.language))))
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
        lines.append(t("Place: {place}", place=known.place))
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


def _consultation_summary(config: Config, t: Translator, report: Report) -> str:
    lines = [t("<b>Please check your consultation</b>"), "",
             t("Topic: <b>{name}</b>", name=html.escape(
                 category_name(config, report.category_code or "", t.language)))]
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


def ack(config: Config, t: Translator, report: Report, answered: Step,
        known: Known) -> str | None:
    """A short confirmation of the answer just taken, put above the next question."""
    if answered is Step.CATEGORY:
        return t("Category: <b>{name}</b>",
                 name=html.escape(category_name(config, report.category_code, t.language)))
    if answered is Step.WAY and report.way in WAY_LABELS:
        return t("Answer: {way}", way=t(WAY_LABELS[report.way]))
    if answered is Step.DAY and report.visit_day:
        return t("Day: {day}", day=day_label(t, report.visit_day))
    if answered is Step.ENTERPRISE:
        return t("Enterprise: <b>{name}</b>", name=known.enterprise)
    if answered is Step.PLACE:
        return "📍 " + known.place
    if answered is Step.MEDIA:
        return t("✅ Received.") if report.media else None
    if answered in (Step.DESCRIPTION, Step.CONTACT):
        return t("✅ Noted.")
    return None


def explain(t: Translator, problem: Problem, values: dict[str, Any], report: Report) -> str:
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
                 button=media_skip(t, len(report.media)), **values)
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
                 button=contact_skip(t))
    if problem in (Problem.NOT_CONTACT, Problem.PHONE_NEEDED):
        return t("A call-back needs your phone number: share it with the button below, or go "
                 "back and choose another way to be answered.")
    if problem is Problem.NOT_DOCUMENT:
        return t("Please send photos or PDF files (up to {max}), or press “{button}”.",
                 max=values.get("max", ""), button=media_skip(t, len(report.media)))
    if problem is Problem.NOT_OWN_CONTACT and call_back:
        return t("That is someone else's contact. Please share your own number with the "
                 "button below.")
    if problem is Problem.NOT_OWN_CONTACT:
        return t("That is someone else's contact. Please share your own number with the "
                 "button below, or press “{button}”.", button=contact_skip(t))
    return t("Please use the buttons below.")


def places_menu(t: Translator, children: Sequence[OrgNode], *, path: Sequence[OrgNode],
                back: str) -> View:
    """Street → community → grid: the choices under the place whose path (without the
    district) is ``path`` (empty at the top level)."""
    titles = {"street": t("Choose the street or town:"),
              "community": t("Choose the community or village:"),
              "grid": t("Choose the grid:")}
    text = titles.get(tier_of(children[0].level), t("Choose the place:"))
    if path:
        text = "📍 " + place_html(path, t.language) + "\n" + text
    return View(text, places(t, children, back))


def question(config: Config, t: Translator, report: Report, known: Known, *,
             prefix: str | None = None, came_from: Step | None = None, again: bool = False,
             visit_days: Sequence[str] = ()) -> list[View]:
    """The question of the draft's current step (after `prefix`, an ack or explanation).

    `again`: asked again after an answer that did not do, at the same step. The place and
    contact steps put their share button under the input field with one message and offer
    their other choices in a second one (a message has either kind of buttons); asked again,
    the share button is still there (it stays until it is taken away), so the question
    comes with the other choices in one message: two a time would soon run into Telegram's
    limit of about one message a second in a private chat."""
    views: list[View] = []
    step = report.step
    if came_from in SHARE_STEPS and step not in SHARE_STEPS:
        # The location/contact button under the input field must go; only a message can
        # take it away, and that message cannot also carry the next question's buttons.
        views.append(View(prefix or t("OK."), ask=Ask.TEXT))
        prefix = None

    position = report.position(config)
    step_line = ""
    if position is not None:
        # Where the person is: a question among several, and how many are left.
        step_line = t("Step {step} of {total}", step=position[0], total=position[1])

    def lead(text: str) -> str:
        if position is not None:
            text = f"<i>{step_line}</i>\n{text}"
        return f"{prefix}\n\n{text}" if prefix else text

    def say(text: str, buttons: tuple[Row, ...] = ()) -> None:
        views.append(View(text, buttons))

    kind = report.kind
    if step is Step.ENTERPRISE:
        say(lead(t("<b>Report an enterprise matter</b>\nFor which enterprise?")),
            enterprises(t, known.enterprise_choices))
    elif step is Step.CATEGORY and kind == reporting.CONSULTATION:
        say(lead(t("<b>Legal consultation</b>\nA lawyer of the public legal service "
                   "will answer. What is your question about?")),
            categories(t, config.categories_of(kind)))
    elif step is Step.CATEGORY and kind == reporting.ENTERPRISE_DISPUTE:
        say(lead(t("<b>Report an enterprise matter</b>\nWhat is it about?")),
            categories(t, config.categories_of(kind)))
    elif step is Step.CATEGORY:
        say(lead(t("<b>Report a problem</b>\nWhat is it about? Choose a category.")),
            categories(t, config.categories_of("report")))
    elif step is Step.DESCRIPTION and kind == reporting.CONSULTATION:
        say(lead(t("<b>Your question</b> in {min} to {max} characters: what happened, "
                   "what you want to know. Do not include other people's ID numbers. "
                   "You may also send a voice message.",
                   min=config.limits.description_min_chars,
                   max=config.limits.description_max_chars)),
            back_only(t, step))
    elif step is Step.WAY:
        say(lead(t("<b>How would you like the answer?</b>\nIn this chat; by a call from "
                   "the lawyer (they will then see your phone number); or in person at "
                   "the public legal service point on a day you choose.")),
            ways(t, WAY_LABELS))
    elif step is Step.DAY:
        say(lead(t("<b>Which day would you like to come?</b> The service point is open "
                   "on working days; the lawyer will confirm the time.")),
            days(t, [(day, day_label(t, day)) for day in visit_days]))
    elif step is Step.MEDIA and kind == reporting.CONSULTATION:
        count = len(report.media)
        text = t("<b>Documents</b> (optional): photos of papers or PDF files, up to {max}. Or "
                 "press “{button}”.", max=config.limits.max_photos,
                 button=media_skip(t, count))
        if count:
            text += "\n" + t("You have added {count} file(s) so far; sending new ones replaces "
                             "them.", count=count)
        say(lead(text), media(t, count))
    elif step is Step.DESCRIPTION:
        say(lead(t("<b>Describe the problem</b> in {min} to {max} characters: what is "
                   "wrong, since when, who is affected. You may also send a voice "
                   "message or a video note.",
                   min=config.limits.description_min_chars,
                   max=config.limits.description_max_chars)),
            back_only(t, step))
    elif step is Step.MEDIA:
        count = len(report.media)
        text = t("<b>Photos or videos</b> (optional): send up to {max}; an album counts as "
                 "one answer. Or press “{button}”.", max=config.limits.max_photos,
                 button=media_skip(t, count))
        if count:
            text += "\n" + t("You have added {count} photo(s) or video(s) so far; sending new ones "
                             "replaces them.", count=count)
        say(lead(text), media(t, count))
    elif step is Step.PLACE:
        text = t("<b>Where is it?</b>\nShare the location with the button below, choose the "
                 "grid from the list, or type the address.")
        if report.address:
            text += "\n" + t("Address noted: {address}. Please also choose the grid.",
                             address=user_html(report.address))
        options = place_options(t, known.last_grid)
        if again:
            say(lead(text), options)
        else:
            views.append(View(lead(text), ask=Ask.LOCATION,
                              ask_label=t("📍 Share my location")))
            say(t("Or choose here:"), options)
    elif step is Step.CONTACT and report.way == "call":
        views += _ask_contact(t, lead(t(
            "<b>Your phone number</b>, so that the lawyer can call you back: share it with "
            "the button below. Only the staff handling your consultation see it.")),
            contact_options(t, False, skip_allowed=False), again=again)
    elif step is Step.CONTACT:
        category = report.category(config)
        allowed = category is not None and category.anonymous_allowed
        text = t("<b>How can the workers reach you?</b>\nShare your phone number with the "
                 "button below. The workers see your name and only part of the number (such "
                 "as 138****5678).")
        if allowed:
            text += "\n" + t("You may also report anonymously: the workers then see neither "
                             "your name nor your number.")
        views += _ask_contact(t, lead(text), contact_options(t, allowed), again=again)
    elif step is Step.SUMMARY:
        say(lead(summary_text(config, t, report, known)),
            summary(t, with_media=config.limits.max_photos > 0, kind=kind,
                    token=report.token))
    elif step is Step.DUPLICATE and known.duplicate is not None:
        views.append(_duplicate(config, t, report, known.duplicate, lead))
    return views


def _ask_contact(t: Translator, question: str, options: tuple[Row, ...], *,
                 again: bool) -> list[View]:
    if again:  # the share button is still under the input field (see question)
        return [View(question, options)]
    return [View(question, ask=Ask.CONTACT, ask_label=t("📞 Share my phone number")),
            View(t("Or:"), options)]


def _duplicate(config: Config, t: Translator, report: Report, ticket: Ticket,
               lead: Callable[[str], str]) -> View:
    # Someone else's report: only what identifies it as the same problem, never its
    # description, address or the people on it (it may even be anonymous).
    nearby = reporting.nearby_summary(report, ticket)
    lines = [t("An open report of the same kind was made about {distance} m away: "
               "<b>No. {number}</b> · {category} · {status}.", distance=nearby.distance_m,
               number=ticket.number,
               category=html.escape(category_name(config, ticket.category, t.language)),
               status=t(STATUS_LABELS[ticket.status])),
             t("Add yourself to it (you will get the same updates), or submit yours as a "
               "new report?")]
    return View(lead("\n".join(lines)), duplicate(t, ticket.id, ticket.number))


def registered(t: Translator, report: Report, ticket: Ticket, *, handler_place: str | None,
               note: str | None = None) -> View:
    """The confirmation of a ticket just created from the report (``handler_place``: HTML of
    the place whose group handles it, None when no group has it)."""
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
    if handler_place is not None:
        lines.append(t("It has been sent to <b>{place}</b>, who will handle it. You will be "
                       "told here when it is taken on, how it progresses and when it is "
                       "resolved.", place=handler_place))
    else:
        lines.append(t("The staff will take it up; you will be told here when it is taken "
                       "on, how it progresses and when it is resolved."))
    lines.append(t("To follow it, send /start and open “My tickets”."))
    return View("\n".join(lines))


def joined(t: Translator, ticket: Ticket) -> View:
    return View(t(
        "You are now following <b>No. {number}</b>: you will get the same updates as the "
        "person who reported it. To follow it, send /start and open “My tickets”.",
        number=ticket.number))


def joined_note(tg: Translator, ticket: Ticket) -> str:
    """For the ticket's group: another resident joined the report."""
    return tg("➕ Another resident reported the same problem (No. {number}). They will get "
              "the same updates.", number=ticket.number)
