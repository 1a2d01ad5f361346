"""Who may use the centres' console, and what they see.

A browser signs in through the bot: it shows a link to the bot with a one-time nonce
(``/start console_<nonce>``), and whoever presses Start in Telegram is who that browser becomes,
if they may: the configured admins (everything), and members of the groups bound to centres
and desks (the subtrees of those nodes). The nonce is good for five minutes and once, and only
the browser that asked for it (it holds a secret of its own, in a cookie) gets the session.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.services.stats import Tree
from bot.services.webchat import token_hash
from storage.models import ConsoleSession, ConsoleSignin
from storage.uow import UnitOfWork

__all__ = ["token_hash"]

SIGNIN_FOR = timedelta(minutes=5)
PAYLOAD_PREFIX = "console_"
_NONCE = re.compile(r"[A-Za-z0-9_-]{20,56}")
# Groups of these nodes' levels let their members in (grid workers' groups do not).
CENTRE_LEVELS = frozenset({"district", "street", "town", "park", "community", "village", "desk"})


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_nonce() -> str:
    return secrets.token_urlsafe(24)  # 32 characters: "console_" + it fits a /start payload


def nonce_of(payload: str | None) -> str | None:
    """The nonce in a /start payload, if it is a console sign-in."""
    if not payload or not payload.startswith(PAYLOAD_PREFIX):
        return None
    nonce = payload.removeprefix(PAYLOAD_PREFIX)
    return nonce if _NONCE.fullmatch(nonce) else None


def is_signin(payload: str | None) -> bool:
    return bool(payload) and payload.startswith(PAYLOAD_PREFIX)


@dataclass(frozen=True)
class Staff:
    """A signed-in console user."""

    token_hash: str
    user_id: int
    name: str
    admin: bool
    roots: tuple[int, ...]
    csrf: str
    checked_at: datetime


def staff_of(row: ConsoleSession) -> Staff:
    return Staff(row.token_hash, row.user_id, row.name, row.admin, tuple(row.roots or ()),
                 row.csrf, row.checked_at)


def roots_among(tree: Tree, nodes: Iterable[int]) -> tuple[int, ...]:
    """The nodes not under another of them: what a person sees is their subtrees."""
    chosen = {node for node in nodes if node in tree.nodes}
    roots = []
    for node in sorted(chosen):
        parent = tree.nodes[node].parent_id
        above = False
        while parent is not None:
            if parent in chosen:
                above = True
                break
            parent = tree.nodes[parent].parent_id if parent in tree.nodes else None
        if not above:
            roots.append(node)
    return tuple(roots)


def visible(tree: Tree, roots: Sequence[int]) -> set[int]:
    seen: set[int] = set()
    for root in roots:
        if root in tree.nodes:
            seen.update(tree.subtree(root))
    return seen


async def centre_groups(uow: UnitOfWork) -> list[tuple[int, int]]:
    """The bound groups whose members may use the console: (chat id, node id)."""
    out = []
    for group in await uow.groups.bound():
        node = await uow.nodes.get(group.node_id) if group.node_id else None
        if node is not None and node.level in CENTRE_LEVELS:
            out.append((group.chat_id, node.id))
    return out


def begin(uow: UnitOfWork, now: datetime) -> tuple[str, str]:
    """A new sign-in: the nonce for the link and the browser's secret for its cookie."""
    nonce, secret = new_nonce(), new_secret()
    uow.console.add_signin(ConsoleSignin(
        nonce_hash=token_hash(nonce), browser_hash=token_hash(secret), state="waiting",
        roots=[], admin=False, created_at=now, expires_at=now + SIGNIN_FOR))
    return nonce, secret


def open_session(uow: UnitOfWork, now: datetime, signin: ConsoleSignin) -> str:
    token = new_secret()
    uow.console.add_session(ConsoleSession(
        token_hash=token_hash(token), user_id=signin.user_id, name=signin.name or "",
        admin=signin.admin, roots=list(signin.roots or []), csrf=secrets.token_urlsafe(24),
        created_at=now, last_seen_at=now, checked_at=now))
    return token
