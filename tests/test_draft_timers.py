"""Idle drafts: reminded once after an hour, discarded after a day, through
the real Application on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.services import tickets
from storage.models import Draft, ScheduledTask, Ticket
from storage.repositories.drafts import CHECK_KIND
from tests.harness import BotEnv, start_bot, stop_bot
from tests.telegram_fake import User

GRID = "SFQ-DH-01-G1"
INSIDE = (31.23, 121.42)  # in GRID
ZH = User(300_101, "张<i>三</i>", language_code="zh-hans")
EN = User(300_102, "Ann <b>&amp;", language_code="en")
WORKER = User(300_103, "网格员乙", language_code="zh-hans")
TEXT = "楼道里堆满了垃圾，已经一周没人清理了"
SHANGHAI = ZoneInfo("Asia/Shanghai")


EXPIRED = ("Your unfinished report was discarded because it was not continued; nothing was sent. "
           "Send /report to start again.")


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of November 2026 in Shanghai time (the default time zone), in UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def _data(call) -> list[str]:
    markup = call.params.get("reply_markup") or {}
    return [b.get("callback_data") for row in markup.get("inline_keyboard", []) for b in row]


def reminders(bot: BotEnv, user: User) -> list[str]:
    return [text for text in bot.texts(user.id) if text.startswith("⏰")]


async def press(bot: BotEnv, user: User, data: str) -> None:
    """Press the button `data` on the newest message to `user` that has it (a summary's
    buttons carry their draft's token after "@")."""
    for call in reversed(bot.fake.calls):
        if call.method not in ("sendMessage", "editMessageText") or \
                call.params.get("chat_id") != user.id:
            continue
        found = [d for d in _data(call) if d == data or d.startswith(data + "@")]
        if found:
            await bot.send(bot.updates.callback(user, found[0], call.result))
            return
    raise AssertionError(f"no message to {user.id} has a {data!r} button")


def alert(bot: BotEnv) -> str | None:
    answer = bot.fake.last("answerCallbackQuery")
    return answer.params.get("text") if answer.params.get("show_alert") else None


async def run(bot: BotEnv, after: timedelta = timedelta(0)) -> None:
    """Let time pass, run what is due and deliver what it sent."""
    bot.clock.advance(after)
    await bot.tick()
    await bot.deliver()


async def draft(bot: BotEnv, user: User, flow: str = "report") -> Draft | None:
    async with bot.runtime.uow() as uow:
        return await uow.drafts.get(user.id, flow)


async def checks(bot: BotEnv) -> list[ScheduledTask]:
    """The draft checks still to run; and none may have failed."""
    async with bot.runtime.uow() as uow:
        failed = (await uow.session.scalars(select(ScheduledTask).where(
            ScheduledTask.kind == CHECK_KIND, ScheduledTask.status == "failed"))).all()
        assert failed == []
        return list(await uow.tasks.pending(kind=CHECK_KIND))


async def start_report(bot: BotEnv, user: User) -> None:
    """A report that has its category and its description: it waits for photos."""
    await bot.send(bot.updates.command(user, "/report"))
    await press(bot, user, "rp:cat:sanitation")
    await bot.send(bot.updates.private_text(user, TEXT))
    assert (await draft(bot, user)).step == "media"
    await run(bot)  # the draft's first check sets itself for the hour


async def test_an_idle_report_is_reminded_once_in_the_residents_language(bot: BotEnv) -> None:
    t = bot.runtime.translator("en")
    await start_report(bot, EN)
    await run(bot, timedelta(minutes=59))
    assert reminders(bot, EN) == []
    await run(bot, timedelta(minutes=1))
    assert len(reminders(bot, EN)) == 1
    call = bot.fake.last("sendMessage")
    assert call.params["chat_id"] == EN.id
    assert _data(call) == ["rp:resume", "rp:restart", "rp:cancel"]
    raw = bot.fake.sent_texts(EN.id, raw=True)[-1]
    assert t("You have an unfinished report (<b>{category}</b>). Continue where you left off, "
             "or start over?", category="Sanitation and environment") in raw
    assert t("Without an answer it will be discarded after {time}.",
             time="11-24 09:00") in raw  # 24 hours after the last answer, local time
    assert (await draft(bot, EN)).reminded_at == bot.clock.now()

    for _ in range(6):  # hours more of silence: still only the one reminder
        await run(bot, timedelta(hours=1))
    assert len(reminders(bot, EN)) == 1
    assert await draft(bot, EN) is not None


async def test_an_answer_after_the_reminder_starts_a_new_idle_spell(bot: BotEnv) -> None:
    await start_report(bot, ZH)
    await run(bot, timedelta(hours=1))
    assert len(reminders(bot, ZH)) == 1
    await run(bot, timedelta(minutes=20))
    await press(bot, ZH, "rp:skip:media")  # the resident comes back and answers
    row = await draft(bot, ZH)
    assert row.step == "place" and row.reminded_at is None
    await run(bot, timedelta(minutes=59))
    assert len(reminders(bot, ZH)) == 1
    await run(bot, timedelta(minutes=1))  # an hour after that answer: reminded again
    assert len(reminders(bot, ZH)) == 2
    await run(bot, timedelta(hours=3))
    assert len(reminders(bot, ZH)) == 2


async def test_continue_shows_the_step_again_and_the_report_can_be_sent(bot: BotEnv) -> None:
    await start_report(bot, ZH)
    await run(bot, timedelta(hours=2))
    assert len(reminders(bot, ZH)) == 1
    await press(bot, ZH, "rp:resume")
    assert "rp:skip:media" in _data(bot.fake.last("sendMessage"))  # the photo question
    await press(bot, ZH, "rp:skip:media")
    await bot.send(bot.updates.location(ZH, *INSIDE))
    await bot.send(bot.updates.contact(ZH, "+86 138 1234 5678"))
    await press(bot, ZH, "rp:submit")
    async with bot.runtime.uow() as uow:
        [ticket] = (await uow.session.scalars(
            select(Ticket).where(Ticket.reporter_id == ZH.id))).all()
    assert ticket.description == TEXT
    assert await draft(bot, ZH) is None
    assert await checks(bot) == []  # the draft's check went with it
    await run(bot, timedelta(days=2))  # the ticket's own timers run; nothing of the draft
    assert len(reminders(bot, ZH)) == 1
    assert bot.runtime.translator("zh_Hans")(EXPIRED) not in bot.texts(ZH.id)


async def test_after_a_day_the_draft_is_discarded_and_the_resident_told(bot: BotEnv) -> None:
    t = bot.runtime.translator("zh_Hans")
    await start_report(bot, ZH)
    await run(bot, timedelta(hours=1))
    await run(bot, timedelta(hours=22, minutes=59))
    assert await draft(bot, ZH) is not None
    await run(bot, timedelta(minutes=1))
    assert await draft(bot, ZH) is None
    assert bot.last_text(ZH.id) == t(EXPIRED)
    assert await checks(bot) == []

    # The reminder's buttons, pressed now, say what happened instead of failing.
    await press(bot, ZH, "rp:cancel")
    assert alert(bot) == t("There is nothing to cancel.")
    await press(bot, ZH, "rp:resume")
    # Said above the new report's first question, in the same message.
    assert bot.texts(ZH.id)[-1].startswith(
        t("That unfinished report is no longer kept. Please start again."))
    assert "rp:cat:sanitation" in _data(bot.fake.last("sendMessage"))  # a new report begins
    assert (await draft(bot, ZH)).step == "category"


async def test_discard_from_the_reminder(bot: BotEnv) -> None:
    t = bot.runtime.translator("zh_Hans")
    await start_report(bot, ZH)
    await run(bot, timedelta(hours=1))
    await press(bot, ZH, "rp:cancel")
    assert bot.last_text(ZH.id) == t("Your report was cancelled; nothing was sent.")
    assert await draft(bot, ZH) is None
    assert await checks(bot) == []


async def test_start_over_from_the_reminder_gives_a_new_draft_its_own_check(
        bot: BotEnv) -> None:
    await start_report(bot, ZH)
    await run(bot, timedelta(hours=1))
    await press(bot, ZH, "rp:restart")
    new = await draft(bot, ZH)  # a new row (SQLite may give it the old one's id)
    assert new.step == "category" and new.created_at == bot.clock.now()
    assert [task.payload["draft_id"] for task in await checks(bot)] == [new.id]
    await run(bot)
    await run(bot, timedelta(hours=1))
    assert len(reminders(bot, ZH)) == 2


async def test_a_person_never_waits_for_a_check_that_is_running(bot: BotEnv, db) -> None:
    if db.is_sqlite:
        pytest.skip("one writer at a time on SQLite: nothing runs beside the person's update")
    await start_report(bot, ZH)
    async with bot.runtime.uow() as ticker, bot.runtime.uow() as person:
        [task] = await ticker.tasks.pending(kind=CHECK_KIND)
        # The ticker holds the row of a check it is running, as Ticker._run does.
        await ticker.session.execute(select(ScheduledTask).where(ScheduledTask.id == task.id)
                                     .with_for_update())
        await asyncio.wait_for(person.drafts.discard(ZH.id, "report"), timeout=5)
        await person.commit()
    assert await draft(bot, ZH) is None
    await run(bot, timedelta(hours=2))  # the check it could not cancel finds nothing to do
    assert reminders(bot, ZH) == []
    assert await checks(bot) == []


async def test_a_reminder_due_in_quiet_hours_waits_until_eight(bot: BotEnv) -> None:
    bot.clock.set(local(23, 20, 30))
    await start_report(bot, ZH)  # idle from 20:30; the reminder would be at 21:30
    await run(bot, timedelta(hours=1))
    await run(bot, timedelta(hours=10))  # 07:30
    assert reminders(bot, ZH) == []
    bot.clock.set(local(24, 8, 0))
    await run(bot)
    assert len(reminders(bot, ZH)) == 1
    # The draft still expires a day after the last answer (20:30 is not quiet).
    bot.clock.set(local(24, 20, 29))
    await run(bot)
    assert await draft(bot, ZH) is not None
    bot.clock.set(local(24, 20, 30))
    await run(bot)
    assert await draft(bot, ZH) is None


async def test_a_draft_due_to_expire_in_quiet_hours_waits_for_morning(bot: BotEnv) -> None:
    t = bot.runtime.translator("zh_Hans")
    bot.clock.set(local(23, 22, 0))
    await start_report(bot, ZH)
    bot.clock.set(local(24, 8, 0))
    await run(bot)
    assert len(reminders(bot, ZH)) == 1
    bot.clock.set(local(24, 23, 0))  # a day after the last answer, in quiet hours
    await run(bot)
    assert await draft(bot, ZH) is not None
    bot.clock.set(local(25, 8, 0))
    await run(bot)
    assert await draft(bot, ZH) is None
    assert bot.last_text(ZH.id) == t(EXPIRED)


async def test_a_new_drafts_check_is_set_for_its_reminder_and_a_group_questions_for_expiry(
        bot: BotEnv) -> None:
    """No task runs at the next tick only to set itself for later: a report costs no task run
    before its reminder is due (in a flood of reports the tick ran one per report)."""
    timings = bot.runtime.config.timings.drafts
    start = bot.clock.now()
    await bot.send(bot.updates.command(ZH, "/report"))
    async with bot.runtime.uow() as uow:
        await uow.drafts.start(WORKER.id, "resolve", "note", {"ticket_id": 1}, start)
        await uow.commit()
    assert sorted(task.due_at for task in await checks(bot)) == [
        start + timings.remind_after, start + timings.expire_after]
    assert await bot.tick() == 0
    bot.clock.advance(timings.remind_after)
    assert await bot.tick() == 1
    await bot.deliver()
    assert len(reminders(bot, ZH)) == 1


async def test_a_restart_while_a_reminder_is_due_reminds_once(bot: BotEnv, db,
                                                               catalogs) -> None:
    await bot.send(bot.updates.command(ZH, "/report"))
    await press(bot, ZH, "rp:cat:sanitation")
    bot.clock.advance(timedelta(hours=3))  # the bot was down: the first check never ran
    again = await start_bot(db, catalogs, clock=bot.clock, fake=bot.fake, first_update_id=500)
    try:
        assert await again.tick() == 1
        assert await again.tick() == 0
        assert await bot.tick() == 0
        await again.deliver()
    finally:
        await stop_bot(again)
    assert len(reminders(bot, ZH)) == 1
    assert [task.due_at for task in await checks(bot)] == [bot.clock.now() + timedelta(hours=1)]


async def test_blocked_residents_are_not_reminded_and_group_questions_expire_quietly(
        bot: BotEnv) -> None:
    await start_report(bot, ZH)
    async with bot.runtime.uow() as uow:
        (await uow.users.get(ZH.id)).unreachable = True
        await uow.drafts.start(WORKER.id, "resolve", "note", {"ticket_id": 1}, bot.clock.now())
        await uow.commit()
    sent = len(bot.fake.calls_to("sendMessage"))
    await run(bot)
    await run(bot, timedelta(hours=2))
    assert await draft(bot, WORKER, "resolve") is not None
    await run(bot, timedelta(hours=22))
    assert await draft(bot, ZH) is None
    assert await draft(bot, WORKER, "resolve") is None
    assert len(bot.fake.calls_to("sendMessage")) == sent
    assert await checks(bot) == []


async def test_adding_information_is_reminded_with_buttons_that_work(bot: BotEnv) -> None:
    t = bot.runtime.translator("zh_Hans")
    rt = bot.runtime
    async with rt.uow() as uow:
        grid = await uow.nodes.by_code(GRID)
        ticket = await tickets.create(uow, rt.clock, rt.config, tickets.NewReport(
            category=rt.config.category("sanitation"), description=TEXT, reporter_id=ZH.id,
            language="zh_Hans", grid_id=grid.id))
        await uow.commit()
    await bot.send(bot.updates.command(ZH, "/start"))  # the resident is known
    async with rt.uow() as uow:
        await uow.drafts.start(ZH.id, "addinfo", "wait", {"ticket_id": ticket.id},
                               rt.clock.now())
        await uow.commit()
    await run(bot)
    await run(bot, timedelta(hours=1))
    assert reminders(bot, ZH) == [t(
        "⏰ You started adding information to No. {number} but have not sent it yet.",
        number=ticket.number) + "\n" + t("Without an answer it will be discarded after {time}.",
                                          time="11-24 09:00")]
    assert _data(bot.fake.last("sendMessage")) == [f"my:add:{ticket.id}", "my:cancel"]
    await press(bot, ZH, f"my:add:{ticket.id}")  # "Continue" asks again
    assert str(ticket.number) in bot.last_text(ZH.id)
    assert (await draft(bot, ZH, "addinfo")).reminded_at is None
    await press(bot, ZH, "my:cancel")
    assert await draft(bot, ZH, "addinfo") is None
    assert await checks(bot) == []
