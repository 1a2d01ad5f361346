"""The use cases: one function per thing a person (or a timer) does.

An action opens the unit of work, calls the rules (``bot.services``), writes outbox rows and
timers, commits once, and returns what happened for the door that called it to show: an
``Answer`` of views (``bot.views``), or a small result. Doors (the Telegram handlers, the
scheduler's tasks) call actions and never touch the database themselves; the rules never
commit. When the action runs while an update is handled, its commit also records the
update's id (``storage.uow``), so the effects and "handled" land together.
"""

from storage.uow import DuplicateUpdate

# Raised by an action's commit when another worker already committed the handling of the same
# update: the other one's effects stand, and the door says nothing more.
__all__ = ["DuplicateUpdate"]
