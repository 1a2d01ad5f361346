"""/start, /help, the main menu's help and language entries, and the choice of language."""

from __future__ import annotations

from dataclasses import dataclass

from bot.actions import report
from bot.actions.people import Who, answer_language, translator
from bot.i18n import LANGUAGES, Translator
from bot.runtime import Runtime
from bot.services import users
from bot.services.groups import set_group_language
from bot.views import Answer, View
from bot.views import menu as views
from bot.views import report as report_views


async def start(rt: Runtime, who: Who) -> Answer:
    """/start in a private chat: the welcome and the main menu, or the offer to continue an
    unfinished report. Committed: the person is remembered (and the update handled)."""
    async with rt.uow() as uow:
        t = await translator(rt, uow, who)
        unfinished = await report.unfinished_report(uow, who.user_id)
        await uow.commit()
    if unfinished is not None:
        return Answer([report_views.unfinished(rt.config, t, unfinished)])
    return Answer([views.welcome(t)])


async def private_help(rt: Runtime, who: Who) -> Answer:
    return Answer([views.private_help(await answer_language(rt, who))])


async def group_help(rt: Runtime, who: Who) -> Answer:
    async with rt.uow() as uow:
        t = await translator(rt, uow, who)
        group = await uow.groups.get(who.chat_id)
        node = await uow.nodes.get(group.node_id) if group and group.node_id else None
        path = await uow.nodes.path(node) if node else None
        await uow.commit()  # an answer only: the update is handled with it
    return Answer([views.group_help(t, path=path, active=bool(group and group.active))])


async def menu(rt: Runtime, who: Who, choice: str) -> Answer:
    """The main menu's language or help entry (sent anew: the menu may be too old to edit)."""
    t = await answer_language(rt, who)
    if choice == views.MENU_LANGUAGE:
        return Answer([views.language_menu(t)])
    return Answer([views.private_help(t)])


async def language_menu(rt: Runtime, who: Who, *, admin: bool) -> Answer:
    """/language: the languages to choose from (in a group, for administrators only)."""
    t = await answer_language(rt, who)
    if who.in_group and not admin:
        return Answer([View(views.admins_only(t))])
    return Answer([views.language_menu(t)])


@dataclass
class Chosen:
    """The answer to a press of a language; ``t`` is the chosen language's translator when
    the choice was made (the door then publishes the chat's command menu in it)."""

    answer: Answer
    t: Translator | None = None


async def choose_language(rt: Runtime, who: Who, chosen: str, *, admin: bool) -> Chosen:
    async with rt.uow() as uow:
        t = await translator(rt, uow, who)
        if chosen not in LANGUAGES:
            await uow.commit()  # an answer only: the update is handled
            return Chosen(Answer(alert=views.button_invalid(t)))
        if who.in_group and not admin:
            await uow.commit()
            return Chosen(Answer(alert=views.admins_only(t)))
        if who.group is not None:
            await set_group_language(uow, rt.clock, who.group, chosen,
                                     rt.config.default_language, admin_id=who.user_id)
        else:
            await users.choose_language(uow, rt.clock, user_id=who.user_id,
                                        telegram_code=who.language_code, language=chosen)
        await uow.commit()
    t = rt.translator(chosen)
    return Chosen(Answer(edit=views.language_chosen(t, chosen, group=who.in_group)), t)
