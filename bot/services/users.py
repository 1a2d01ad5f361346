"""People: their language and reachability."""

from __future__ import annotations

from bot.clock import Clock
from bot.i18n import LANGUAGES, resolve_language
from storage.uow import UnitOfWork


async def private_language(uow: UnitOfWork, clock: Clock, *, user_id: int,
                           telegram_code: str | None, default: str) -> str:
    """Note that the user wrote to us and return the language to answer in.

    Nothing is committed here: the note lands with whatever the handler commits next, in the
    same transaction as the update's own effects. A Runtime's unit of work answers from its
    language cache while the person's row needs no change (storage.repositories.users): then
    nothing is read or written. The row has no "last seen" time, so a person who writes is
    noted only when something about them changed (a new Telegram language code, marked
    reachable again, a first update).
    """
    choice = await uow.users.seen_choice(user_id, telegram_code, clock.now())
    return resolve_language(choice, telegram_code, default)


async def choose_language(uow: UnitOfWork, clock: Clock, *, user_id: int,
                          telegram_code: str | None, language: str) -> None:
    """The person's own choice of language (not committed: the caller commits)."""
    if language not in LANGUAGES:
        raise ValueError(language)
    user = await uow.users.seen(user_id, telegram_code, clock.now())
    uow.users.language_changes(user_id)
    user.language = language
    user.updated_at = clock.now()


async def group_language(uow: UnitOfWork, chat_id: int, default: str) -> str:
    group = await uow.groups.get(chat_id)
    return group.language if group is not None else default
