"""Who acted, as any door describes them, and the language to answer them in."""

from __future__ import annotations

from dataclasses import dataclass

from bot.i18n import Translator
from bot.runtime import Runtime
from bot.services import users
from bot.services.binding import GroupInfo
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class Who:
    """The person who acted and where: a private chat (``group`` None) or a group."""

    user_id: int | None            # None: a channel or an anonymous group admin
    chat_id: int
    language_code: str | None = None  # the language the person's app uses: a first guess
    group: GroupInfo | None = None

    @property
    def in_group(self) -> bool:
        return self.group is not None


async def translator(rt: Runtime, uow: UnitOfWork, who: Who) -> Translator:
    """Private chats answer in the person's language (noting that they wrote to us, in the
    action's transaction), groups in the group's, one for all its members."""
    if who.group is not None:
        return rt.translator(
            await users.group_language(uow, who.chat_id, rt.config.default_language))
    if who.user_id is None:
        return rt.translator(rt.config.default_language)
    return rt.translator(await users.private_language(
        uow, rt.clock, user_id=who.user_id, telegram_code=who.language_code,
        default=rt.config.default_language))


async def language(rt: Runtime, who: Who) -> Translator:
    """The translator for ``who``, for an answer that changes nothing (read only: nothing is
    committed, so the person is noted as having written by the next action that commits)."""
    async with rt.uow() as uow:
        return await translator(rt, uow, who)


async def answer_language(rt: Runtime, who: Who) -> Translator:
    """The translator for ``who``, for an answer that changes nothing else, committed at once
    (the note that the person wrote, and the update's id, as any action's commit): the door
    then shows the answer without another transaction, and a second delivery of the update
    is refused here, before anything is said."""
    async with rt.uow() as uow:
        t = await translator(rt, uow, who)
        await uow.commit()
    return t
