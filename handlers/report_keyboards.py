"""Buttons of the report flow and their callback data (each within 64 bytes).

Buttons that answer a step carry the step they belong to (``rp:back:media``), so a button left
on an older message cannot act on whatever step the draft has reached since.
"""

from __future__ import annotations

from collections.abc import Sequence

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)

from bot.config import Category
from bot.i18n import Translator
from storage.models import OrgNode

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

# Telegram shows at most 100 buttons in one inline keyboard.
MAX_PLACE_BUTTONS = 98


def _button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=data)


def _back(t: Translator, step: str) -> InlineKeyboardButton:
    return _button(t("⬅️ Back"), BACK + step)


def categories(t: Translator, options: Sequence[Category]) -> InlineKeyboardMarkup:
    rows = [[_button(c.names.get(t.language), CATEGORY + c.code)] for c in options]
    rows.append([_button(t("✖️ Cancel"), CANCEL)])
    return InlineKeyboardMarkup(rows)


def back_only(t: Translator, step: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[_back(t, step)]])


def media_skip(t: Translator, count: int) -> str:
    """The media step's button that goes on without sending (more): texts name it by this."""
    return t("Keep these photos") if count else t("Skip")


def media(t: Translator, count: int) -> InlineKeyboardMarkup:
    first = [_button(media_skip(t, count), SKIP + "media")]
    if count:
        first.append(_button(t("Remove the photos"), NO_MEDIA))
    return InlineKeyboardMarkup([first, [_back(t, "media")]])


def contact_skip(t: Translator) -> str:
    """The contact step's button for giving no number (absent for a call-back)."""
    return t("Skip")


def location_request(t: Translator) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup([[KeyboardButton(t("📍 Share my location"),
                                                request_location=True)]],
                               resize_keyboard=True)


def place_options(t: Translator, last_grid: OrgNode | None) -> InlineKeyboardMarkup:
    rows = []
    if last_grid is not None:
        rows.append([_button(t("Same place as last time: {grid}",
                               grid=last_grid.display_name(t.language)), LAST_GRID)])
    rows.append([_button(t("Choose from the list"), PLACE_LIST)])
    rows.append([_back(t, "place")])
    return InlineKeyboardMarkup(rows)


def places(t: Translator, nodes: Sequence[OrgNode], back: str) -> InlineKeyboardMarkup:
    buttons = [_button(node.display_name(t.language), NODE + str(node.id))
               for node in nodes[:MAX_PLACE_BUTTONS]]
    rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    rows.append([_button(t("⬅️ Back"), back)])
    return InlineKeyboardMarkup(rows)


def contact_request(t: Translator) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup([[KeyboardButton(t("📞 Share my phone number"),
                                                request_contact=True)]],
                               resize_keyboard=True)


def ways(t: Translator, labels: dict[str, str]) -> InlineKeyboardMarkup:
    rows = [[_button(t(label), WAY + way)] for way, label in labels.items()]
    rows.append([_back(t, "way")])
    return InlineKeyboardMarkup(rows)


def days(t: Translator, options: Sequence[tuple[str, str]]) -> InlineKeyboardMarkup:
    """(ISO date, label) pairs, two per row."""
    buttons = [_button(label, DAY + day) for day, label in options]
    rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    rows.append([_back(t, "day")])
    return InlineKeyboardMarkup(rows)


def enterprises(t: Translator, options: Sequence[tuple[int, str]]) -> InlineKeyboardMarkup:
    rows = [[_button(name, ENTERPRISE + str(enterprise_id))]
            for enterprise_id, name in options[:MAX_PLACE_BUTTONS]]
    rows.append([_button(t("✖️ Cancel"), CANCEL)])
    return InlineKeyboardMarkup(rows)


def contact_options(t: Translator, anonymous_allowed: bool, *,
                    skip_allowed: bool = True) -> InlineKeyboardMarkup:
    rows = [[_button(contact_skip(t), SKIP + "contact")]] if skip_allowed else []
    if anonymous_allowed:
        rows.append([_button(t("🕶 Report anonymously"), ANONYMOUS)])
    rows.append([_back(t, "contact")])
    return InlineKeyboardMarkup(rows)


# The summary's buttons end in "@" + the draft's token (rp:submit@3fa94c1e): one left on the
# summary of a report sent or cancelled since must not act on the next report.
DRAFT_TAG = "@"


def summary(t: Translator, *, with_media: bool, kind: str = "report",
            token: str | None = None) -> InlineKeyboardMarkup:
    if kind == "consultation":
        edits = [_button(t("✏️ Question"), EDIT + "description"),
                 _button(t("✏️ Answer by"), EDIT + "way")]
        more = [_button(t("✏️ Documents"), EDIT + "media")] if with_media else []
        more.append(_button(t("✏️ Contact"), EDIT + "contact"))
    else:
        edits = [_button(t("✏️ Description"), EDIT + "description")]
        if with_media:
            edits.append(_button(t("✏️ Photos"), EDIT + "media"))
        more = [_button(t("✏️ Contact"), EDIT + "contact")]
        if kind == "report":
            more.insert(0, _button(t("✏️ Place"), EDIT + "place"))
    rows = [
        [_button(t("✅ Submit"), SUBMIT)],
        edits,
        more,
        [_back(t, "summary"), _button(t("✖️ Cancel"), CANCEL)],
    ]
    if token is not None:
        tag = f"{DRAFT_TAG}{token}"
        rows = [[_button(b.text, b.callback_data + tag) for b in row] for row in rows]
    return InlineKeyboardMarkup(rows)


def duplicate(t: Translator, ticket_id: int, number: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([
        [_button(t("➕ Add me to No. {number}", number=number), JOIN + str(ticket_id))],
        [_button(t("Submit as a new report"), NEW_ANYWAY)],
        [_back(t, "duplicate")],
    ])


def unfinished(t: Translator) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([
        [_button(t("▶️ Continue my report"), RESUME)],
        [_button(t("🔄 Start over"), RESTART), _button(t("✖️ Discard it"), CANCEL)],
    ])
