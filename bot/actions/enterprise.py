"""Enterprise registration (rules in bot.services.enterprises): the overview, the two forms
(register one, join one with an invitation code) one question at a time, and leaving.

Buttons that answer a step are accepted only at that step, and anything naming an
enterprise only from one of its contacts, so an old or forged button gets "no longer valid"
and changes nothing. Every answer loads the draft, applies it, saves and commits; the door
talks to Telegram only after that.
"""

from __future__ import annotations

import logging
import re

from bot.actions.people import Who, translator
from bot.i18n import Translator
from bot.runtime import Runtime
from bot.services import enterprises
from bot.services.enterprises import (
    FLOW,
    JOIN_FLOW,
    Form,
    Left,
    Outcome,
    Problem,
    Registered,
    Step,
)
from bot.services.enterprises import Answer as FormAnswer
from bot.views import Answer, Ask, View
from bot.views import enterprise as views
from storage.models import Draft
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

_DATA = re.compile(r"en:(?:(menu|reg|join|cancel|same|agree|confirm|stay)"
                   r"|(back|edit):([a-z]{1,16})|(ind):([A-Za-z0-9_-]{1,48})"
                   r"|(place|leave|bye):(\d{1,12}))")


async def entry(rt: Runtime, who: Who) -> Answer:
    """/enterprise: an unfinished form continues where it stopped; otherwise the overview."""
    async with rt.uow() as uow:
        t = await translator(rt, uow, who)
        answer = Answer(say=await _entry(rt, uow, t, who.user_id))
        await uow.commit()
    return answer


async def _entry(rt: Runtime, uow: UnitOfWork, t: Translator, user_id: int) -> list[View]:
    loaded = await enterprises.load(uow, user_id)
    if loaded is not None:
        return await _ask(rt, uow, t, loaded[1], user_id, prefix=views.unfinished(t))
    return [views.overview(t, rt.config, await enterprises.managed_by(uow, user_id))]


async def take(rt: Runtime, uow: UnitOfWork, t: Translator, who: Who, draft: Draft,
               answer: FormAnswer | None) -> Answer | None:
    """Inside the caller's unit of work (the caller commits): a message while ``draft``, the
    person's newest, is one of the forms (``answer`` None: /cancel). None when it is not."""
    user_id = who.user_id
    if draft.flow not in enterprises.FLOWS:
        return None
    try:
        form = Form(draft.flow, draft.step, draft.data or {})
    except ValueError:  # a step this release does not know
        return None
    reply = Answer()
    if answer is None:
        reply.say.append(await _cancel(uow, t, form, user_id))
    else:
        before = form.step
        outcome = await enterprises.answer_message(uow, rt.clock, rt.config, form, answer,
                                                   user_id=user_id)
        # A contact may have come from the share button, which is gone once pressed.
        await _after(reply, rt, uow, t, draft, form, outcome, before, user_id,
                     button_gone=answer.kind == "contact")
    return reply


async def press(rt: Runtime, who: Who, data: str) -> Answer:
    """A pressed "en:" button; "no longer valid" (and nothing changed) for one that is
    forged, old, or not the person's."""
    reply = Answer()
    async with rt.uow() as uow:
        t = await translator(rt, uow, who)
        if not await _on_button(reply, rt, uow, t, who, data):
            return Answer(alert=views.no_longer_valid(t))
        await uow.commit()
    return reply


async def _on_button(reply: Answer, rt: Runtime, uow: UnitOfWork, t: Translator, who: Who,
                     data: str) -> bool:
    match = _DATA.fullmatch(data or "")
    if match is None or who.in_group or who.user_id is None:
        return False
    user_id = who.user_id
    word, action, step_arg, _, industry, target, number = match.groups()
    config = rt.config
    if word == "menu":
        reply.say += await _entry(rt, uow, t, user_id)
        return True
    if word in ("reg", "join"):
        form = await enterprises.start(uow, rt.clock, config, user_id,
                                       FLOW if word == "reg" else JOIN_FLOW)
        reply.unbutton = True
        # Locked out by wrong codes: said at once, not after typing the next one.
        until = await enterprises.locked_until(uow, rt.clock, user_id) if form.joining else None
        prefix = None if until is None else views.explain(
            t, config, Outcome(Problem.TOO_MANY_GUESSES, values={"until": until}))
        reply.say += await _ask(rt, uow, t, form, user_id, prefix=prefix)
        return True
    if target in ("leave", "bye"):
        return await _leave(reply, uow, t, user_id, int(number), confirmed=target == "bye")
    if word == "stay":
        reply.edit = views.stay(t)
        return True

    loaded = await enterprises.load(uow, user_id)
    if loaded is None:
        return False  # the form is over (sent, cancelled, expired, or another one began)
    draft, form = loaded
    before = form.step
    if word == "cancel":
        reply.say.append(await _cancel(uow, t, form, user_id))
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
            reply.edit = views.industry_chosen(t, config, industry)
    elif target == "place":
        outcome = await enterprises.choose_place(uow, config, form, int(number))
        if outcome is not None:
            reply.edit = View("📍 " + await _place_text(uow, t, form))
    elif word == "same":
        outcome = await enterprises.use_previous_contact(uow, config, form, user_id)
        reply.unbutton = True
    elif word == "agree":
        outcome = enterprises.give_consent(rt.clock, config, form)
        if outcome is not None:
            reply.edit = views.consented(t)
            if form.joining:
                joined, enterprise = await enterprises.join(uow, rt.clock, form,
                                                            user_id=user_id)
                await uow.drafts.discard(user_id, JOIN_FLOW)
                if enterprise is not None and joined:
                    log.info("a contact joined enterprise %s", enterprise.id)
                reply.say.append(views.joined(t, config, enterprise, joined))
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


async def _after(reply: Answer, rt: Runtime, uow: UnitOfWork, t: Translator, draft: Draft,
                 form: Form, outcome: Outcome, before: Step, user_id: int, *,
                 acknowledge: bool = True, button_gone: bool = False) -> None:
    """Save the form and say what comes next: an explanation and the same question, or the
    next question; or end the form when the outcome says it is over. `button_gone`: the
    answer may have been the press of the share button under the input field, which takes
    the button away (it is shown once), so a question asked again brings it back."""
    config = rt.config
    if outcome.finished:
        await uow.drafts.discard(user_id, form.flow)
        reply.say.append(View(views.explain(t, config, outcome), ask=Ask.TEXT))
        return
    await enterprises.save(uow, rt.clock, draft, form)
    if outcome.problem is Problem.CODE_TAKEN:
        reply.say.append(views.taken(t, views.explain(t, config, outcome)))
        return
    if outcome.problem is not None:
        reply.say += await _ask(rt, uow, t, form, user_id,
                                prefix=views.explain(t, config, outcome),
                                again=form.step is before and not button_gone)
        return
    ack = views.noted(t, outcome, form, before) if acknowledge else None
    reply.say += await _ask(rt, uow, t, form, user_id, prefix=ack, came_from=before)


async def _cancel(uow: UnitOfWork, t: Translator, form: Form, user_id: int) -> View:
    await uow.drafts.discard(user_id, form.flow)
    return views.cancelled(t, form.joining)


async def _register(reply: Answer, rt: Runtime, uow: UnitOfWork, t: Translator, draft: Draft,
                    form: Form, user_id: int) -> None:
    if not form.complete(rt.config):
        # Only a draft from an older release could get here: ask what is missing.
        form.step = next(step for step in form.order(rt.config) if not _answered(form, step))
        await enterprises.save(uow, rt.clock, draft, form)
        reply.say += await _ask(rt, uow, t, form, user_id)
        return
    done = await enterprises.register(uow, rt.clock, rt.config, form, user_id=user_id)
    if done.result is Registered.TAKEN:
        # Registered by someone else while this form was being filled in.
        form.data.pop("credit_code", None)
        form.data.pop("editing", None)
        form.step = Step.CODE
        await enterprises.save(uow, rt.clock, draft, form)
        reply.say.append(views.taken(t, views.explain(t, rt.config,
                                                      Outcome(Problem.CODE_TAKEN))))
        return
    await uow.drafts.discard(user_id, FLOW)
    enterprise = done.enterprise
    if done.result is Registered.ALREADY_YOURS:
        reply.say.append(View(views.explain(t, rt.config, Outcome(Problem.CODE_YOURS,
                                                                  enterprise=enterprise))))
        return
    log.info("enterprise %s registered", enterprise.id)
    reply.say.append(views.registered(t, enterprise))


async def _leave(reply: Answer, uow: UnitOfWork, t: Translator, user_id: int,
                 enterprise_id: int, *, confirmed: bool) -> bool:
    if not confirmed:
        enterprise = await uow.enterprises.get(enterprise_id)
        contact = await uow.enterprises.contact(enterprise_id, user_id)
        if enterprise is None or contact is None:
            return False
        if len(await uow.enterprises.contacts(enterprise_id)) == 1:
            reply.say.append(views.last_contact(t, enterprise))
        else:
            reply.say.append(views.leave_question(t, enterprise, contact.role == "owner"))
        return True
    result, enterprise = await enterprises.leave(uow, user_id, enterprise_id)
    if result is Left.NOT_CONTACT:
        return False
    if result is Left.LAST_CONTACT:  # the others left since the question was asked
        reply.edit = views.last_contact(t, enterprise)
        return True
    log.info("a contact left enterprise %s", enterprise.id)
    reply.edit = views.left(t, enterprise)
    return True


async def _ask(rt: Runtime, uow: UnitOfWork, t: Translator, form: Form, user_id: int, *,
               prefix: str | None = None, came_from: Step | None = None,
               again: bool = False) -> list[View]:
    """The current step's question, with what it shows read from the database."""
    step = form.step
    previous = (await uow.enterprises.latest_contact(user_id) if step is Step.CONTACT
                else None)
    places = await uow.enterprises.places() if step is Step.PLACE else ()
    place = await _place_text(uow, t, form) if step is Step.SUMMARY else "—"
    return views.question(t, rt.config, form, prefix=prefix, came_from=came_from, again=again,
                          previous=previous, places=places, place=place)


async def _place_text(uow: UnitOfWork, t: Translator, form: Form) -> str:
    node_id = form.get("node_id")
    node = await uow.nodes.get(int(node_id)) if node_id else None
    return views.place_text(t, await uow.nodes.path(node)) if node else "—"


def _answered(form: Form, step: Step) -> bool:
    key = {Step.NAME: "name", Step.CODE: "credit_code", Step.CONTACT: "contact_name",
           Step.PHONE: "phone", Step.INDUSTRY: "industry", Step.PLACE: "node_id",
           Step.CONSENT: "consent_at"}.get(step)
    return key is None or bool(form.get(key))
