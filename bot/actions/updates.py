"""The update being handled is marked handled before the door says anything.

An action's commit records the update's id with its effects (``storage.uow``), so a
delivery of an update already handled fails at that commit, before any answer is sent. An
answer that no commit came before (a read-only look, a refusal) would escape that check;
``settle`` records the id alone first, so the second delivery stops there too and nothing is
said twice. After a commit it costs nothing. A question whose message id the update's first
commit must remember (``defer``) is the one exception: it is checked, not recorded, first.
"""

from __future__ import annotations

from bot.runtime import Runtime
from storage.uow import DuplicateUpdate, UnitOfWork, current_update

__all__ = ["DuplicateUpdate", "defer", "settle"]


async def settle(rt: Runtime) -> None:
    """Record the current update's id now if no commit has yet; raises DuplicateUpdate when
    another delivery of it was handled first. Nothing to do outside an update."""
    scope = current_update.get()
    if scope is None or scope.recorded or scope.deferred:
        return
    async with rt.uow() as uow:
        await uow.commit()


async def defer(uow: UnitOfWork) -> None:
    """Inside an action that commits nothing and leaves the door a question to send whose
    message id the update's first commit then remembers (the groups' prompts): a delivery of
    an update handled before stops here, before the question is sent (raises
    DuplicateUpdate: one read in the action's own transaction), and ``settle`` leaves the
    id to that later commit."""
    scope = current_update.get()
    if scope is None or scope.recorded:
        return
    if await uow.updates.is_processed(scope.update_id):
        raise DuplicateUpdate(scope.update_id)
    scope.deferred = True
