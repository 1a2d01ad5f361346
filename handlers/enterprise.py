"""Enterprise registration in Telegram (rules in bot.services.enterprises): /enterprise and the
main menu's entry show the person's enterprises, or offer to register one or to join one with an
invitation code; the two forms ask one question at a time; contacts can leave.

Callback data (each within 64 bytes): en:menu, en:reg, en:join, en:cancel, en:same, en:agree,
en:confirm, en:stay, en:back:<step>, en:edit:<step>, en:ind:<industry>, en:place:<node id>,
en:leave:<enterprise id>, en:bye:<enterprise id>. Buttons that answer a step are accepted only
at that step, and anything naming an enterprise only from one of its contacts, so an old or
forged button gets "no longer valid" and changes nothing.

The handlers run in a handler group of their own (HANDLER_GROUP) before group 0: the message
handler takes a private message only while the person's conversation is one of these forms
(and /cancel then), and lets everything else through to the other flows and the fallbacks.
Every update loads the draft, applies the answer, saves, commits, and only then talks to
Telegram.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    filters,
)

from bot.config import Config
from bot.context import runtime
from bot.i18n import Translator
from bot.runtime import Runtime
from bot.services import credit_code, enterprises
from bot.services.credit_code import CodeProblem
from bot.services.enterprises import (
    FLOW,
    JOIN_FLOW,
    Answer,
    Form,
    Left,
    Outcome,
    Problem,
    Registered,
    Step,
)
from bot.services.phones import mask_phone
from bot.services.text import user_html
from bot.views.cards import local_time, trimmed
from bot.views.places import place_html
from handlers.common import command_of, translator_for
from storage.models import Draft, Enterprise
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

PREFIX = "en:"
MENU = "en:menu"   # the main menu's entry (handlers.keyboards)
PRIVATE_MESSAGES = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
# Telegram shows at most 100 buttons in one inline keyboard; keep room for Back and Cancel.
MAX_CHOICES = 90
BUTTON_NAME_CHARS = 24

_DATA = re.compile(r"en:(?:(menu|reg|join|cancel|same|agree|confirm|stay)"
                   r"|(back|edit):([a-z]{1,16})|(ind):([A-Za-z0-9_-]{1,48})"
                   r"|(place|leave|bye):(\d{1,12}))")


def register(app: Application) -> None:
    """In group 0; the form's messages come through the router (form_message)."""
    app.add_handler(CommandHandler("enterprise", enterprise_command, filters=PRIVATE_MESSAGES))
    app.add_handler(CallbackQueryHandler(enterprise_callback, pattern=f"^{PREFIX}"))


@dataclass
class Reply:
    """What to send once the transaction is committed, in order."""

    messages: list[tuple[str, Any]] = field(default_factory=list)
    edit: str | None = None        # new text for the pressed message (its buttons go)
    unbutton: bool = False         # just take the pressed message's buttons away
    alert: str | None = None

    def say(self, text: str, markup: Any = None) -> None:
        self.messages.append((text, markup))

    async def send(self, update: Update) -> None:
        query = update.callback_query
        if query is not None:
            await query.answer(self.alert, show_alert=self.alert is not None)
            try:
                if self.edit is not None:
                    await query.edit_message_text(self.edit, parse_mode="HTML")
                elif self.unbutton:
                    await query.edit_message_reply_markup(reply_markup=None)
            except BadRequest as exc:
                # Pressed twice, or a message too old to edit: the answer below still comes.
                log.debug("could not edit the pressed message: %s", exc.message)
        for text, markup in self.messages:
            await update.effective_chat.send_message(text, parse_mode="HTML",
                                                     reply_markup=markup)


# -- entry points ---------------------------------------------------------------------------------

async def enterprise_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = runtime(context)
    reply = Reply()
    async with rt.uow() as uow:
        t = await translator_for(rt, uow, update)
        await _entry(reply, rt, uow, t, update.effective_user.id)
        await uow.commit()
    await reply.send(update)
    raise ApplicationHandlerStop


async def _entry(reply: Reply, rt: Runtime, uow: UnitOfWork, t: Translator,
                 user_id: int) -> None:
    """An unfinished form continues where it stopped; otherwise the overview."""
    loaded = await enterprises.load(uow, user_id)
    if loaded is not None:
        await _ask(reply, rt, uow, t, loaded[1], user_id,
                   prefix=t("You have an unfinished form; here is where you stopped. Send "
                            "/cancel to drop it."))
        return
    reply.say(*await _overview(uow, rt, t, user_id))


async def form_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    user = update.effective_user
    if user is None:
        return
    command = command_of(message)
    if command not in (None, "cancel"):
        return  # other commands keep their meaning; the form waits for its answer
    rt = runtime(context)
    reply = Reply()
    async with rt.uow() as uow:
        loaded = await enterprises.load(uow, user.id)
        if loaded is None:
            return  # not answering one of these forms
        draft, form = loaded
        t = await translator_for(rt, uow, update)
        if command == "cancel":
            await _cancel(reply, uow, t, form, user.id)
        else:
            before = form.step
            outcome = await enterprises.answer_message(uow, rt.clock, rt.config, form,
                                                       _answer(message), user_id=user.id)
            # A contact may have come from the share button, which is gone once pressed.
            await _after(reply, rt, uow, t, draft, form, outcome, before, user.id,
                         button_gone=message.contact is not None)
        await uow.commit()
    await reply.send(update)
    raise ApplicationHandlerStop


async def enterprise_callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    rt = runtime(context)
    reply = Reply()
    async with rt.uow() as uow:
        t = await translator_for(rt, uow, update)
        if not await _on_button(reply, rt, uow, t, update):
            reply = Reply(alert=t("This button is no longer valid."))
        else:
            await uow.commit()
    await reply.send(update)
    raise ApplicationHandlerStop


async def _on_button(reply: Reply, rt: Runtime, uow: UnitOfWork, t: Translator,
                     update: Update) -> bool:
    """Apply a pressed button; False for one that is forged, old, or not the person's."""
    match = _DATA.fullmatch(update.callback_query.data or "")
    chat = update.effective_chat
    if match is None or chat is None or chat.type != chat.PRIVATE:
        return False
    user_id = update.effective_user.id
    word, action, step_arg, _, industry, target, number = match.groups()
    config = rt.config
    if word == "menu":
        await _entry(reply, rt, uow, t, user_id)
        return True
    if word in ("reg", "join"):
        form = await enterprises.start(uow, rt.clock, config, user_id,
                                       FLOW if word == "reg" else JOIN_FLOW)
        reply.unbutton = True
        # Locked out by wrong codes: said at once, not after typing the next one.
        until = await enterprises.locked_until(uow, rt.clock, user_id) if form.joining else None
        prefix = None if until is None else _explain(
            rt, t, Outcome(Problem.TOO_MANY_GUESSES, values={"until": until}))
        await _ask(reply, rt, uow, t, form, user_id, prefix=prefix)
        return True
    if target in ("leave", "bye"):
        return await _leave(reply, uow, t, user_id, int(number), confirmed=target == "bye")
    if word == "stay":
        reply.edit = t("You stay a contact; nothing changed.")
        return True

    loaded = await enterprises.load(uow, user_id)
    if loaded is None:
        return False  # the form is over (sent, cancelled, expired, or another one began)
    draft, form = loaded
    before = form.step
    if word == "cancel":
        await _cancel(reply, uow, t, form, user_id)
        reply.unbutton = True
        return True
    outcome: Outcome | None = None
    acknowledge = action is None
    if action == "back" and step_arg == form.step:
        if not form.back(config):
            return False
        outcome = Outcome(moved=True)
        reply.unbutton = True
    elif action == "edit" and form.step is Step.SUMMARY and step_arg in enterprises.EDITABLE:
        if step_arg == Step.INDUSTRY and not config.industries:
            return False
        form.edit(Step(step_arg))
        outcome = Outcome(moved=True)
        reply.unbutton = True
    elif industry is not None:
        outcome = enterprises.choose_industry(config, form, industry)
        if outcome is not None:
            reply.edit = t("Industry: <b>{name}</b>",
                           name=html.escape(_industry_name(rt, t, industry)))
    elif target == "place":
        outcome = await enterprises.choose_place(uow, config, form, int(number))
        if outcome is not None:
            reply.edit = "📍 " + await _place_text(uow, t, form)
    elif word == "same":
        outcome = await enterprises.use_previous_contact(uow, config, form, user_id)
        reply.unbutton = True
    elif word == "agree":
        outcome = enterprises.give_consent(rt.clock, config, form)
        if outcome is not None:
            reply.edit = t("✅ You agreed to the use of the data.")
            if form.joining:
                await _join(reply, rt, uow, t, form, user_id)
                return True
    elif word == "confirm" and form.step is Step.SUMMARY:
        await _register(reply, rt, uow, t, draft, form, user_id)
        reply.unbutton = True
        return True
    if outcome is None:
        return False
    await _after(reply, rt, uow, t, draft, form, outcome, before, user_id,
                 acknowledge=acknowledge)
    return True


# -- after an answer ------------------------------------------------------------------------------

async def _after(reply: Reply, rt: Runtime, uow: UnitOfWork, t: Translator, draft: Draft,
                 form: Form, outcome: Outcome, before: Step, user_id: int, *,
                 acknowledge: bool = True, button_gone: bool = False) -> None:
    """Save the form and say what comes next: an explanation and the same question, or the
    next question; or end the form when the outcome says it is over. `button_gone`: the
    answer may have been the press of the share button under the input field, which takes
    the button away (it is shown once), so a question asked again brings it back."""
    if outcome.finished:
        await uow.drafts.discard(user_id, form.flow)
        reply.say(_explain(rt, t, outcome), ReplyKeyboardRemove())
        return
    enterprises.save(uow, rt.clock, draft, form)
    if outcome.problem is Problem.CODE_TAKEN:
        reply.say(_explain(rt, t, outcome), _taken_keyboard(t))
        return
    if outcome.problem is not None:
        await _ask(reply, rt, uow, t, form, user_id, prefix=_explain(rt, t, outcome),
                   again=form.step is before and not button_gone)
        return
    ack = None
    if acknowledge and outcome.enterprise is not None and form.joining:
        ack = t("Invitation code accepted: <b>{name}</b>.",
                name=user_html(outcome.enterprise.name))
    elif acknowledge and before in (Step.NAME, Step.CODE, Step.CONTACT, Step.PHONE):
        ack = t("✅ Noted.")
    await _ask(reply, rt, uow, t, form, user_id, prefix=ack, came_from=before)


async def _cancel(reply: Reply, uow: UnitOfWork, t: Translator, form: Form,
                  user_id: int) -> None:
    await uow.drafts.discard(user_id, form.flow)
    text = (t("Cancelled. You did not join any enterprise.") if form.joining
            else t("Cancelled. Nothing was registered."))
    reply.say(text, ReplyKeyboardRemove())


async def _register(reply: Reply, rt: Runtime, uow: UnitOfWork, t: Translator, draft: Draft,
                    form: Form, user_id: int) -> None:
    if not form.complete(rt.config):
        # Only a draft from an older release could get here: ask what is missing.
        form.step = next(step for step in form.order(rt.config) if not _answered(form, step))
        enterprises.save(uow, rt.clock, draft, form)
        await _ask(reply, rt, uow, t, form, user_id)
        return
    done = await enterprises.register(uow, rt.clock, rt.config, form, user_id=user_id)
    if done.result is Registered.TAKEN:
        # Registered by someone else while this form was being filled in.
        form.data.pop("credit_code", None)
        form.data.pop("editing", None)
        form.step = Step.CODE
        enterprises.save(uow, rt.clock, draft, form)
        reply.say(_explain(rt, t, Outcome(Problem.CODE_TAKEN)), _taken_keyboard(t))
        return
    await uow.drafts.discard(user_id, FLOW)
    enterprise = done.enterprise
    if done.result is Registered.ALREADY_YOURS:
        reply.say(_explain(rt, t, Outcome(Problem.CODE_YOURS, enterprise=enterprise)))
        return
    log.info("enterprise %s registered", enterprise.id)
    reply.say("\n\n".join([
        t("✅ <b>{name}</b> is registered, and you are its contact.",
          name=user_html(enterprise.name)),
        t("Invitation code for colleagues: <code>{code}</code>", code=enterprise.invite_code),
        _how_to_join(t),
    ]))


async def _join(reply: Reply, rt: Runtime, uow: UnitOfWork, t: Translator, form: Form,
                user_id: int) -> None:
    joined, enterprise = await enterprises.join(uow, rt.clock, form, user_id=user_id)
    await uow.drafts.discard(user_id, JOIN_FLOW)
    if enterprise is None:
        reply.say(t("That enterprise is no longer registered. Please ask your colleague."))
    elif not joined:
        reply.say(_explain(rt, t, Outcome(Problem.ALREADY_CONTACT, enterprise=enterprise)))
    else:
        log.info("a contact joined enterprise %s", enterprise.id)
        reply.say(t("✅ You are now a contact of <b>{name}</b> and can act for it. /enterprise "
                    "shows your enterprises.", name=user_html(enterprise.name)))


async def _leave(reply: Reply, uow: UnitOfWork, t: Translator, user_id: int,
                 enterprise_id: int, *, confirmed: bool) -> bool:
    if not confirmed:
        enterprise = await uow.enterprises.get(enterprise_id)
        contact = await uow.enterprises.contact(enterprise_id, user_id)
        if enterprise is None or contact is None:
            return False
        if len(await uow.enterprises.contacts(enterprise_id)) == 1:
            reply.say(_last_contact(t, enterprise))
            return True
        lines = [t("Leave <b>{name}</b>? You will no longer act for it.",
                   name=user_html(enterprise.name))]
        if contact.role == "owner":
            lines.append(t("As its owner, you hand that role to the colleague who joined "
                           "first."))
        reply.say("\n".join(lines), InlineKeyboardMarkup([[
            _button(t("🚪 Yes, leave"), f"{PREFIX}bye:{enterprise_id}"),
            _button(t("No, stay"), f"{PREFIX}stay")]]))
        return True
    result, enterprise = await enterprises.leave(uow, user_id, enterprise_id)
    if result is Left.NOT_CONTACT:
        return False
    if result is Left.LAST_CONTACT:  # the others left since the question was asked
        reply.edit = _last_contact(t, enterprise)
        return True
    log.info("a contact left enterprise %s", enterprise.id)
    reply.edit = t("You no longer act for <b>{name}</b>.", name=user_html(enterprise.name))
    return True


def _last_contact(t: Translator, enterprise: Enterprise) -> str:
    return t("You are the only contact of <b>{name}</b>, so you cannot leave: nobody would be "
             "left to act for it. Invite a colleague with the code <code>{code}</code> first, "
             "then leave. To end the registration itself, ask the enterprise service desk.",
             name=user_html(enterprise.name), code=enterprise.invite_code)


# -- questions ------------------------------------------------------------------------------------

def _button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=data)


def _controls(t: Translator, form: Form, config: Config) -> list[list[InlineKeyboardButton]]:
    """Back (except at the first question) and Cancel."""
    row = []
    if form.editing or not form.first(config):
        row.append(_button(t("⬅️ Back"), f"{PREFIX}back:{form.step}"))
    row.append(_button(t("✖️ Cancel"), f"{PREFIX}cancel"))
    return [row]


async def _ask(reply: Reply, rt: Runtime, uow: UnitOfWork, t: Translator, form: Form,
               user_id: int, *, prefix: str | None = None,
               came_from: Step | None = None, again: bool = False) -> None:
    """The question of the form's current step, after `prefix` (an ack or explanation).

    `again`: asked again at the same step after an answer that did not do. The phone step
    puts its share button under the input field with one message and its other choices in a
    second; asked again, the share button is still there (it stays until taken away), so one
    message does: two each time would soon meet Telegram's limit of about one message a
    second in a private chat."""
    config = rt.config
    step = form.step
    if came_from is Step.PHONE and step is not Step.PHONE:
        # The contact button under the input field must go; only a message can take it
        # away, and that message cannot also carry the next question's buttons.
        reply.say(prefix or t("OK."), ReplyKeyboardRemove())
        prefix = None

    def lead(text: str) -> str:
        order = form.order(config)
        where = t("Step {step} of {total}", step=order.index(step) + 1, total=len(order))
        text = f"{text}\n<i>{where}</i>" if step is not Step.SUMMARY else text
        return f"{prefix}\n\n{text}" if prefix else text

    controls = _controls(t, form, config)
    if step is Step.NAME:
        reply.say(lead(t("<b>Register an enterprise</b>\nWhat is the enterprise's full name, "
                         "as on its business licence? ({min} to {max} characters)",
                         min=enterprises.NAME_MIN_CHARS, max=enterprises.NAME_MAX_CHARS)),
                  InlineKeyboardMarkup(controls))
    elif step is Step.CODE:
        reply.say(lead(t("<b>Unified social credit code</b> (统一社会信用代码)\nThe 18 characters "
                         "on the business licence, for example 91440300708461136T.")),
                  InlineKeyboardMarkup(controls))
    elif step is Step.INVITE:
        reply.say(lead(t("<b>Join an enterprise</b>\nType the invitation code a colleague "
                         "gave you. Contacts of the enterprise find it under /enterprise.")),
                  InlineKeyboardMarkup(controls))
    elif step is Step.CONTACT:
        rows = []
        previous = await uow.enterprises.latest_contact(user_id)
        if previous is not None:
            rows.append([_button(t("Same as before: {name}, {phone}",
                                   name=trimmed(previous.name, BUTTON_NAME_CHARS),
                                   phone=mask_phone(previous.phone) or ""),
                                 f"{PREFIX}same")])
        reply.say(lead(t("<b>Your name</b>, as the enterprise's contact person ({min} to {max} "
                         "characters):", min=enterprises.CONTACT_MIN_CHARS,
                         max=enterprises.CONTACT_MAX_CHARS)),
                  InlineKeyboardMarkup(rows + controls))
    elif step is Step.PHONE:
        reply.say(lead(t("<b>Your mobile number</b>: type it (11 digits, such as 138 1234 "
                         "5678), or share this Telegram account's number with the button "
                         "below.")), InlineKeyboardMarkup(controls) if again
                  else _phone_keyboard(t))
        if not again:
            reply.say(t("Or:"), InlineKeyboardMarkup(controls))
    elif step is Step.INDUSTRY:
        buttons = [_button(i.names.get(t.language), f"{PREFIX}ind:{i.code}")
                   for i in config.industries[:MAX_CHOICES]]
        rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
        reply.say(lead(t("<b>Industry</b>: choose the one closest to the enterprise's main "
                         "business.")), InlineKeyboardMarkup(rows + controls))
    elif step is Step.PLACE:
        places = (await uow.enterprises.places())[:MAX_CHOICES]
        buttons = [_button(node.display_name(t.language), f"{PREFIX}place:{node.id}")
                   for node in places]
        rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
        reply.say(lead(t("<b>Where is it?</b> Choose the street, town or park the enterprise "
                         "is in.")), InlineKeyboardMarkup(rows + controls))
    elif step is Step.CONSENT:
        reply.say(lead(_consent_text(t)), InlineKeyboardMarkup(
            [[_button(t("✅ I agree"), f"{PREFIX}agree")], *controls]))
    elif step is Step.SUMMARY:
        reply.say(lead(await _summary(rt, uow, t, form)), _summary_keyboard(t, form, config))


def _phone_keyboard(t: Translator) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup([[KeyboardButton(t("📞 Share my phone number"),
                                                request_contact=True)]],
                               resize_keyboard=True, one_time_keyboard=True)


def _taken_keyboard(t: Translator) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([
        [_button(t("🔑 Join with an invitation code"), f"{PREFIX}join")],
        [_button(t("✖️ Cancel"), f"{PREFIX}cancel")]])


def _consent_text(t: Translator) -> str:
    return t("<b>Use of your data</b>\nWhat you give here — the enterprise's name, credit code, "
             "industry and place, and your name and mobile number — is kept by the grid "
             "service. The enterprise service desk and the volunteer lawyers use it only to "
             "handle the enterprise's requests: legal check-ups, enterprise matters and "
             "consultations. It is not published or passed on to anyone else. You can stop "
             "acting for the enterprise at any time under /enterprise.\n\n"
             "Press “I agree” to go on.")


def _summary_keyboard(t: Translator, form: Form, config: Config) -> InlineKeyboardMarkup:
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
    return InlineKeyboardMarkup(rows)


async def _summary(rt: Runtime, uow: UnitOfWork, t: Translator, form: Form) -> str:
    data = form.data
    lines = [t("<b>Please check before you register</b>"), "",
             t("Enterprise: <b>{name}</b>", name=user_html(data.get("name") or "")),
             t("Credit code: {code}", code=user_html(data.get("credit_code") or "")),
             t("Contact: {name}, {phone}", name=user_html(data.get("contact_name") or ""),
               phone=user_html(data.get("phone") or ""))]
    if rt.config.industries:
        lines.append(t("Industry: {name}", name=html.escape(
            _industry_name(rt, t, data.get("industry") or ""))))
    lines.append(t("Place: {place}", place=await _place_text(uow, t, form)))
    lines += ["", t("Press Register to finish, or change any part first.")]
    return "\n".join(lines)


def _industry_name(rt: Runtime, t: Translator, code: str) -> str:
    industry = rt.config.industry(code)
    return industry.names.get(t.language) if industry else (code or "—")


async def _place_text(uow: UnitOfWork, t: Translator, form: Form) -> str:
    node_id = form.get("node_id")
    node = await uow.nodes.get(int(node_id)) if node_id else None
    return place_html((await uow.nodes.path(node))[1:], t.language) if node else "—"


def _how_to_join(t: Translator) -> str:
    return t("A colleague who should also act for the enterprise sends /enterprise to this bot, "
             "chooses “Join with an invitation code” and types the code. Give it only to people "
             "of your enterprise.")


def _answered(form: Form, step: Step) -> bool:
    key = {Step.NAME: "name", Step.CODE: "credit_code", Step.CONTACT: "contact_name",
           Step.PHONE: "phone", Step.INDUSTRY: "industry", Step.PLACE: "node_id",
           Step.CONSENT: "consent_at"}.get(step)
    return key is None or bool(form.get(key))


# -- the overview ---------------------------------------------------------------------------------

async def _overview(uow: UnitOfWork, rt: Runtime, t: Translator,
                    user_id: int) -> tuple[str, InlineKeyboardMarkup]:
    managed = await enterprises.managed_by(uow, user_id)
    if not managed:
        return (t("<b>Enterprises</b>\nRegister your enterprise to book legal check-ups and "
                  "report enterprise matters, or join one a colleague has registered with the "
                  "invitation code they give you."),
                InlineKeyboardMarkup([
                    [_button(t("➕ Register an enterprise"), f"{PREFIX}reg")],
                    [_button(t("🔑 Join with an invitation code"), f"{PREFIX}join")]]))
    lines = [t("<b>Your enterprises</b>")]
    leave = []
    for item in managed:
        enterprise = item.enterprise
        place = place_html(item.place[1:], t.language) if item.place else "—"
        role = t("owner") if item.role == "owner" else t("contact")
        lines += ["", f"🏢 <b>{user_html(enterprise.name)}</b>",
                  t("Credit code: {code}", code=credit_code.masked(enterprise.credit_code)),
                  t("Industry: {name}", name=html.escape(
                      _industry_name(rt, t, enterprise.industry))),
                  t("Place: {place}", place=place),
                  t("Contacts: {count} · you are the {role}", count=item.contacts, role=role),
                  t("Invitation code: <code>{code}</code>", code=enterprise.invite_code)]
        leave.append([_button(t("🚪 Leave {name}",
                                name=trimmed(enterprise.name, BUTTON_NAME_CHARS)),
                              f"{PREFIX}leave:{enterprise.id}")])
    lines += ["", _how_to_join(t)]
    rows = [[_button(t("➕ Register another"), f"{PREFIX}reg"),
             _button(t("🔑 Join with a code"), f"{PREFIX}join")], *leave]
    return "\n".join(lines), InlineKeyboardMarkup(rows)


# -- explanations ---------------------------------------------------------------------------------

def _explain(rt: Runtime, t: Translator, outcome: Outcome) -> str:
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
                 time=local_time(rt.config, values["until"]))
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


# -- reading messages -----------------------------------------------------------------------------

def _answer(message: Message) -> Answer:
    if message.text is not None:
        return Answer("text", text=message.text)
    if message.contact is not None:
        return Answer("contact", contact_user_id=message.contact.user_id,
                      phone=message.contact.phone_number)
    return Answer("other")


