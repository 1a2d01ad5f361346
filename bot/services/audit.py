"""The admin action log: every action an administrator takes on the data — in the
bot (/bind, /unbind, a group's language, check-up slots) or with the `gridgate` command
(grid imports, ticket exports) — and the retention sweep, written in the same transaction
as the action, so the log never claims what did not happen nor misses what did.

Details are codes, counts and dates: never a resident's name, number or words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.clock import Clock
from storage.models import AdminAction
from storage.uow import UnitOfWork

ACTOR_NAME_LIMIT = 64
TARGET_LIMIT = 128


@dataclass(frozen=True)
class Actor:
    """Who acted: a Telegram account (bot commands), an operating-system account (the
    `gridgate` command) or the system itself."""

    source: str
    id: int | None = None
    name: str | None = None

    @classmethod
    def telegram(cls, user_id: int) -> Actor:
        return cls("telegram", id=user_id)

    @classmethod
    def cli(cls, account: str | None) -> Actor:
        return cls("cli", name=(account or "unknown")[:ACTOR_NAME_LIMIT])

    @property
    def label(self) -> str:
        """As the log prints it: telegram:123, cli:root, system."""
        if self.source == "telegram":
            return f"telegram:{self.id}"
        if self.source == "cli":
            return f"cli:{self.name}"
        return self.source


SYSTEM = Actor("system")


def record(uow: UnitOfWork, clock: Clock, actor: Actor, action: str, *,
           target: str | None = None, **details: Any) -> AdminAction:
    """Add the entry to the caller's transaction (it commits with the action). None values
    are left out of the details."""
    row = AdminAction(at=clock.now(), source=actor.source, actor_id=actor.id,
                      actor_name=actor.name, action=action,
                      target=target[:TARGET_LIMIT] if target else None,
                      details={k: v for k, v in details.items() if v is not None})
    uow.admin_log.add(row)
    return row


def actor_of(row: AdminAction) -> Actor:
    return Actor(row.source, id=row.actor_id, name=row.actor_name)


async def entries(uow: UnitOfWork, since: datetime | None = None, *,
                  limit: int | None = None) -> Sequence[AdminAction]:
    return await uow.admin_log.since(since, limit=limit)
