"""What /bind and /unbind say: the answers to an administrator binding a group to a grid,
centre or desk, the question before a move, and the link that adds the bot to a group.

Button data: bind:move:<node id> (move the node to this group), bind:keep (leave it).
"""

from __future__ import annotations

import html
import re

from bot.i18n import Translator
from bot.services.binding import BindResult, Outcome
from bot.services.text import user_html
from bot.views import Button, View
from bot.views.places import place_html

MOVE_PREFIX = "bind:move:"
KEEP = "bind:keep"
DEEP_LINK_LENGTH = 64  # Telegram's limit on a /start payload
_PAYLOAD = re.compile(r"^[A-Za-z0-9_-]+$")


def not_admin(t: Translator) -> View:
    return View(t("Only a Gridgate administrator can bind a group."))


def no_code(t: Translator) -> View:
    return View(t(
        "Send <code>/bind CODE</code> with the code of the grid, centre or desk this "
        "group serves. The codes are listed by <code>gridgate grids list</code>."))


def nothing_changed(t: Translator) -> View:
    return View(t("Nothing was changed."))


def stale_button(t: Translator) -> str:
    return t("This button is no longer valid.")


def place_of(t: Translator, result: BindResult) -> str:
    return place_html(result.path, t.language) if result.path else ""


def bound(t: Translator, result: BindResult, code: str) -> View:
    """What became of a /bind (or of the confirmation of a move), in the group's language."""
    place = place_of(t, result)
    if result.outcome is Outcome.UNKNOWN_NODE:
        return View(t("No grid, centre or desk has the code <code>{code}</code>. The codes "
                      "are listed by <code>gridgate grids list</code>.",
                      code=html.escape(code)))
    if result.outcome is Outcome.ALREADY_BOUND:
        return View(t("This group already serves <b>{place}</b>.", place=place))
    if result.outcome is Outcome.NEEDS_CONFIRMATION:
        lines = []
        if result.displaced_group is not None and result.displaced_group.active:
            lines.append(t("<b>{place}</b> is served by the group “{group}” now.", place=place,
                           group=user_html(result.displaced_group.title)))
        if result.previous_node is not None:
            lines.append(t("This group serves <b>{previous}</b> now and would stop serving it "
                           "if you bind it here.",
                           previous=html.escape(result.previous_node.display_name(t.language))))
        lines.append(t("Move <b>{place}</b> to this group?", place=place))
        return View("\n".join(lines), buttons=View.rows([
            Button(t("Move it here"), data=f"{MOVE_PREFIX}{result.node.id}"),
            Button(t("Cancel"), data=KEEP)]))
    return View(t("Done: this group now serves <b>{place}</b>. Matters for it will arrive here.",
                  place=place))


def displaced(t: Translator, place: str) -> View:
    """To the group that served the node before it moved (in that group's language; the
    place as the bound group's answer names it)."""
    return View(t("An administrator moved <b>{place}</b> to another group; this "
                  "group no longer serves it.", place=place))


def unbind_elsewhere(t: Translator) -> View:
    return View(t("Send /unbind in the group you want to unbind."))


def unbound(t: Translator, result: BindResult) -> View:
    if result.outcome is Outcome.NOT_ADMIN:
        return View(t("Only a Gridgate administrator can unbind a group."))
    if result.outcome is Outcome.NOT_BOUND:
        return View(t("This group is not bound to anything."))
    return View(t("This group no longer serves <b>{place}</b>. New matters go to the nearest "
                  "centre above it.", place=place_html(result.path, t.language)))


def link_needs_code(t: Translator) -> View:
    return View(t(
        "Send <code>/bind CODE</code> with the code of a grid, centre or desk, and I will "
        "give you a link that adds me to its group."))


def add_to_group(t: Translator, path_html: str, url: str) -> View:
    return View(t("Open the link below, choose the group for <b>{place}</b>, and I will bind it.",
                  place=path_html),
                buttons=View.rows([Button(t("Add me to a group"), url=url)]))


def startgroup_link(bot_username: str, payload: str) -> str:
    """The link that lets a person pick a group to add the bot to, the bot then getting
    ``/start <payload>`` there (Telegram's deep linking)."""
    if not bot_username or len(bot_username) <= 3:
        raise ValueError("You must provide a valid bot_username.")
    if len(payload) > DEEP_LINK_LENGTH or not _PAYLOAD.match(payload):
        raise ValueError("a deep-link payload is 1-64 of A-Z, a-z, 0-9, _ and -")
    return f"https://t.me/{bot_username}?startgroup={payload}"
