"""What the enterprise forms and the overview say (bot.services.enterprises has the rules).

Callback data (each within 64 bytes): en:menu, en:reg, en:join, en:cancel, en:same, en:agree,
en:confirm, en:stay, en:back:<step>, en:edit:<step>, en:ind:<industry>, en:place:<node id>,
en:leave:<enterprise id>, en:bye:<enterprise id>.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from bot.config import Config
from bot.i18n import Translator
from bot.services import credit_code, enterprises
from bot.services.credit_code import CodeProblem
from bot.services.enterprises import Form, Managed, Outcome, Problem, Step
from bot.services.phones import mask_phone
from bot.services.text import user_html
from bot.views import Ask, Button, View
from bot.views.cards import local_time, trimmed
from bot.views.places import place_html
from storage.models import Enterprise, EnterpriseContact, OrgNode

PREFIX = "en:"
MENU = "en:menu"   # the main menu's entry (bot.views.menu)
# Telegram shows at most 100 buttons in one inline keyboard; keep room for Back and Cancel.
MAX_CHOICES = 90
BUTTON_NAME_CHARS = 24


def _button(text: str, data: str) -> Button:
    return Button(text, data)


def _controls(t: Translator, form: Form, config: Config) -> list[list[Button]]:
    """Back (except at the first question) and Cancel."""
    row = []
    if form.editing or not form.first(config):
        row.append(_button(t("⬅️ Back"), f"{PREFIX}back:{form.step}"))
    row.append(_button(t("✖️ Cancel"), f"{PREFIX}cancel"))
    return [row]


def _view(text: str, rows: Sequence[Sequence[Button]]) -> View:
    return View(text, View.rows(*rows))


def question(t: Translator, config: Config, form: Form, *, prefix: str | None = None,
             came_from: Step | None = None, again: bool = False,
             previous: EnterpriseContact | None = None, places: Sequence[OrgNode] = (),
             place: str = "—") -> list[View]:
    """The question of the form's current step, after `prefix` (an ack or explanation).

    `again`: asked again at the same step after an answer that did not do. The phone step
    puts its share button under the input field with one message and its other choices in a
    second; asked again, the share button is still there (it stays until taken away), so one
    message does: two each time would soon meet Telegram's limit of about one message a
    second in a private chat. `previous`: the person's contact details of an earlier form
    (the contact step offers them), `places`: the places to choose from (the place step),
    `place`: the chosen place as HTML (the summary)."""
    views: list[View] = []
    step = form.step
    if came_from is Step.PHONE and step is not Step.PHONE:
        # The contact button under the input field must go; only a message can take it
        # away, and that message cannot also carry the next question's buttons.
        views.append(View(prefix or t("OK."), ask=Ask.TEXT))
        prefix = None

    def lead(text: str) -> str:
        order = form.order(config)
        where = t("Step {step} of {total}", step=order.index(step) + 1, total=len(order))
        text = f"{text}\n<i>{where}</i>" if step is not Step.SUMMARY else text
        return f"{prefix}\n\n{text}" if prefix else text

    controls = _controls(t, form, config)
    if step is Step.NAME:
        views.append(_view(lead(t(
            "<b>Register an enterprise</b>\nWhat is the enterprise's full name, "
            "as on its business licence? ({min} to {max} characters)",
            min=enterprises.NAME_MIN_CHARS, max=enterprises.NAME_MAX_CHARS)), controls))
    elif step is Step.CODE:
        views.append(_view(lead(t(
            "<b>Unified social credit code</b> (统一社会信用代码)\nThe 18 characters "
            "on the business licence, for example 91440300708461136T.")), controls))
    elif step is Step.INVITE:
        views.append(_view(lead(t(
            "<b>Join an enterprise</b>\nType the invitation code a colleague "
            "gave you. Contacts of the enterprise find it under /enterprise.")), controls))
    elif step is Step.CONTACT:
        rows = []
        if previous is not None:
            rows.append([_button(t("Same as before: {name}, {phone}",
                                   name=trimmed(previous.name, BUTTON_NAME_CHARS),
                                   phone=mask_phone(previous.phone) or ""),
                                 f"{PREFIX}same")])
        views.append(_view(lead(t(
            "<b>Your name</b>, as the enterprise's contact person ({min} to {max} "
            "characters):", min=enterprises.CONTACT_MIN_CHARS,
            max=enterprises.CONTACT_MAX_CHARS)), rows + controls))
    elif step is Step.PHONE:
        text = lead(t("<b>Your mobile number</b>: type it (11 digits, such as 138 1234 "
                      "5678), or share this Telegram account's number with the button "
                      "below."))
        if again:
            views.append(_view(text, controls))
        else:
            views.append(View(text, ask=Ask.CONTACT,
                              ask_label=t("📞 Share my phone number")))
            views.append(_view(t("Or:"), controls))
    elif step is Step.INDUSTRY:
        buttons = [_button(i.names.get(t.language), f"{PREFIX}ind:{i.code}")
                   for i in config.industries[:MAX_CHOICES]]
        rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
        views.append(_view(lead(t("<b>Industry</b>: choose the one closest to the "
                                  "enterprise's main business.")), rows + controls))
    elif step is Step.PLACE:
        buttons = [_button(node.display_name(t.language), f"{PREFIX}place:{node.id}")
                   for node in places[:MAX_CHOICES]]
        rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
        views.append(_view(lead(t("<b>Where is it?</b> Choose the street, town or park the "
                                  "enterprise is in.")), rows + controls))
    elif step is Step.CONSENT:
        views.append(_view(lead(consent_text(t)),
                           [[_button(t("✅ I agree"), f"{PREFIX}agree")], *controls]))
    elif step is Step.SUMMARY:
        views.append(_view(lead(summary(t, config, form, place)),
                           _summary_rows(t, config)))
    return views


def taken(t: Translator, text: str) -> View:
    """The credit code is someone else's: join them, or stop."""
    return _view(text, [[_button(t("🔑 Join with an invitation code"), f"{PREFIX}join")],
                        [_button(t("✖️ Cancel"), f"{PREFIX}cancel")]])


def consent_text(t: Translator) -> str:
    return t("<b>Use of your data</b>\nWhat you give here — the enterprise's name, credit code, "
             "industry and place, and your name and mobile number — is kept by the grid "
             "service. The enterprise service desk and the volunteer lawyers use it only to "
             "handle the enterprise's requests: legal check-ups, enterprise matters and "
             "consultations. It is not published or passed on to anyone else. You can stop "
             "acting for the enterprise at any time under /enterprise.\n\n"
             "Press “I agree” to go on.")


def _summary_rows(t: Translator, config: Config) -> list[list[Button]]:
    edit = f"{PREFIX}edit:"
    rows = [[_button(t("✅ Register"), f"{PREFIX}confirm")],
            [_button(t("✏️ Name"), edit + Step.NAME),
             _button(t("✏️ Credit code"), edit + Step.CODE)],
            [_button(t("✏️ Contact person"), edit + Step.CONTACT),
             _button(t("✏️ Mobile"), edit + Step.PHONE)]]
    places = [_button(t("✏️ Place"), edit + Step.PLACE)]
    if config.industries:
        places.insert(0, _button(t("✏️ Industry"), edit + Step.INDUSTRY))
    rows.append(places)
    rows.append([_button(t("⬅️ Back"), f"{PREFIX}back:{Step.SUMMARY}"),
                 _button(t("✖️ Cancel"), f"{PREFIX}cancel")])
    return rows


def summary(t: Translator, config: Config, form: Form, place: str) -> str:
    data = form.data
    lines = [t("<b>Please check before you register</b>"), "",
             t("Enterprise: <b>{name}</b>", name=user_html(data.get("name") or "")),
             t("Credit code: {code}", code=user_html(data.get("credit_code") or "")),
             t("Contact: {name}, {phone}", name=user_html(data.get("contact_name") or ""),
               phone=user_html(data.get("phone") or ""))]
    if config.industries:
        lines.append(t("Industry: {name}", name=html.escape(
            industry_name(config, t, data.get("industry") or ""))))
    lines.append(t("Place: {place}", place=place))
    lines += ["", t("Press Register to finish, or change any part first.")]
    return "\n".join(lines)


def industry_name(config: Config, t: Translator, code: str) -> str:
    industry = config.industry(code)
    return industry.names.get(t.language) if industry else (code or "—")


def industry_chosen(t: Translator, config: Config, code: str) -> View:
    return View(t("Industry: <b>{name}</b>", name=html.escape(industry_name(config, t, code))))


def place_text(t: Translator, path: Sequence[OrgNode] | None) -> str:
    """The chosen place (its path from the top, the top left out), or "—"."""
    return place_html(path[1:], t.language) if path else "—"


def how_to_join(t: Translator) -> str:
    return t("A colleague who should also act for the enterprise sends /enterprise to this bot, "
             "chooses “Join with an invitation code” and types the code. Give it only to people "
             "of your enterprise.")


def unfinished(t: Translator) -> str:
    return t("You have an unfinished form; here is where you stopped. Send "
             "/cancel to drop it.")


def cancelled(t: Translator, joining: bool) -> View:
    text = (t("Cancelled. You did not join any enterprise.") if joining
            else t("Cancelled. Nothing was registered."))
    return View(text, ask=Ask.TEXT)


def noted(t: Translator, outcome: Outcome, form: Form, before: Step) -> str | None:
    """The acknowledgement of an answer taken, or None."""
    if outcome.enterprise is not None and form.joining:
        return t("Invitation code accepted: <b>{name}</b>.",
                 name=user_html(outcome.enterprise.name))
    if before in (Step.NAME, Step.CODE, Step.CONTACT, Step.PHONE):
        return t("✅ Noted.")
    return None


def registered(t: Translator, enterprise: Enterprise) -> View:
    return View("\n\n".join([
        t("✅ <b>{name}</b> is registered, and you are its contact.",
          name=user_html(enterprise.name)),
        t("Invitation code for colleagues: <code>{code}</code>", code=enterprise.invite_code),
        how_to_join(t),
    ]))


def joined(t: Translator, config: Config, enterprise: Enterprise | None, done: bool) -> View:
    if enterprise is None:
        return View(t("That enterprise is no longer registered. Please ask your colleague."))
    if not done:
        return View(explain(t, config, Outcome(Problem.ALREADY_CONTACT, enterprise=enterprise)))
    return View(t("✅ You are now a contact of <b>{name}</b> and can act for it. /enterprise "
                  "shows your enterprises.", name=user_html(enterprise.name)))


def consented(t: Translator) -> View:
    return View(t("✅ You agreed to the use of the data."))


def stay(t: Translator) -> View:
    return View(t("You stay a contact; nothing changed."))


def leave_question(t: Translator, enterprise: Enterprise, owner: bool) -> View:
    lines = [t("Leave <b>{name}</b>? You will no longer act for it.",
               name=user_html(enterprise.name))]
    if owner:
        lines.append(t("As its owner, you hand that role to the colleague who joined "
                       "first."))
    return _view("\n".join(lines), [[
        _button(t("🚪 Yes, leave"), f"{PREFIX}bye:{enterprise.id}"),
        _button(t("No, stay"), f"{PREFIX}stay")]])


def left(t: Translator, enterprise: Enterprise) -> View:
    return View(t("You no longer act for <b>{name}</b>.", name=user_html(enterprise.name)))


def last_contact(t: Translator, enterprise: Enterprise) -> View:
    return View(t("You are the only contact of <b>{name}</b>, so you cannot leave: nobody "
                  "would be left to act for it. Invite a colleague with the code "
                  "<code>{code}</code> first, then leave. To end the registration itself, ask "
                  "the enterprise service desk.",
                  name=user_html(enterprise.name), code=enterprise.invite_code))


def no_longer_valid(t: Translator) -> str:
    return t("This button is no longer valid.")


# -- the overview ---------------------------------------------------------------------------------

def overview(t: Translator, config: Config, managed: Sequence[Managed]) -> View:
    if not managed:
        return _view(t("<b>Enterprises</b>\nRegister your enterprise to book legal check-ups "
                       "and report enterprise matters, or join one a colleague has registered "
                       "with the invitation code they give you."), [
            [_button(t("➕ Register an enterprise"), f"{PREFIX}reg")],
            [_button(t("🔑 Join with an invitation code"), f"{PREFIX}join")]])
    lines = [t("<b>Your enterprises</b>")]
    leave = []
    for item in managed:
        enterprise = item.enterprise
        place = place_html(item.place[1:], t.language) if item.place else "—"
        role = t("owner") if item.role == "owner" else t("contact")
        lines += ["", f"🏢 <b>{user_html(enterprise.name)}</b>",
                  t("Credit code: {code}", code=credit_code.masked(enterprise.credit_code)),
                  t("Industry: {name}", name=html.escape(
                      industry_name(config, t, enterprise.industry))),
                  t("Place: {place}", place=place),
                  t("Contacts: {count} · you are the {role}", count=item.contacts, role=role),
                  t("Invitation code: <code>{code}</code>", code=enterprise.invite_code)]
        leave.append([_button(t("🚪 Leave {name}",
                                name=trimmed(enterprise.name, BUTTON_NAME_CHARS)),
                              f"{PREFIX}leave:{enterprise.id}")])
    lines += ["", how_to_join(t)]
    rows = [[_button(t("➕ Register another"), f"{PREFIX}reg"),
             _button(t("🔑 Join with a code"), f"{PREFIX}join")], *leave]
    return _view("\n".join(lines), rows)


# -- explanations ---------------------------------------------------------------------------------

def explain(t: Translator, config: Config, outcome: Outcome) -> str:
    problem, values = outcome.problem, outcome.values
    name = user_html(outcome.enterprise.name) if outcome.enterprise else ""
    if problem is Problem.NOT_TEXT:
        return t("Please type the answer as text.")
    if problem is Problem.TOO_SHORT:
        return t("That is too short: please write at least {min} characters.", **values)
    if problem is Problem.TOO_LONG:
        return t("That is too long: please keep it within {max} characters (this was "
                 "{count}).", **values)
    if problem is Problem.BAD_CODE:
        return _code_problem(t, outcome.code)
    if problem is Problem.CODE_TAKEN:
        return t("This credit code is already registered, and an enterprise is registered only "
                 "once. To act for it, ask a colleague who is already its contact for the "
                 "invitation code (they find it under /enterprise), then choose “Join with an "
                 "invitation code”. Or type another code.")
    if problem is Problem.CODE_YOURS:
        return t("You already manage <b>{name}</b>, which has this credit code. /enterprise "
                 "shows it.", name=name)
    if problem is Problem.BAD_PHONE:
        return t("That is not a mainland China mobile number: it has 11 digits and starts with "
                 "13 to 19, such as 138 1234 5678.")
    if problem is Problem.NOT_OWN_CONTACT:
        return t("That is someone else's contact. Please type your own mobile number, or share "
                 "it with the button below.")
    if problem is Problem.WRONG_INVITE:
        if values["left"] <= 0:
            return t("No enterprise has this invitation code. That was the last try for now; "
                     "please check the code with your colleague and try again in an hour.")
        return t("No enterprise has this invitation code. Please check it with your colleague "
                 "(tries left this hour: {left}).", **values)
    if problem is Problem.TOO_MANY_GUESSES:
        return t("Too many wrong invitation codes. Please try again after {time}.",
                 time=local_time(config, values["until"]))
    if problem is Problem.ALREADY_CONTACT:
        return t("You are already a contact of <b>{name}</b>. /enterprise shows it.", name=name)
    return t("Please use the buttons below.")


def _code_problem(t: Translator, check: credit_code.CodeCheck) -> str:
    problem = check.problem
    if problem is CodeProblem.EMPTY:
        return t("Please type the 18 characters of the code.")
    if problem is CodeProblem.LENGTH:
        return t("A unified social credit code has 18 characters; this one has {count}.",
                 count=check.length)
    character = user_html(check.character)
    if problem is CodeProblem.CHARACTER:
        text = t("Character {position}, “{character}”, is not used in credit codes: they have "
                 "digits and capital letters, but no I, O, Z, S or V.",
                 position=check.position, character=character)
        if check.suggestion:
            text += " " + t("Did you mean “{suggestion}”?", suggestion=check.suggestion)
        return text
    if problem is CodeProblem.DIVISION:
        return t("Characters 3 to 8 are the area code and are digits only, but character "
                 "{position} is “{character}”.", position=check.position, character=character)
    return t("The code does not add up: for the first 17 characters the last one should be "
             "“{expected}”, not “{character}”. Please compare it with the business licence; "
             "one character is probably mistyped.", expected=check.expected,
             character=character)
