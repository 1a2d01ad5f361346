"""The hourly housekeeping job: old processed update ids and old wrong invitation codes go,
newer ones stay, and each part commits its own unit of work."""

from __future__ import annotations

from datetime import timedelta

from bot.actions import maintenance
from bot.services import enterprises, webchat
from tests.harness import BotEnv


async def test_housekeeping_forgets_only_what_is_old_enough(bot: BotEnv) -> None:
    rt = bot.runtime
    now = rt.clock.now()
    retention = rt.config.runtime.processed_update_retention
    old_guess = now - enterprises.JOIN_WINDOW - timedelta(minutes=1)
    async with rt.uow() as uow:
        await uow.updates.record(10**9, now - retention - timedelta(minutes=1))
        await uow.updates.record(10**9 + 1, now)
        await uow.enterprises.record_guess(4242, old_guess, forget_before=old_guess)
        await uow.enterprises.record_guess(4243, now, forget_before=old_guess)
        await uow.session.commit()

    assert await maintenance.purge_processed_updates(rt) == 1
    assert await maintenance.forget_invite_guesses(rt) == 1
    assert await maintenance.purge_processed_updates(rt) == 0  # nothing left to forget
    async with rt.uow() as uow:
        assert not await uow.updates.is_processed(10**9)
        assert await uow.updates.is_processed(10**9 + 1)
        assert await uow.enterprises.guesses_since(4242, old_guess - timedelta(1)) == []
        assert len(await uow.enterprises.guesses_since(4243, old_guess)) == 1


async def test_idle_web_sessions_are_forgotten_and_recent_ones_kept(bot: BotEnv) -> None:
    rt = bot.runtime
    idle = rt.config.web.session_idle
    async with rt.uow() as uow:
        old_token, _ = await webchat.open_session(uow, rt.clock.now() - idle - timedelta(hours=1))
        new_token, _ = await webchat.open_session(uow, rt.clock.now() - idle + timedelta(hours=1))
        await uow.commit()
    assert await maintenance.forget_idle_web_sessions(rt) == 1
    async with rt.uow() as uow:
        assert await uow.web.session(webchat.token_hash(old_token)) is None
        assert await uow.web.session(webchat.token_hash(new_token)) is not None
