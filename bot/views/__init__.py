"""What the bot says, as plain data any door can render.

A view is text in the HTML subset that both Telegram and a web page render (``<b>``, ``<i>``,
``<u>``, ``<s>``, ``<code>``, ``<pre>``, ``<a href>``, ``<blockquote>``; all user text escaped),
rows of buttons (a label and the action data the door hands back when one is pressed), what
the bot asks for next, and attachments. Views are built from the rules' data and a translator;
they never see an update, a bot or any type of the Telegram library: the Telegram door renders
them in one place (``bot/delivery/render.py``).

``Answer`` is what an action gives back to the door that called it: what to show the person
who acted, in order, once the action's transaction is committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True)
class Button:
    label: str
    data: str = ""  # the action data handed back when pressed (Telegram: callback data)
    url: str = ""   # or a link it opens


class Ask(StrEnum):
    """What the bot asks for next, beyond the buttons on the message."""

    NOTHING = "nothing"    # no change to the input (a keyboard shown earlier stays)
    TEXT = "text"          # free text; an earlier location/contact keyboard goes away
    LOCATION = "location"  # a location (Telegram: a button that shares it)
    CONTACT = "contact"    # the person's own phone number (Telegram: a button that shares it)
    PHOTOS = "photos"      # photos (the text says how many and how to finish)
    REPLY = "reply"        # an answer to this very message (Telegram: a forced reply)


@dataclass(frozen=True)
class Attachment:
    kind: str               # "photo" or "document"
    data: bytes = b""       # the content, or
    file_id: str = ""       # a file the door already knows
    filename: str = ""
    caption: str = ""       # HTML, like a view's text


Row = tuple[Button, ...]


@dataclass(frozen=True)
class View:
    text: str
    buttons: tuple[Row, ...] = ()
    ask: Ask = Ask.NOTHING
    ask_label: str = ""     # the label of the share button (LOCATION, CONTACT) or the hint
                            # shown in the input field (REPLY)
    attachments: tuple[Attachment, ...] = ()

    @staticmethod
    def rows(*rows: list[Button] | tuple[Button, ...]) -> tuple[Row, ...]:
        return tuple(tuple(row) for row in rows if row)


@dataclass(frozen=True)
class Kept:
    """A message already written to the outbox, in the action's own transaction, and leased
    to the door that called it: the door sends it straight after the commit; should the
    process die first, the lease runs out and the outbox sends it. For what only the bot
    knows and must not be lost (the number of the ticket just created)."""

    row_id: int
    chat_id: int
    not_before: datetime


@dataclass
class Answer:
    """What the door shows the person who acted, once the action has committed.

    ``say`` goes out in order (views sent now, kept messages through the outbox). ``edit``
    replaces the pressed message (text and buttons); ``unbutton`` only takes its buttons away.
    ``alert`` is shown to whoever pressed a button (a pop-up); ``toast`` is a brief note
    instead. ``handled`` False: the update was not for this action after all, and the door
    lets the next handler have it. ``thread``: the forum topic the messages go to (None:
    the chat's main one)."""

    say: list[View | Kept] = field(default_factory=list)
    edit: View | None = None
    unbutton: bool = False
    alert: str | None = None
    toast: str | None = None
    handled: bool = True
    thread: int | None = None

    def add(self, view: View | Kept) -> Answer:
        self.say.append(view)
        return self

    @staticmethod
    def not_mine() -> Answer:
        return Answer(handled=False)
