"""Binding groups to grids, centres and desks: /bind, the confirmation of a move, /unbind,
and the link an administrator gets in private.

Each function is one use case: its own unit of work, committed once, and an ``Answer`` for
the door. Who is an administrator comes from the configuration (``rt.is_admin``).
"""

from __future__ import annotations

import logging

from bot.actions import outbox
from bot.actions.people import Who, language
from bot.runtime import Runtime
from bot.services import binding
from bot.services.binding import Outcome
from bot.views import Answer
from bot.views import binding as views
from bot.views.places import place_html

log = logging.getLogger(__name__)


async def bind(rt: Runtime, who: Who, code: str) -> Answer:
    """/bind CODE in a group (or /start bind_CODE there, from the deep link)."""
    t = await language(rt, who)
    if not rt.is_admin(who.user_id):
        return Answer(say=[views.not_admin(t)])
    if not code:
        return Answer(say=[views.no_code(t)])
    return await _bind(rt, who, code, code=code)


async def confirm_move(rt: Runtime, who: Who, data: str) -> Answer:
    """A press of the question's buttons: move the node here (bind:move:<id>) or leave it."""
    t = await language(rt, who)
    if not who.in_group or not rt.is_admin(who.user_id):
        return Answer(alert=t("Only a Gridgate administrator can bind a group."))
    if data == views.KEEP:
        return Answer(edit=views.nothing_changed(t))
    raw = data.removeprefix(views.MOVE_PREFIX)
    if not raw.isdigit():
        return Answer(alert=views.stale_button(t))
    answer = await _bind(rt, who, raw, node_id=int(raw))
    # The answer edits the question it confirms.
    answer.edit, answer.say = answer.say[0], answer.say[1:]
    return answer


async def _bind(rt: Runtime, who: Who, shown: str, *, code: str | None = None,
                node_id: int | None = None) -> Answer:
    async with rt.uow() as uow:
        result = await binding.bind(
            uow, rt.clock, is_admin=True, group=who.group, user_id=who.user_id,
            code=code, node_id=node_id, confirmed=node_id is not None,
            default_language=rt.config.default_language)
        t = rt.translator(result.group_language or rt.config.default_language)
        answer = Answer(say=[views.bound(t, result, shown)])
        group = result.displaced_group
        if result.outcome is Outcome.BOUND and group is not None and group.active:
            # Sent straight after the commit, and by the outbox should the process die first.
            told = views.displaced(rt.translator(group.language), views.place_of(t, result))
            answer.add(await outbox.keep(rt, uow, group.chat_id, told))
        await uow.commit()
    if result.outcome is Outcome.BOUND:
        log.info("group bound to node %s", result.node.code)
    return answer


async def unbind(rt: Runtime, who: Who) -> Answer:
    t = await language(rt, who)
    if not who.in_group:
        return Answer(say=[views.unbind_elsewhere(t)])
    async with rt.uow() as uow:
        result = await binding.unbind(uow, rt.clock, is_admin=rt.is_admin(who.user_id),
                                      chat_id=who.chat_id, user_id=who.user_id)
        await uow.commit()
    return Answer(say=[views.unbound(t, result)])


async def bind_link(rt: Runtime, who: Who, code: str, bot_username: str) -> Answer:
    """/bind CODE in private: an administrator gets a link that adds the bot to a group and
    binds it there."""
    t = await language(rt, who)
    if not rt.is_admin(who.user_id):
        return Answer(say=[views.not_admin(t)])
    async with rt.uow() as uow:
        node = await uow.nodes.by_code(code) if code else None
        path = await uow.nodes.path(node) if node else []
    if node is None:
        return Answer(say=[views.link_needs_code(t)])
    url = views.startgroup_link(bot_username, f"bind_{node.code}")
    return Answer(say=[views.add_to_group(t, place_html(path, t.language), url)])
