"""The centres' console: signing in through the bot, and what a signed-in person sees and may
do (nudge a ticket's group, pass a ticket up a level), always within their own subtrees.

Membership of the centres' groups is Telegram's to say: the door asks it before calling these
(never inside a unit of work) and hands the answer in as plain node ids.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.actions.notifier import Notifier
from bot.actions.people import Who, translator
from bot.actions.worker import move_ticket
from bot.i18n import Translator
from bot.runtime import Runtime
from bot.services import console as data
from bot.services import console_access as access
from bot.services import export, stats, users
from bot.services.phones import mask_phone
from bot.services.webchat import plain_text
from bot.views import Answer, View
from bot.views import console as console_views
from bot.views import console_access as words
from bot.views.cards import STATUS_LABELS, category_name
from bot.views.history import event_lines, places_named
from bot.views.places import place_html
from storage.models import AdminAction, Ticket

log = logging.getLogger(__name__)

Staff = access.Staff
__all__ = ["Staff"]


# -- signing in -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Begun:
    nonce: str    # for the link to the bot
    secret: str   # for the browser's cookie
    expires_in: int


async def begin_signin(rt: Runtime) -> Begun:
    async with rt.uow() as uow:
        nonce, secret = access.begin(uow, rt.clock.now())
        await uow.session.commit()  # the page's, not an update's
    return Begun(nonce, secret, int(access.SIGNIN_FOR.total_seconds()))


async def waiting(rt: Runtime, payload: str) -> bool:
    """Whether a /start payload is a sign-in waiting for its confirmation (a forged or used
    one costs no question to Telegram)."""
    nonce = access.nonce_of(payload)
    if nonce is None:
        return False
    async with rt.uow() as uow:
        signin = await uow.console.signin(access.token_hash(nonce))
    return signin is not None and signin.state == "waiting" and \
        signin.expires_at > rt.clock.now()


async def centre_groups(rt: Runtime) -> list[tuple[int, int]]:
    async with rt.uow() as uow:
        return await access.centre_groups(uow)


async def confirm(rt: Runtime, who: Who, name: str, payload: str,
                  member_of: list[int]) -> Answer:
    """/start console_<nonce> in a private chat: the person confirms the browser's sign-in.
    ``member_of``: the nodes of the centre and desk groups Telegram says they are in."""
    nonce = access.nonce_of(payload)
    now = rt.clock.now()
    async with rt.uow() as uow:
        t = await translator(rt, uow, who)
        signin = await uow.console.signin(access.token_hash(nonce), lock=True) if nonce else None
        if signin is None or signin.state != "waiting" or signin.expires_at <= now:
            await uow.commit()
            return Answer([View(words.code_not_valid(t))])
        admin = rt.is_admin(who.user_id)
        tree = await stats.load_tree(uow)
        if admin:
            roots = access.roots_among(tree, [n.id for n in tree.nodes.values()
                                              if n.parent_id is None])
        else:
            roots = access.roots_among(tree, member_of)
        if not roots:
            signin.state = "refused"
            await uow.commit()
            return Answer([View(words.not_allowed(t))])
        signin.state, signin.user_id, signin.name = "confirmed", who.user_id, name[:128]
        signin.roots, signin.admin = list(roots), admin
        places = [tree.nodes[root] for root in roots]
        await uow.commit()
    log.info("a console sign-in was confirmed for %d subtrees", len(roots))
    return Answer([View(words.signed_in(t, [p.display_name(t.language) for p in places]))])


async def signin_state(rt: Runtime, secret: str | None) -> tuple[str, str | None]:
    """What became of the browser's sign-in: "waiting", "expired", "refused" or "signed_in"
    (then with the new session's token, once: the sign-in is used up)."""
    if not secret:
        return "expired", None
    now = rt.clock.now()
    async with rt.uow() as uow:
        signin = await uow.console.signin_of_browser(access.token_hash(secret))
        if signin is None or signin.state == "used":
            return "expired", None
        if signin.state == "refused":
            return "refused", None
        if signin.state == "waiting":
            return ("expired", None) if signin.expires_at <= now else ("waiting", None)
        signin.state = "used"
        token = access.open_session(uow, now, signin)
        await uow.session.commit()
    return "signed_in", token


async def staff(rt: Runtime, token: str | None) -> Staff | None:
    """The signed-in person of a console cookie; None once it signed out or sat idle."""
    if not token:
        return None
    now = rt.clock.now()
    async with rt.uow() as uow:
        row = await uow.console.session(access.token_hash(token))
        if row is None:
            return None
        if now - row.last_seen_at > rt.config.console.idle_timeout:
            await uow.console.end_session(row.token_hash)
            await uow.session.commit()
            return None
        if (now - row.last_seen_at).total_seconds() > 30:  # not a write a request
            row.last_seen_at = now
            await uow.session.commit()
        return access.staff_of(row)


def needs_recheck(rt: Runtime, person: Staff) -> bool:
    return not person.admin and rt.clock.now() - person.checked_at > \
        rt.config.console.membership_recheck


async def rechecked(rt: Runtime, person: Staff, member_of: list[int]) -> Staff | None:
    """After asking Telegram again: the session with today's groups, or None (ended) when the
    person is in none any more."""
    async with rt.uow() as uow:
        row = await uow.console.session(person.token_hash)
        if row is None:
            return None
        roots = access.roots_among(await stats.load_tree(uow), member_of)
        if not roots:
            await uow.console.end_session(person.token_hash)
            await uow.session.commit()
            return None
        row.roots, row.checked_at = list(roots), rt.clock.now()
        await uow.session.commit()
        return access.staff_of(row)


async def signout(rt: Runtime, token: str | None) -> None:
    if not token:
        return
    async with rt.uow() as uow:
        await uow.console.end_session(access.token_hash(token))
        await uow.session.commit()


async def forget_old(rt: Runtime) -> int:
    """Housekeeping: idle sessions and expired sign-ins."""
    now = rt.clock.now()
    async with rt.uow() as uow:
        gone = await uow.console.forget(
            sessions_idle_since=now - rt.config.console.idle_timeout,
            signins_expired_before=now - access.SIGNIN_FOR)
        await uow.session.commit()
    return gone


async def language_of(rt: Runtime, person: Staff) -> str | None:
    """The language the person chose in the bot (or the console), if any."""
    async with rt.uow() as uow:
        user = await uow.users.get(person.user_id)
    return user.language if user is not None else None


async def choose_language(rt: Runtime, person: Staff, language: str) -> None:
    """The console's language is the person's language in the bot as well."""
    async with rt.uow() as uow:
        await users.choose_language(uow, rt.clock, user_id=person.user_id, telegram_code=None,
                                    language=language)
        await uow.session.commit()


# -- what the person sees -------------------------------------------------------------------------


async def tree(rt: Runtime, person: Staff, language: str) -> list[dict[str, Any]]:
    async with rt.uow() as uow:
        nodes = await stats.load_tree(uow)
    seen = access.visible(nodes, person.roots)
    return [{"id": n.id, "code": n.code, "name": n.display_name(language), "level": n.level,
             "parent_id": n.parent_id} for n in nodes.nodes.values() if n.id in seen]


async def grid_map(rt: Runtime, person: Staff, node_id: int, t: Translator) -> dict[str, Any]:
    async with rt.uow() as uow:
        shown = await data.grid_map(uow, node_id, rt.clock.now(), rt.config)
    for grid in shown["grids"]:
        grid["name"] = grid.get("names", {}).get(t.language) or grid["name"]
    return shown


def _ratio(ratio: data.Ratio) -> dict[str, Any]:
    return {"num": ratio.num, "den": ratio.den, "rate": ratio.rate}


async def rates(rt: Runtime, person: Staff, node_id: int, t: Translator, period: str,
                first: str, last: str) -> dict[str, Any]:
    """The node's rates for a period (today, week, month or the local days first…last):
    the digests' numbers, row by row (raises ValueError for a period that is none)."""
    now = rt.clock.now()
    span = data.period_of(period, now, rt.config,
                          date.fromisoformat(first) if first else None,
                          date.fromisoformat(last) if last else None)
    async with rt.uow() as uow:
        rows = await data.rates(uow, node_id, span, now, rt.config)
    return {
        "period": {"start": span.start.isoformat(), "end": span.end.isoformat(),
                   "label": console_views.period_label(t, span, now)},
        "rows": [{"node": ({"id": row.node.id, "name": row.node.display_name(t.language),
                            "level": row.node.level} if row.node is not None else None),
                  "total": row.total, "new": row.new, "open": row.open,
                  "overdue": row.overdue,
                  **{rate: _ratio(row.ratio(rate)) for rate in data.RATES}}
                 for row in rows],
        "explain": console_views.explain(t, rt.config)}


async def trend(rt: Runtime, person: Staff, node_id: int, rate: str,
                days: int) -> dict[str, Any]:
    async with rt.uow() as uow:
        points = await data.trend(uow, node_id, rate, days, rt.clock.now(), rt.config)
    return {"points": [{"day": day.isoformat(), "num": num, "den": den,
                        "rate": num / den if den else None} for day, num, den in points]}


async def queue(rt: Runtime, person: Staff, node_id: int, t: Translator, view: str, *,
                category: str | None, status: str | None, min_age_hours: int | None,
                number: str | None, offset: int, limit: int) -> dict[str, Any]:
    async with rt.uow() as uow:
        items, total = await data.queue(
            uow, node_id, view, category=category, status=status,
            min_age_hours=min_age_hours, number=number, now=rt.clock.now(),
            config=rt.config, offset=offset, limit=limit)
    return {"total": total, "tickets": [{
        "id": item.ticket.id, "number": item.ticket.number, "kind": item.ticket.kind,
        "category": item.ticket.category,
        "category_name": category_name(rt.config, item.ticket.category, t.language),
        "status": item.ticket.status, "status_name": t(STATUS_LABELS[item.ticket.status]),
        "node": ({"id": item.node.id, "name": item.node.display_name(t.language)}
                 if item.node is not None else None),
        "created_at": item.ticket.created_at.isoformat(),
        "deadline_at": item.ticket.deadline_at.isoformat() if item.ticket.deadline_at
        else None,
        "overdue": item.overdue, "reopen_count": item.ticket.reopen_count,
        "urgent": item.ticket.urgent} for item in items]}


async def may_see(rt: Runtime, person: Staff, node_id: int) -> bool:
    async with rt.uow() as uow:
        return node_id in access.visible(await stats.load_tree(uow), person.roots)


async def changes(rt: Runtime) -> int:
    async with rt.uow() as uow:
        return await uow.console.changes()


async def _ticket_in_view(rt: Runtime, uow, person: Staff, ticket_id: int) -> Ticket | None:
    ticket = await uow.tickets.get(ticket_id)
    if ticket is None:
        return None
    seen = access.visible(await stats.load_tree(uow), person.roots)
    return ticket if ticket.node_id in seen else None


async def ticket(rt: Runtime, person: Staff, ticket_id: int, t: Translator
                 ) -> dict[str, Any] | None:
    """A ticket the person may see, in plain words, with its history; the reporter only for
    admins, and each time written to the admin log."""
    async with rt.uow() as uow:
        found = await _ticket_in_view(rt, uow, person, ticket_id)
        if found is None:
            return None
        node = await uow.nodes.get(found.node_id)
        path = await uow.nodes.path(node) if node else []
        events = await uow.tickets.events(found.id)
        named = {}
        for code in places_named(events):
            place = await uow.nodes.by_code(code)
            if place is not None:
                named[code] = place
        history = [{"at": at.isoformat(), "text": plain_text(text)}
                   for at, text in event_lines(t, rt.config, found, events, named)]
        reporter = t("(shown to administrators only)")
        if found.anonymous:
            reporter = t("Anonymous report")
        elif person.admin:
            shown = [found.reporter_name or "", mask_phone(found.reporter_phone) or ""]
            reporter = " · ".join(part for part in shown if part) or t("Resident")
            uow.admin_log.add(AdminAction(
                at=rt.clock.now(), source="telegram", actor_id=person.user_id,
                actor_name=person.name[:64], action="console_view_personal",
                target=found.number, details={"ticket": found.id}))
            await uow.session.commit()
        return {"ticket": {
            "id": found.id, "number": found.number, "kind": found.kind,
            "category_name": category_name(rt.config, found.category, t.language),
            "status": found.status, "status_name": t(STATUS_LABELS[found.status]),
            "node": {"id": node.id, "name": node.display_name(t.language)} if node else None,
            "path": plain_text(place_html(path, t.language)) if path else "",
            "description": found.description, "address": found.address or "",
            "created_at": found.created_at.isoformat(),
            "deadline_at": found.deadline_at.isoformat() if found.deadline_at else None,
            "reporter": reporter, "holder": found.holder_name or ""},
            "history": history,
            "can_escalate": found.status in ("open", "claimed", "in_progress")}


# -- what the person does -------------------------------------------------------------------------


async def nudge(rt: Runtime, person: Staff, ticket_id: int, text: str,
                t: Translator) -> str | None:
    """A reminder in the ticket's group, as from the centre, through the outbox; logged. The
    words of the answer, or None when the ticket is not the person's to see."""
    async with rt.uow() as uow:
        found = await _ticket_in_view(rt, uow, person, ticket_id)
        if found is None:
            return None
        if found.group_chat_id is None:
            return t("No group handles No. {number} now: there is nobody to remind.",
                     number=found.number)
        group = await uow.groups.get(found.group_chat_id)
        reader = rt.translator(group.language if group else rt.config.default_language)
        roots = [await uow.nodes.get(root) for root in person.roots]
        centre = " / ".join(n.display_name(reader.language) for n in roots if n is not None)
        await Notifier(rt, uow).to_group(found, words.nudge(reader, found, centre, person.name,
                                                             text.strip()[:500]))
        uow.admin_log.add(AdminAction(
            at=rt.clock.now(), source="telegram", actor_id=person.user_id,
            actor_name=person.name[:64], action="console_nudge", target=found.number,
            details={"ticket": found.id, "with_text": bool(text.strip())}))
        await uow.session.commit()
    return t("The group of No. {number} was reminded.", number=found.number)


async def escalate(rt: Runtime, person: Staff, ticket_id: int, t: Translator) -> str | None:
    """The group's "上报" from the console: the ticket goes up a level (same rules)."""
    who = Who(user_id=person.user_id, chat_id=person.user_id)
    async with rt.uow() as uow:
        found = await _ticket_in_view(rt, uow, person, ticket_id)
        if found is None:
            return None
        outcome = await move_ticket(rt, uow, t, who, person.name, found, to_node_id=None,
                                    reason=t("passed up from the console"), kind="escalated")
        if outcome.moved:
            uow.admin_log.add(AdminAction(
                at=rt.clock.now(), source="telegram", actor_id=person.user_id,
                actor_name=person.name[:64], action="console_escalate", target=found.number,
                details={"ticket": found.id}))
            await uow.session.commit()
    return plain_text(outcome.text)


async def export_csv(rt: Runtime, person: Staff, node_id: int, first: str,
                     last: str) -> bytes | None:
    """The tickets of ``node_id``'s subtree, as ``gridgate export tickets`` writes them (the
    text columns for admins only, as there); None when the node is not the person's."""
    span = export.parse_range(first, last)
    out = io.BytesIO()
    writer = export.Writer(out, "csv", with_text=person.admin)
    async with rt.uow() as uow:
        tree_ = await stats.load_tree(uow)
        if node_id not in access.visible(tree_, person.roots):
            return None
        codes = {tree_.nodes[n].code for n in tree_.subtree(node_id)}
        async for row in export.rows(uow, rt.config, span, with_text=person.admin):
            if row.get("node_code") in codes:
                writer.write(row)
        uow.admin_log.add(AdminAction(
            at=rt.clock.now(), source="telegram", actor_id=person.user_id,
            actor_name=person.name[:64], action="console_export",
            target=f"{first}..{last}", details={"node": node_id, "rows": writer.count}))
        await uow.session.commit()
    return out.getvalue()
