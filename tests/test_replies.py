"""Answers to a person survive Telegram's answer and a crash: a 429 is waited out and the
answer still comes; a press that can no longer be answered does not stop the reply; the number
of a ticket just submitted reaches the resident even if the process dies right after the
commit."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import select

from bot.sandbox.flood import RateLimits
from storage.models import OutboxMessage
from tests.harness import BotEnv, FakeMonotonic, make_config, start_bot, stop_bot
from tests.test_report_flow import (
    EN,
    INSIDE,
    _data,
    bind_group,
    draft,
    press,
    tickets_of,
    to_place,
    to_summary,
)

TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"


class Killed(BaseException):
    """The process dies (kill -9): nothing after this runs, no handler catches it."""


async def killed_at_the_answer(bot: BotEnv, method: str, chat_id: int,
                               act: Callable[[], Awaitable[object]]) -> None:
    """Does ``act`` in a process that dies as it makes its ``method`` call to ``chat_id``:
    after the handler's commit, before the person sees the answer."""
    calls = bot.fake.server.call

    async def dies_when_answering(called, params, uploads):
        if called == method and params.get("chat_id") == chat_id:
            raise Killed
        return await calls(called, params, uploads)

    bot.fake.server.call = dies_when_answering
    try:
        await act()
    except Killed:
        pass
    else:
        raise AssertionError("the process was meant to die after the commit")
    finally:
        bot.fake.server.call = calls


def telegram_counts_time(bot: BotEnv) -> list[float]:
    """Telegram's flood control on the fake (one message a second in a private chat, bursts
    of three), on a clock that only the bot's waiting moves; returns the waits."""
    clock = FakeMonotonic()
    waits: list[float] = []

    async def wait(seconds: float) -> None:
        waits.append(seconds)
        await clock.sleep(seconds)

    bot.fake.server.monotonic = clock
    bot.fake.server.rate_limits = RateLimits()
    bot.app.bot.rate_limiter.sleep = wait
    return waits


async def test_quick_wrong_answers_are_each_answered_in_full_after_the_wait(
        bot: BotEnv, db) -> None:
    t = bot.runtime.translator("en")
    await to_place(bot, EN)
    await bot.send(bot.updates.location(EN, *INSIDE))
    assert (await draft(db, EN)).step == "contact"
    waits = telegram_counts_time(bot)
    sent = len(bot.texts(EN.id))
    explanation = t("Please share your phone number with the button below, or press “{button}”.",
                    button=t("Skip"))
    for _ in range(4):  # typed numbers, one after another, faster than one a second
        await bot.send(bot.updates.private_text(EN, "138 1234"))
    # Each wrong answer gets the explanation with the question and the other choices, in one
    # message; the share button stays under the input field.
    answers = [call for call in bot.fake.calls_to("sendMessage") if call.error is None][-4:]
    assert len(bot.texts(EN.id)) == sent + 4
    for call in answers:
        assert call.params["text"].startswith(explanation)
        assert "rp:skip:contact" in _data(call) and "rp:back:contact" in _data(call)
    shown = bot.fake.server.reply_keyboards[EN.id]
    assert shown["keyboard"][0][0]["request_contact"] is True
    assert bot.fake.server.flood_refusals > 0 and waits
    assert all(1 <= wait < 2 for wait in waits)
    assert (await draft(db, EN)).step == "contact"


async def test_a_press_too_old_to_answer_still_gets_the_next_question(bot: BotEnv, db) -> None:
    t = bot.runtime.translator("en")
    await bot.send(bot.updates.command(EN, "/report"))
    await press(bot, EN, "rp:cat:sanitation")
    await bot.send(bot.updates.private_text(EN, "The bins at gate 2 overflow every day"))
    # Another instance took the update over after the one that had it died: Telegram has
    # forgotten the press by then.
    bot.fake.fail("answerCallbackQuery", error_code=400, description=TOO_OLD)
    await press(bot, EN, "rp:skip:media")
    assert (await draft(db, EN)).step == "place"
    assert t("Or choose here:") in bot.texts(EN.id)
    assert bot.fake.last("answerCallbackQuery").error is not None


async def test_a_press_waiting_out_a_429_does_not_hold_the_next_question_back(
        bot: BotEnv, db) -> None:
    await bot.send(bot.updates.command(EN, "/report"))
    asked = len(bot.texts(EN.id))
    bot.fake.fail("answerCallbackQuery", retry_after=3)
    shown_while_waiting: list[int] = []

    async def wait(seconds: float) -> None:
        await asyncio.sleep(0.05)  # the reply, beside it, goes on meanwhile
        shown_while_waiting.append(len(bot.texts(EN.id)))

    bot.app.bot.rate_limiter.sleep = wait
    await press(bot, EN, "rp:cat:sanitation")
    # The description's question was sent while the press's answer waited out the 429; the
    # press was answered all the same, before the update was over.
    assert shown_while_waiting == [asked + 1]
    assert (await draft(db, EN)).step == "description"
    answers = bot.fake.calls_to("answerCallbackQuery")
    assert answers[-1].error is None and answers[-2].error is not None


async def test_a_failed_press_is_answered_once_and_the_apology_comes_as_a_message(
        bot: BotEnv, db) -> None:
    t = bot.runtime.translator("en")
    await bot.send(bot.updates.command(EN, "/report"))
    answered = len(bot.fake.calls_to("answerCallbackQuery"))
    bot.fake.fail("sendMessage", chat_id=EN.id, error_code=400,
                  description="Bad Request: chat not found")
    await press(bot, EN, "rp:cat:sanitation")
    assert [type(e).__name__ for e in bot.errors] == ["BadRequest"]
    bot.errors.clear()
    # The handler answered the press before its message failed; a second answer would be
    # refused by Telegram, so the apology is a message.
    assert len(bot.fake.calls_to("answerCallbackQuery")) == answered + 1
    assert bot.last_text(EN.id) == t(
        "Sorry, something went wrong on our side. Please try again in a moment.")


async def test_the_ticket_number_is_sent_once_and_kept_in_the_outbox(bot: BotEnv, db) -> None:
    t = bot.runtime.translator("en")
    await bind_group(bot)
    await to_summary(bot, EN)
    await press(bot, EN, "rp:submit")
    [ticket] = await tickets_of(db, EN)
    confirmation = t("✅ Your report is registered as No. {number}.", number=ticket.number)
    assert bot.last_text(EN.id).startswith(confirmation)
    await bot.deliver()
    assert sum(text.startswith(confirmation) for text in bot.texts(EN.id)) == 1
    async with db.sessions() as session:
        row = (await session.scalars(select(OutboxMessage).where(
            OutboxMessage.chat_id == EN.id))).one()
    assert (row.status, row.ticket_id) == ("sent", ticket.id)


async def test_a_flooded_ticket_number_waits_in_the_outbox_and_arrives_once(
        db, catalogs) -> None:
    # Telegram asks for a wait longer than the handler's lease on the reply: were the wait
    # made inside the handler, the sender would take the row over meanwhile and send it too.
    bot = await start_bot(db, catalogs, config=make_config(delivery={"lease": "30s"}))
    try:
        t = bot.runtime.translator("en")
        await bind_group(bot)
        await to_summary(bot, EN)
        waited: list[float] = []

        async def the_sender_runs_meanwhile(seconds: float) -> None:
            waited.append(seconds)
            bot.clock.advance(timedelta(seconds=seconds))
            await bot.deliver()

        bot.app.bot.rate_limiter.sleep = the_sender_runs_meanwhile
        bot.fake.fail("sendMessage", chat_id=EN.id, retry_after=40)
        await press(bot, EN, "rp:submit")
        [ticket] = await tickets_of(db, EN)
        confirmation = t("✅ Your report is registered as No. {number}.", number=ticket.number)
        assert not any(text.startswith(confirmation) for text in bot.texts(EN.id))
        await bot.deliver()  # too early: the wait Telegram asked for is not over
        assert not any(text.startswith(confirmation) for text in bot.texts(EN.id))
        bot.clock.advance(timedelta(seconds=41))
        await bot.deliver()
        assert sum(text.startswith(confirmation) for text in bot.texts(EN.id)) == 1
        assert waited == [] and bot.errors == []
    finally:
        await stop_bot(bot)


async def test_the_ticket_number_arrives_after_a_crash_right_after_submit(db, catalogs) -> None:
    first = await start_bot(db, catalogs)
    t = first.runtime.translator("en")
    await bind_group(first)
    await to_summary(first, EN)
    summary_at = len(first.texts(EN.id))
    await killed_at_the_answer(first, "sendMessage", EN.id,
                               lambda: press(first, EN, "rp:submit"))
    [ticket] = await tickets_of(db, EN)  # committed: the card is on its way to the group
    assert len(first.texts(EN.id)) == summary_at  # the resident still sees the summary
    await stop_bot(first)

    # Restarted a while later (the handler's lease on the reply has run out).
    first.clock.advance(first.runtime.config.delivery.lease + timedelta(seconds=1))
    second = await start_bot(db, catalogs, clock=first.clock, fake=first.fake,
                             first_update_id=1000)
    try:
        await second.deliver()
        confirmation = t("✅ Your report is registered as No. {number}.", number=ticket.number)
        assert sum(text.startswith(confirmation) for text in second.texts(EN.id)) == 1
        await second.send(second.updates.command(EN, "/mytickets"))
        assert ticket.number in str(second.fake.last("sendMessage").params)
        await second.deliver()
        assert sum(text.startswith(confirmation) for text in second.texts(EN.id)) == 1
        assert second.errors == []
        second.fake.assert_no_violations()
    finally:
        await stop_bot(second)


async def test_a_booking_number_arrives_after_a_crash_right_after_the_booking(
        db, catalogs) -> None:
    from tests.test_booking import OWNER_A, _book, _booking, _press, _setup, _slots, _with_button

    first = await start_bot(db, catalogs)
    ids = await _setup(first)
    await _slots(first, "add", "2026-11-25", "09:00-10:00", "60m", "1")
    async with first.runtime.uow() as uow:
        node = await uow.nodes.by_code("legal")
        [slot] = await uow.bookings.slots_between(node.id, first.clock.now(),
                                                  first.clock.now() + timedelta(days=30))
    await _book(first, OWNER_A, slot.id, day="20261125")
    summary = _with_button(first, OWNER_A.id, "ck:ok")
    await killed_at_the_answer(first, "editMessageText", OWNER_A.id,
                               lambda: _press(first, OWNER_A, "ck:ok"))
    booking = await _booking(first, ids["a"])
    assert booking is not None and booking.status == "booked"
    async with first.runtime.uow() as uow:
        number = (await uow.tickets.get(booking.ticket_id)).number
    assert number not in str(first.fake.messages_in(OWNER_A.id))
    await stop_bot(first)

    first.clock.advance(first.runtime.config.delivery.lease + timedelta(seconds=1))
    second = await start_bot(db, catalogs, clock=first.clock, fake=first.fake,
                             first_update_id=1000)
    try:
        await second.deliver()
        [confirmed] = [m for m in second.fake.messages_in(OWNER_A.id)
                       if m["message_id"] == summary["message_id"]]
        assert number in confirmed["text"] and "reply_markup" not in confirmed
        assert second.errors == []
        second.fake.assert_no_violations()
    finally:
        await stop_bot(second)
