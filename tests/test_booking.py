"""Legal check-up booking, through the real Application on both databases:
slots published with /slots, a booking end to end, the race for the last place, minimum
notice, full slots, the cut-off, moves, the desk's buttons, reminders, the survey, and forged
presses."""

from __future__ import annotations

import asyncio
import html
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from bot.services import bookings
from bot.services.bookings import BookingRefused, Problem
from bot.views.cards import day_label
from storage.models import Booking, CheckupSlot, Enterprise, EnterpriseContact
from tests.harness import ADMIN, BotEnv
from tests.telegram_fake import Chat, User

SHANGHAI = ZoneInfo("Asia/Shanghai")
DESK_GROUP = Chat(-1008300000001, "supergroup", title="公共法律服务")
OTHER_GROUP = Chat(-1008300000002, "supergroup", title="第1网格")
FORUM_DESK = Chat(-1008300000003, "supergroup", title="法律服务论坛", is_forum=True)
LAWYER = User(830_101, "律师甲", language_code="zh-hans")
LAWYER_2 = User(830_102, "律师乙", language_code="zh-hans")
STRANGER = User(830_103, "路人", language_code="zh-hans")
OWNER_A = User(830_201, "企业联系人甲", language_code="en")
OWNER_B = User(830_202, "企业联系人乙", language_code="zh-hans")
NOBODY = User(830_203, "居民", language_code="zh-hans")
COLLEAGUE_A = User(830_204, "同事", language_code="zh-hans")


def local(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI).astimezone(UTC)


async def _setup(bot: BotEnv, *, bind: bool = True) -> dict[str, int]:
    """The desk group bound, two enterprises with one contact each."""
    if bind:
        await bot.send(bot.updates.command(DESK_GROUP, "/bind", "legal", user=ADMIN))
    rt = bot.runtime
    now = rt.clock.now()
    ids = {}
    async with rt.uow() as uow:
        for key, user, code in (("a", OWNER_A, "91110108551385082Q"),
                                ("b", OWNER_B, "91350100M000100Y43")):
            enterprise = Enterprise(name=f"<Acme> {key}", credit_code=code, industry="it",
                                    invite_code=f"INV{key}", created_by=user.id,
                                    consent_at=now, created_at=now, updated_at=now)
            uow.session.add(enterprise)
            await uow.session.flush()
            uow.session.add(EnterpriseContact(enterprise_id=enterprise.id, user_id=user.id,
                                              name=user.first_name, phone="13812345678",
                                              role="owner", added_at=now))
            ids[key] = enterprise.id
        await uow.commit()
    bot.fake.set_member(DESK_GROUP.id, LAWYER.id, "member")
    bot.fake.set_member(DESK_GROUP.id, LAWYER_2.id, "member")
    bot.fake.set_member(DESK_GROUP.id, STRANGER.id, "left")
    return ids


async def _slots(bot: BotEnv, *args: str) -> None:
    await bot.send(bot.updates.command(DESK_GROUP, "/slots", *args, user=LAWYER))


async def _all_slots(bot: BotEnv) -> list[CheckupSlot]:
    async with bot.runtime.uow() as uow:
        node = await bookings.desk(uow, bot.runtime.config)
        return list(await uow.bookings.slots_between(node.id, local("2026-01-01 00:00"),
                                                     local("2027-12-31 00:00"),
                                                     open_only=False))


def _with_button(bot: BotEnv, chat_id: int, prefix: str) -> dict:
    """The newest message in the chat that has a button whose data starts with ``prefix``."""
    for message in reversed(bot.fake.messages_in(chat_id)):
        rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
        if any(b.get("callback_data", "").startswith(prefix) for row in rows for b in row):
            return message
    raise AssertionError(f"no message with a {prefix!r} button in {chat_id}")


def _buttons(message: dict) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return [b.get("callback_data", "") for row in rows for b in row]


async def _press(bot: BotEnv, user: User, data: str, chat_id: int | None = None) -> dict:
    """Press ``data`` on the newest message that offers it; returns the callback's answer."""
    chat_id = chat_id if chat_id is not None else user.id
    message = _with_button(bot, chat_id, data)
    await bot.send(bot.updates.callback(user, data, message))
    return bot.fake.last("answerCallbackQuery").params


async def _forge(bot: BotEnv, user: User, data: str, chat_id: int) -> dict:
    """Press made-up data on the newest bot message of a chat."""
    message = bot.fake.messages_in(chat_id)[-1]
    await bot.send(bot.updates.callback(user, data, message))
    return bot.fake.last("answerCallbackQuery").params


async def _book(bot: BotEnv, user: User, slot_id: int, *, day: str) -> None:
    """/checkup → one topic → Done → the day → the slot (the confirm step, not pressed)."""
    await bot.send(bot.updates.command(user, "/checkup"))
    await _press(bot, user, "ck:t:0")
    await _press(bot, user, "ck:t:1")
    await _press(bot, user, "ck:td")
    await _press(bot, user, f"ck:d:{day}")
    await _press(bot, user, f"ck:s:{slot_id}")


async def _booking(bot: BotEnv, enterprise_id: int) -> Booking | None:
    async with bot.runtime.uow() as uow:
        rows = await uow.bookings.of_enterprises([enterprise_id])
        return rows[0][0] if rows else None


async def _slot(bot: BotEnv, slot_id: int) -> CheckupSlot:
    async with bot.runtime.uow() as uow:
        return await uow.bookings.slot(slot_id)


async def _run_until(bot: BotEnv, moment: datetime) -> int:
    bot.clock.advance(moment - bot.clock.now())
    ran = await bot.tick()
    await bot.deliver()
    return ran


# -- /slots ------------------------------------------------------------------------------------

async def test_desk_publishes_lists_and_closes_slots(bot: BotEnv) -> None:
    await _setup(bot)
    await _slots(bot, "add", "2026-11-25", "09:00-12:00", "60m", "2")
    assert "3" in bot.last_text(DESK_GROUP.id)
    slots = await _all_slots(bot)
    assert [(s.starts_at, s.capacity) for s in slots] == [
        (local("2026-11-25 09:00"), 2), (local("2026-11-25 10:00"), 2),
        (local("2026-11-25 11:00"), 2)]
    # A range adds on working days only (11-28 and 11-29 are a weekend); overlaps are skipped.
    await _slots(bot, "add", "2026-11-25..2026-11-30", "09:00-10:00", "30m")
    text = bot.last_text(DESK_GROUP.id)
    assert "6" in text and "2" in text  # 4 working days × 2, of which 2 overlap 11-25
    days = {s.starts_at.astimezone(SHANGHAI).day for s in await _all_slots(bot)}
    assert days == {25, 26, 27, 30}
    # Bad input: the help, whose examples lie ahead (today is 2026-11-23).
    await _slots(bot, "add", "tomorrow", "9-12")
    assert "/slots add 2026-11-24 09:00-12:00 60m 2" in bot.last_text(DESK_GROUP.id)
    assert "/slots add 2026-11-24..2026-11-28 14:00-17:00" in bot.last_text(DESK_GROUP.id)
    await _slots(bot, "help")
    assert "/slots add 2026-11-24 09:00-12:00 60m 2" in bot.last_text(DESK_GROUP.id)
    # A day in the past is named as such, not as unreadable.
    t = bot.runtime.translator("zh_Hans")
    for past in ("2026-11-20", "2026-11-20..2026-11-25"):
        await _slots(bot, "add", past, "09:00-10:00")
        assert bot.last_text(DESK_GROUP.id).startswith(t(
            "That date has passed: slots can be added from today ({today}) on.",
            today="2026-11-23"))

    await _slots(bot)
    listing = bot.fake.messages_in(DESK_GROUP.id)[-1]
    assert "0/2" in listing["text"] and len(_buttons(listing)) == len(await _all_slots(bot))
    first = slots[0]
    answer = await _press(bot, LAWYER, f"bk:sc:{first.id}", DESK_GROUP.id)
    assert (await _slot(bot, first.id)).status == "closed"
    assert answer.get("text")
    # Members only; and only in the desk's own group.
    second = slots[1]
    answer = await _press(bot, STRANGER, f"bk:sc:{second.id}", DESK_GROUP.id)
    assert answer["show_alert"] is True and (await _slot(bot, second.id)).status == "open"
    await bot.send(bot.updates.command(OTHER_GROUP, "/slots", user=LAWYER))
    assert "/slots" in bot.last_text(OTHER_GROUP.id)
    assert len(await _all_slots(bot)) == 9


async def test_closing_a_booked_slot_asks_first_and_keeps_the_booking(bot: BotEnv) -> None:
    ids = await _setup(bot)
    await _slots(bot, "add", "2026-11-25", "09:00-10:00", "60m", "2")
    [slot] = await _all_slots(bot)
    await _book(bot, OWNER_A, slot.id, day="20261125")
    await _press(bot, OWNER_A, "ck:ok")
    await _slots(bot)
    await _press(bot, LAWYER, f"bk:sc:{slot.id}", DESK_GROUP.id)
    assert (await _slot(bot, slot.id)).status == "open"
    assert "1" in bot.last_text(DESK_GROUP.id)
    await _press(bot, LAWYER, f"bk:sy:{slot.id}", DESK_GROUP.id)
    assert (await _slot(bot, slot.id)).status == "closed"
    assert (await _booking(bot, ids["a"])).status == "booked"


async def test_a_forum_desk_is_answered_in_the_check_up_s_topic(bot: BotEnv) -> None:
    """In a desk group with topics, the desk's notes, pickers and the report prompt go to
    the ticket's topic, and /slots is answered in the topic it was sent in."""
    ids = await _setup(bot, bind=False)
    await bot.send(bot.updates.command(FORUM_DESK, "/bind", "legal", user=ADMIN))
    bot.fake.set_member(FORUM_DESK.id, LAWYER.id, "member")
    await bot.send(bot.updates.command(FORUM_DESK, "/slots", "add", "2026-11-25",
                                       "09:00-11:00", "60m", "1", user=LAWYER))
    first, second = await _all_slots(bot)
    await _book(bot, OWNER_A, first.id, day="20261125")
    await _press(bot, OWNER_A, "ck:ok")
    await bot.deliver()
    ticket_id = (await _booking(bot, ids["a"])).ticket_id
    async with bot.runtime.uow() as uow:
        topic = (await uow.tickets.get(ticket_id)).topic_id
    assert topic is not None

    def last_sent() -> dict:
        return [c for c in bot.fake.calls_to("sendMessage")
                if c.params["chat_id"] == FORUM_DESK.id][-1].params

    await _press(bot, LAWYER, f"bk:cf:{ticket_id}", FORUM_DESK.id)
    assert last_sent()["message_thread_id"] == topic
    await _press(bot, LAWYER, f"bk:pp:{ticket_id}", FORUM_DESK.id)
    picker = last_sent()
    assert picker["message_thread_id"] == topic
    assert f"bk:ps:{ticket_id}:{second.id}" in _buttons(picker)
    await bot.send(bot.updates.command(FORUM_DESK, "/slots", user=LAWYER,
                                       message_thread_id=topic))
    listing = last_sent()
    assert listing["message_thread_id"] == topic and f"bk:sc:{second.id}" in _buttons(listing)
    await _run_until(bot, local("2026-11-25 10:00"))
    await _press(bot, LAWYER, f"bk:dn:{ticket_id}", FORUM_DESK.id)
    prompt = last_sent()
    assert prompt["message_thread_id"] == topic and prompt["reply_markup"]["force_reply"]


# -- booking, end to end -----------------------------------------------------------------------

async def test_booking_end_to_end(bot: BotEnv) -> None:
    ids = await _setup(bot)
    await _slots(bot, "add", "2026-11-25", "09:00-11:00", "60m", "1")
    first, second = await _all_slots(bot)

    await bot.send(bot.updates.command(NOBODY, "/checkup"))
    assert "/enterprise" in bot.last_text(NOBODY.id)

    await _book(bot, OWNER_A, first.id, day="20261125")
    summary = bot.fake.messages_in(OWNER_A.id)[-1]["text"]
    assert "<Acme> a" in summary and "2026-11-25 09:00–10:00" in summary
    assert "Labour and employment" in summary and "Contracts" in summary
    await _press(bot, OWNER_A, "ck:ok")
    booking = await _booking(bot, ids["a"])
    assert booking.status == "booked" and booking.topics == ["labour_employment", "contracts"]
    assert (await _slot(bot, first.id)).booked == 1
    await bot.deliver()
    card = _with_button(bot, DESK_GROUP.id, "bk:cf:")
    assert "&lt;Acme&gt; a" in [c for c in bot.fake.calls_to("sendMessage")
                                if c.params["chat_id"] == DESK_GROUP.id][-1].params["text"]
    assert "劳动用工" in card["text"] and "2026-11-25 09:00–10:00" in card["text"]
    ticket_id = int(_buttons(card)[0].rsplit(":", 1)[1])
    async with bot.runtime.uow() as uow:
        ticket = await uow.tickets.get(ticket_id)
        kinds = {task.kind for task in await uow.tasks.pending(ticket_id=ticket_id)}
    assert (ticket.kind, ticket.enterprise_id, ticket.reporter_id) == (
        "checkup", ids["a"], OWNER_A.id)
    # Only the booking's own timers: no claim escalation for a check-up weeks ahead.
    assert kinds == {"booking_remind", "booking_after"}

    # The desk: a stranger cannot press; a member confirms and becomes the lawyer.
    answer = await _press(bot, STRANGER, f"bk:cf:{ticket_id}", DESK_GROUP.id)
    assert answer["show_alert"] is True
    await _press(bot, LAWYER, f"bk:cf:{ticket_id}", DESK_GROUP.id)
    await _press(bot, LAWYER, f"bk:as:{ticket_id}", DESK_GROUP.id)
    await bot.deliver()
    booking = await _booking(bot, ids["a"])
    assert (booking.status, booking.lawyer_id) == ("confirmed", LAWYER.id)
    told = bot.texts(OWNER_A.id)
    assert any("confirmed" in text for text in told)
    assert any("律师甲" in text and "lawyer" in text for text in told)

    # Propose another time; the enterprise accepts; the old place is free again.
    await _press(bot, LAWYER, f"bk:pp:{ticket_id}", DESK_GROUP.id)
    await _press(bot, LAWYER, f"bk:ps:{ticket_id}:{second.id}", DESK_GROUP.id)
    await bot.deliver()
    await _press(bot, OWNER_A, f"ck:pa:{booking.id}:{second.id}")
    booking = await _booking(bot, ids["a"])
    assert (booking.slot_id, booking.status) == (second.id, "confirmed")
    assert ((await _slot(bot, first.id)).booked, (await _slot(bot, second.id)).booked) == (0, 1)
    await bot.deliver()
    assert any("accepted" in t or "接受" in t for t in bot.texts(DESK_GROUP.id))

    # Reminders: 24 hours before (10:00 the day before), and 2 hours before (08:00).
    assert await _run_until(bot, local("2026-11-24 09:59")) == 0
    assert await _run_until(bot, local("2026-11-24 10:00")) == 1
    assert "Reminder" in bot.last_text(OWNER_A.id)
    assert await _run_until(bot, local("2026-11-25 08:00")) == 1
    assert "Reminder" in bot.last_text(OWNER_A.id)

    # Done is refused before the slot; after it the card offers Done and No-show.
    answer = await _forge(bot, LAWYER, f"bk:dn:{ticket_id}", DESK_GROUP.id)
    assert answer["show_alert"] is True
    assert await _run_until(bot, local("2026-11-25 11:00")) == 1
    card = _with_button(bot, DESK_GROUP.id, f"bk:dn:{ticket_id}")
    assert f"bk:ns:{ticket_id}" in _buttons(card)
    assert "律师甲" in bot.last_text(DESK_GROUP.id)
    # Another lawyer may not mark it; the lawyer does, with a report and a document.
    answer = await _press(bot, LAWYER_2, f"bk:dn:{ticket_id}", DESK_GROUP.id)
    assert answer["show_alert"] is True and "律师甲" in answer["text"]
    await _press(bot, LAWYER, f"bk:dn:{ticket_id}", DESK_GROUP.id)
    prompt = bot.fake.last("sendMessage").result
    # Someone else's reply is not taken; too short a report is asked again.
    await bot.send(bot.updates.group_text(DESK_GROUP, LAWYER_2, "我来写报告", reply_to=prompt))
    assert (await _booking(bot, ids["a"])).status == "confirmed"
    await bot.send(bot.updates.group_text(DESK_GROUP, LAWYER, "好", reply_to=prompt))
    prompt = bot.fake.last("sendMessage").result
    document = {"file_id": "doc-report-1", "file_unique_id": "u-doc-report-1",
                "file_name": "体检报告.pdf", "mime_type": "application/pdf",
                "file_size": 1000}
    message = bot.updates._message(DESK_GROUP, LAWYER, reply_to=prompt, document=document,
                                   caption="劳动合同需补充<竞业限制>条款")
    await bot.send(bot.updates._update(message=message))
    booking = await _booking(bot, ids["a"])
    assert (booking.status, booking.report) == ("done", "劳动合同需补充<竞业限制>条款")
    await bot.deliver()
    assert any("竞业限制" in text for text in bot.texts(OWNER_A.id))
    assert any(c.params["chat_id"] == OWNER_A.id and c.params["document"] == "doc-report-1"
               for c in bot.fake.calls_to("sendDocument"))
    async with bot.runtime.uow() as uow:
        ticket = await uow.tickets.get(ticket_id)
    assert ticket.status == "resolved"
    # The follow-up survey reaches the contact who booked.
    await _run_until(bot, local("2026-11-25 13:00"))
    survey = bot.fake.messages_in(OWNER_A.id)[-1]
    assert any(b.startswith("sv:") for b in _buttons(survey))
    # It asks about the check-up, not about a problem reported and solved.
    t = bot.runtime.translator("en")
    assert t("Did the check-up help with what you wanted looked at?") in survey["text"]
    assert "竞业限制" in survey["text"] and "problem" not in survey["text"]


async def test_no_show_closes_without_a_survey(bot: BotEnv) -> None:
    ids = await _setup(bot)
    await _slots(bot, "add", "2026-11-25", "09:00-10:00", "60m", "1")
    [slot] = await _all_slots(bot)
    await _book(bot, OWNER_A, slot.id, day="20261125")
    await _press(bot, OWNER_A, "ck:ok")
    await bot.deliver()
    ticket_id = (await _booking(bot, ids["a"])).ticket_id
    await _run_until(bot, local("2026-11-25 10:00"))
    await _press(bot, LAWYER_2, f"bk:ns:{ticket_id}", DESK_GROUP.id)
    await bot.deliver()
    async with bot.runtime.uow() as uow:
        ticket = await uow.tickets.get(ticket_id)
        surveys = list(await uow.surveys.of_ticket(ticket_id))
        pending = list(await uow.tasks.pending(ticket_id=ticket_id))
    assert (ticket.status, ticket.close_reason, ticket.holder_id) == (
        "closed", "no_show", LAWYER_2.id)
    assert surveys == [] and pending == []
    assert (await _booking(bot, ids["a"])).status == "no_show"
    assert any("nobody came" in text for text in bot.texts(OWNER_A.id))


async def test_a_second_copy_of_a_check_up_card_acts_and_is_kept_up_to_date(
        bot: BotEnv) -> None:
    ids = await _setup(bot)
    await _slots(bot, "add", "2026-11-25", "09:00-10:00", "60m", "1")
    [slot] = await _all_slots(bot)
    await _book(bot, OWNER_A, slot.id, day="20261125")
    # The card reaches the desk but the answer is lost: it is sent again, and shows twice.
    bot.fake.fail("sendMessage", chat_id=DESK_GROUP.id, timeout=True, delivered=True)
    await _press(bot, OWNER_A, "ck:ok")
    await bot.deliver()
    bot.clock.advance(timedelta(seconds=5))
    await bot.deliver()
    ticket_id = (await _booking(bot, ids["a"])).ticket_id

    def copies() -> list[dict]:
        return [m for m in bot.fake.messages_in(DESK_GROUP.id)
                if f"bk:pp:{ticket_id}" in " ".join(_buttons(m))
                or "<Acme> a" in m.get("text", "")]

    first, second = copies()
    assert _buttons(first) == _buttons(second) and f"bk:cf:{ticket_id}" in _buttons(first)
    async with bot.runtime.uow() as uow:
        assert (await uow.tickets.get(ticket_id)).card_message_id == second["message_id"]

    # Confirm on the copy the bot never heard of: it confirms the booking, and that copy
    # too stops offering Confirm (not only the card).
    await bot.send(bot.updates.callback(LAWYER, f"bk:cf:{ticket_id}", first))
    assert (await _booking(bot, ids["a"])).status == "confirmed"
    await bot.deliver()
    first, second = copies()
    assert f"bk:cf:{ticket_id}" not in _buttons(first)
    assert _buttons(first) == _buttons(second) and first["text"] == second["text"]

    # Known now: a press on the card brings the copy along too.
    await bot.send(bot.updates.callback(LAWYER, f"bk:as:{ticket_id}", second))
    await bot.deliver()
    first, second = copies()
    assert (await _booking(bot, ids["a"])).lawyer_id == LAWYER.id
    assert LAWYER.first_name in first["text"] and first["text"] == second["text"]
    # A press made up on a message without that button (the desk's note) does not turn the
    # note into a copy of the card.
    note = bot.fake.messages_in(DESK_GROUP.id)[-1]
    await _forge(bot, LAWYER, f"bk:cf:{ticket_id}", DESK_GROUP.id)
    await bot.deliver()
    assert bot.fake.messages_in(DESK_GROUP.id)[-1]["text"] == note["text"]

    # A reply to the copy reaches the enterprise, like one to the card.
    await bot.send(bot.updates.group_text(DESK_GROUP, LAWYER, "请带上劳动合同", reply_to=first))
    await bot.deliver()
    assert bot.texts(OWNER_A.id)[-1].endswith("请带上劳动合同")

    # No-show from the copy, once the slot is over: neither offers the desk's actions.
    await _run_until(bot, local("2026-11-25 10:00"))
    first, second = copies()
    assert f"bk:ns:{ticket_id}" in _buttons(first) and _buttons(first) == _buttons(second)
    await bot.send(bot.updates.callback(LAWYER, f"bk:ns:{ticket_id}", first))
    await bot.deliver()
    assert (await _booking(bot, ids["a"])).status == "no_show"
    first, second = copies()
    assert _buttons(first) == _buttons(second)
    assert not [b for b in _buttons(first) if b.startswith("bk:")]


# -- rules -------------------------------------------------------------------------------------

async def test_minimum_notice_and_the_horizon(bot: BotEnv) -> None:
    ids = await _setup(bot)
    # Now is Monday 09:00: Tuesday 08:00 is inside the 24 hours, Tuesday 10:00 is not.
    await _slots(bot, "add", "2026-11-24", "08:00-09:00")
    await _slots(bot, "add", "2026-11-24", "10:00-11:00")
    too_soon, fine = await _all_slots(bot)
    await bot.send(bot.updates.command(OWNER_B, "/checkup"))
    await _press(bot, OWNER_B, "ck:t:2")
    await _press(bot, OWNER_B, "ck:td")
    # A day is written as everywhere else a person picks one: "11-24 (Tue)" in their language.
    t = bot.runtime.translator("zh_Hans")
    label = day_label(t, date(2026, 11, 24))
    assert label == "11-24 (" + t("Tue") + ")"
    days = _with_button(bot, OWNER_B.id, "ck:d:20261124")["reply_markup"]["inline_keyboard"]
    assert label in [b["text"] for row in days for b in row]
    await _press(bot, OWNER_B, "ck:d:20261124")
    question = bot.fake.messages_in(OWNER_B.id)[-1]["text"]
    assert label in question and "2026-11-24" not in question
    offered = _buttons(bot.fake.messages_in(OWNER_B.id)[-1])
    assert f"ck:s:{fine.id}" in offered and f"ck:s:{too_soon.id}" not in offered
    # Forged: the too-soon slot is refused when booked, with the nearest free time instead.
    await _forge(bot, OWNER_B, f"ck:s:{too_soon.id}", OWNER_B.id)
    await _press(bot, OWNER_B, "ck:ok")
    assert await _booking(bot, ids["b"]) is None
    assert (await _slot(bot, too_soon.id)).booked == 0
    assert f"ck:s:{fine.id}" in _buttons(bot.fake.messages_in(OWNER_B.id)[-1])
    # Past days are never offered: with nothing left, /checkup says so at once.
    bot.clock.advance(timedelta(days=2))
    await bot.send(bot.updates.command(OWNER_B, "/checkup"))
    assert "ck:" not in " ".join(_buttons(bot.fake.messages_in(OWNER_B.id)[-1]))
    assert "/checkup" in bot.last_text(OWNER_B.id)


async def test_full_slot_offers_the_nearest_free_ones(bot: BotEnv) -> None:
    ids = await _setup(bot)
    await _slots(bot, "add", "2026-11-26", "09:00-12:00", "60m", "1")
    first, second, third = await _all_slots(bot)
    await _book(bot, OWNER_A, first.id, day="20261126")
    await _book(bot, OWNER_B, first.id, day="20261126")
    await _press(bot, OWNER_A, "ck:ok")
    await _press(bot, OWNER_B, "ck:ok")
    assert (await _booking(bot, ids["a"])) is not None and await _booking(bot, ids["b"]) is None
    offer = bot.fake.messages_in(OWNER_B.id)[-1]
    t = bot.runtime.translator("zh_Hans")
    assert t("Sorry, the last place at that time has just been taken.") in offer["text"]
    assert {f"ck:s:{second.id}", f"ck:s:{third.id}"} <= set(_buttons(offer))
    await _press(bot, OWNER_B, f"ck:s:{second.id}")
    await _press(bot, OWNER_B, "ck:ok")
    assert (await _booking(bot, ids["b"])).slot_id == second.id


async def test_cancel_and_move_until_the_cut_off(bot: BotEnv) -> None:
    ids = await _setup(bot)
    await _slots(bot, "add", "2026-11-26", "09:00-11:00", "60m", "1")
    first, second = await _all_slots(bot)
    await _book(bot, OWNER_A, first.id, day="20261126")
    await _press(bot, OWNER_A, "ck:ok")
    booking = await _booking(bot, ids["a"])
    # Move: the old place is freed, the new one taken, the desk must confirm again.
    await bot.send(bot.updates.command(OWNER_A, "/checkup"))
    await _press(bot, OWNER_A, "ck:my")
    await _press(bot, OWNER_A, f"ck:b:{booking.id}")
    await _press(bot, OWNER_A, f"ck:r:{booking.id}")
    await _press(bot, OWNER_A, "ck:d:20261126")
    await _press(bot, OWNER_A, f"ck:s:{second.id}")
    await _press(bot, OWNER_A, "ck:ok")
    booking = await _booking(bot, ids["a"])
    assert (booking.slot_id, booking.status) == (second.id, "booked")
    assert ((await _slot(bot, first.id)).booked, (await _slot(bot, second.id)).booked) == (0, 1)
    await bot.deliver()
    assert any("moved" in text or "改" in text for text in bot.texts(DESK_GROUP.id))
    async with bot.runtime.uow() as uow:
        reminders = [t for t in await uow.tasks.pending(ticket_id=booking.ticket_id)
                     if t.kind == "booking_remind"]
    assert {t.payload["slot_id"] for t in reminders} == {second.id}

    # Less than 12 hours before: refused, saying whom to contact.
    bot.clock.set(local("2026-11-25 22:30"))
    await bot.send(bot.updates.command(OWNER_A, "/checkup"))
    await _press(bot, OWNER_A, "ck:my")
    await _press(bot, OWNER_A, f"ck:b:{booking.id}")
    answer = await _press(bot, OWNER_A, f"ck:c:{booking.id}")
    assert answer["show_alert"] is True and "reply to any message" in answer["text"]
    assert (await _booking(bot, ids["a"])).status == "booked"
    # Before it: cancelled, the place is free again, the desk is told.
    bot.clock.set(local("2026-11-25 21:00"))
    await _press(bot, OWNER_A, f"ck:c:{booking.id}")
    await _press(bot, OWNER_A, f"ck:cy:{booking.id}")
    booking = await _booking(bot, ids["a"])
    assert booking.status == "cancelled" and (await _slot(bot, second.id)).booked == 0
    async with bot.runtime.uow() as uow:
        ticket = await uow.tickets.get(booking.ticket_id)
        assert list(await uow.tasks.pending(ticket_id=ticket.id)) == []
    assert ticket.status == "withdrawn"


async def test_reminder_in_quiet_hours_goes_before_they_begin(db, catalogs) -> None:
    from tests.harness import start_bot, stop_bot
    bot = await start_bot(db, catalogs)
    try:
        config = bot.runtime.config
        # 2 hours before 09:00 is 07:00 (quiet): 08:00 still leaves an hour.
        assert bookings.reminder_time(config, local("2026-11-25 07:00"),
                                      local("2026-11-25 09:00")) == local("2026-11-25 08:00")
        # 2 hours before 08:15: 08:00 would be too late; 20:59 the evening before instead.
        assert bookings.reminder_time(config, local("2026-11-25 06:15"),
                                      local("2026-11-25 08:15")) == local("2026-11-24 20:59")
        assert bookings.reminder_time(config, local("2026-11-24 10:00"),
                                      local("2026-11-25 10:00")) == local("2026-11-24 10:00")
    finally:
        await stop_bot(bot)


# -- races and forgeries -----------------------------------------------------------------------

async def test_two_enterprises_race_for_the_last_place(bot: BotEnv) -> None:
    ids = await _setup(bot)
    await _slots(bot, "add", "2026-11-26", "09:00-11:00", "60m", "1")
    first, second = await _all_slots(bot)
    rt = bot.runtime

    async def attempt(user: User, enterprise_id: int):
        async with rt.uow() as uow:
            try:
                change = await bookings.book(uow, rt.clock, rt.config, user_id=user.id,
                                             enterprise_id=enterprise_id,
                                             topics=["contracts"], slot_id=first.id,
                                             language="zh_Hans")
            except BookingRefused as refused:
                return refused
            await uow.commit()
            return change

    results = await asyncio.gather(attempt(OWNER_A, ids["a"]), attempt(OWNER_B, ids["b"]))
    refused = [r for r in results if isinstance(r, BookingRefused)]
    assert len(refused) == 1 and refused[0].problem is Problem.FULL
    assert [s.id for s in refused[0].alternatives] == [second.id]
    assert (await _slot(bot, first.id)).booked == 1


async def test_race_through_the_bot(bot: BotEnv) -> None:
    ids = await _setup(bot)
    await _slots(bot, "add", "2026-11-26", "09:00-11:00", "60m", "1")
    first, _ = await _all_slots(bot)
    await _book(bot, OWNER_A, first.id, day="20261126")
    await _book(bot, OWNER_B, first.id, day="20261126")
    presses = [bot.updates.callback(user, "ck:ok", _with_button(bot, user.id, "ck:ok"))
               for user in (OWNER_A, OWNER_B)]
    await asyncio.gather(*(bot.send(update) for update in presses))
    made = [await _booking(bot, ids[k]) for k in ("a", "b")]
    assert sum(b is not None for b in made) == 1
    assert (await _slot(bot, first.id)).booked == 1


async def test_contact_of_one_enterprise_cannot_touch_another_s_booking(bot: BotEnv) -> None:
    ids = await _setup(bot)
    await _slots(bot, "add", "2026-11-26", "09:00-11:00", "60m", "1")
    first, second = await _all_slots(bot)
    await _book(bot, OWNER_A, first.id, day="20261126")
    await _press(bot, OWNER_A, "ck:ok")
    booking = await _booking(bot, ids["a"])
    await bot.send(bot.updates.command(OWNER_B, "/checkup"))
    for data in (f"ck:cy:{booking.id}", f"ck:c:{booking.id}", f"ck:b:{booking.id}",
                 f"ck:r:{booking.id}", f"ck:pa:{booking.id}:{second.id}", f"ck:e:{ids['a']}"):
        answer = await _forge(bot, OWNER_B, data, OWNER_B.id)
        assert answer["show_alert"] is True, data
    assert (await _booking(bot, ids["a"])).status == "booked"
    assert (await _slot(bot, first.id)).booked == 1
    # Desk buttons pressed in a private chat, or with malformed data, do nothing.
    answer = await _forge(bot, OWNER_B, f"bk:cf:{booking.ticket_id}", OWNER_B.id)
    assert answer["show_alert"] is True
    await bot.deliver()
    answer = await _forge(bot, LAWYER, "bk:cf:x", DESK_GROUP.id)
    assert answer["show_alert"] is True
    assert (await _booking(bot, ids["a"])).status == "booked"


# -- one place per enterprise, and nowhere to book ---------------------------------------------

async def _add_colleague(bot: BotEnv, enterprise_id: int, user: User) -> None:
    async with bot.runtime.uow() as uow:
        uow.session.add(EnterpriseContact(enterprise_id=enterprise_id, user_id=user.id,
                                          name=user.first_name, phone="13900001111",
                                          role="contact", added_at=bot.clock.now()))
        await uow.commit()


async def _active_bookings(bot: BotEnv, enterprise_id: int) -> list[Booking]:
    async with bot.runtime.uow() as uow:
        return [b for b, _ in await uow.bookings.of_enterprises([enterprise_id])
                if b.status in ("booked", "confirmed")]


async def test_an_enterprise_takes_one_place_per_slot(bot: BotEnv) -> None:
    ids = await _setup(bot)
    await _add_colleague(bot, ids["a"], COLLEAGUE_A)
    await _slots(bot, "add", "2026-11-26", "09:00-11:00", "60m", "2")
    first, second = await _all_slots(bot)
    await _book(bot, OWNER_A, first.id, day="20261126")
    await _press(bot, OWNER_A, "ck:ok")
    [held] = await _active_bookings(bot, ids["a"])

    # The colleague is not offered the slot the enterprise holds …
    await bot.send(bot.updates.command(COLLEAGUE_A, "/checkup"))
    await _press(bot, COLLEAGUE_A, "ck:t:0")
    await _press(bot, COLLEAGUE_A, "ck:td")
    await _press(bot, COLLEAGUE_A, "ck:d:20261126")
    offered = _buttons(bot.fake.messages_in(COLLEAGUE_A.id)[-1])
    assert f"ck:s:{second.id}" in offered and f"ck:s:{first.id}" not in offered
    # … and taking it anyway (an old or forged button) is refused, saying why.
    await _forge(bot, COLLEAGUE_A, f"ck:s:{first.id}", COLLEAGUE_A.id)
    await _press(bot, COLLEAGUE_A, "ck:ok")
    async with bot.runtime.uow() as uow:
        number = (await uow.tickets.get(held.ticket_id)).number
    t = bot.runtime.translator("zh_Hans")
    text = bot.fake.messages_in(COLLEAGUE_A.id)[-1]["text"]
    assert text.startswith(html.unescape(t(
        "<b>{name}</b> already has a place at that time (No. {number}). Each enterprise "
        "takes one place per time, so that the others stay free for other enterprises. "
        "Please choose another time.", name="<Acme> a", number=number).replace(
            "<b>", "").replace("</b>", "")))
    assert f"ck:s:{second.id}" in _buttons(bot.fake.messages_in(COLLEAGUE_A.id)[-1])
    assert len(await _active_bookings(bot, ids["a"])) == 1
    assert (await _slot(bot, first.id)).booked == 1

    # Both contacts confirm the same slot at the same moment: one place for the enterprise.
    await _book(bot, OWNER_A, second.id, day="20261126")
    await _forge(bot, COLLEAGUE_A, f"ck:s:{second.id}", COLLEAGUE_A.id)
    presses = [bot.updates.callback(user, "ck:ok", _with_button(bot, user.id, "ck:ok"))
               for user in (OWNER_A, COLLEAGUE_A)]
    await asyncio.gather(*(bot.send(update) for update in presses))
    assert sorted(b.slot_id for b in await _active_bookings(bot, ids["a"])) == sorted(
        [first.id, second.id])
    assert (await _slot(bot, second.id)).booked == 1
    # The other enterprise still finds the second place of each slot.
    await _book(bot, OWNER_B, first.id, day="20261126")
    await _press(bot, OWNER_B, "ck:ok")
    assert (await _slot(bot, first.id)).booked == 2

    # Neither a move nor the desk's proposal puts a booking where the enterprise is already.
    rt = bot.runtime
    async with rt.uow() as uow:
        with pytest.raises(BookingRefused) as refused:
            await bookings.reschedule(uow, rt.clock, rt.config, held.id, COLLEAGUE_A.id,
                                      second.id)
        assert refused.value.problem is Problem.HELD
        _, _, proposable = await bookings.proposable(uow, rt.config, held.ticket_id,
                                                     rt.clock.now())
        assert second.id not in [s.id for s in proposable]
        with pytest.raises(BookingRefused) as refused:
            await bookings.propose(uow, rt.clock, held.ticket_id, LAWYER.id, "律师甲",
                                   second.id)
        assert refused.value.problem is Problem.HELD


async def test_a_second_place_for_an_enterprise_is_refused_by_the_database(
        bot: BotEnv) -> None:
    """The rule holds below the service too: two transactions that both found the slot free
    for the enterprise cannot both commit a place (a unique index on active bookings)."""
    ids = await _setup(bot)
    await _slots(bot, "add", "2026-11-26", "09:00-10:00", "60m", "2")
    [slot] = await _all_slots(bot)
    for user in (OWNER_A, OWNER_B):
        await _book(bot, user, slot.id, day="20261126")
        await _press(bot, user, "ck:ok")
    [other] = await _active_bookings(bot, ids["b"])
    async with bot.runtime.uow() as uow:
        with pytest.raises(IntegrityError):
            await uow.session.execute(update(Booking).where(Booking.id == other.id)
                                      .values(enterprise_id=ids["a"]))
    # A cancelled booking does not count: the enterprise may book that slot again.
    async with bot.runtime.uow() as uow:
        await uow.session.execute(update(Booking).where(Booking.id == other.id)
                                  .values(enterprise_id=ids["a"], status="cancelled"))
        await uow.commit()


async def test_no_free_place_tells_the_desk_that_the_enterprise_waits(bot: BotEnv) -> None:
    ids = await _setup(bot)
    t = bot.runtime.translator("zh_Hans")
    desk_before = len(bot.texts(DESK_GROUP.id))
    await bot.send(bot.updates.command(OWNER_B, "/checkup"))
    told = t("There is no free check-up place in the next {days} days. The legal desk has "
             "been told that <b>{name}</b> is waiting for one; please send /checkup again in "
             "a few days.", days=30, name="\0").replace("<b>", "").replace("</b>", "")
    assert bot.last_text(OWNER_B.id) == told.replace("\0", "<Acme> b")
    await bot.deliver()
    notices = bot.texts(DESK_GROUP.id)[desk_before:]
    assert len(notices) == 1 and "<Acme> b" in notices[0] and "/slots add" in notices[0]

    # Trying again the same day: the contact hears the same, the desk is not told again.
    bot.clock.advance(timedelta(hours=5))
    await bot.send(bot.updates.command(OWNER_B, "/checkup"))
    await bot.deliver()
    assert bot.last_text(OWNER_B.id) == told.replace("\0", "<Acme> b")
    assert len(bot.texts(DESK_GROUP.id)) == desk_before + 1
    # A day later it is news again; another enterprise is news at once.
    bot.clock.advance(bookings.WAITING_NOTICE_EVERY)
    await bot.send(bot.updates.command(OWNER_B, "/checkup"))
    await bot.send(bot.updates.command(OWNER_A, "/checkup"))
    await bot.deliver()
    assert len(bot.texts(DESK_GROUP.id)) == desk_before + 3
    assert "<Acme> a" in bot.texts(DESK_GROUP.id)[-1]
    async with bot.runtime.uow() as uow:
        assert await uow.drafts.any_of(OWNER_B.id) is None

    # A contact of two enterprises hears it once they have chosen one.
    await _add_colleague(bot, ids["a"], OWNER_B)
    await bot.send(bot.updates.command(OWNER_B, "/checkup"))
    await _press(bot, OWNER_B, f"ck:e:{ids['a']}")
    assert bot.fake.messages_in(OWNER_B.id)[-1]["text"] == told.replace("\0", "<Acme> a")
    async with bot.runtime.uow() as uow:
        assert await uow.drafts.any_of(OWNER_B.id) is None
    # Once slots are open, the same contact books as usual.
    await _slots(bot, "add", "2026-11-27", "09:00-10:00")
    await bot.send(bot.updates.command(OWNER_B, "/checkup"))
    await _press(bot, OWNER_B, f"ck:e:{ids['a']}")
    assert "ck:t:0" in _buttons(bot.fake.messages_in(OWNER_B.id)[-1])


async def test_with_no_desk_group_nobody_is_said_to_be_told(bot: BotEnv) -> None:
    """No group for the desk nor above it: the contact is not told that the desk knows, and
    the desk hears of the enterprise at the first try after a group is bound, not a day
    later."""
    await _setup(bot, bind=False)
    t = bot.runtime.translator("zh_Hans")
    await bot.send(bot.updates.command(OWNER_B, "/checkup"))
    assert bot.last_text(OWNER_B.id) == t(
        "There is no free check-up place in the next {days} days. Please send /checkup again "
        "in a few days.", days=30)
    await bot.deliver()
    await bot.send(bot.updates.command(DESK_GROUP, "/bind", "legal", user=ADMIN))
    desk_before = len(bot.texts(DESK_GROUP.id))
    bot.clock.advance(timedelta(hours=1))
    await bot.send(bot.updates.command(OWNER_B, "/checkup"))
    await bot.deliver()
    assert "<Acme> b" in bot.last_text(OWNER_B.id)
    notices = bot.texts(DESK_GROUP.id)[desk_before:]
    assert len(notices) == 1 and "<Acme> b" in notices[0] and "/slots add" in notices[0]


async def test_a_check_up_card_names_the_enterprise_once_and_its_booking_status(
        bot: BotEnv) -> None:
    ids = await _setup(bot)
    await _slots(bot, "add", "2026-11-26", "09:00-10:00", "60m", "1")
    [slot] = await _all_slots(bot)
    await _book(bot, OWNER_B, slot.id, day="20261126")
    await _press(bot, OWNER_B, "ck:ok")
    await bot.deliver()
    ticket_id = (await _booking(bot, ids["b"])).ticket_id
    await _press(bot, LAWYER, f"bk:cf:{ticket_id}", DESK_GROUP.id)
    await bot.deliver()
    t = bot.runtime.translator("zh_Hans")
    card = _with_button(bot, DESK_GROUP.id, f"bk:as:{ticket_id}")["text"]
    assert card.count("<Acme> b") == 1
    assert t("Booking: {status}", status=t("Confirmed")) in card
    assert t("Waiting to be claimed") not in card

    # The contact's reply reaches the desk as the enterprise's contact, not as a resident.
    told = next(m for m in reversed(bot.fake.messages_in(OWNER_B.id)) if "ck:" not in str(
        m.get("reply_markup")) and m["from"]["is_bot"])
    await bot.send(bot.updates.private_text(OWNER_B, "我们九点到", reply_to=told))
    await bot.deliver()
    async with bot.runtime.uow() as uow:
        number = (await uow.tickets.get(ticket_id)).number
    relayed = bot.texts(DESK_GROUP.id)[-1]
    header = t("<b>No. {number}</b> · enterprise contact {name}:", number=number,
               name=OWNER_B.first_name).replace("<b>", "").replace("</b>", "")
    assert relayed.startswith(header) and t("Resident") not in relayed


async def test_the_last_place_going_while_choosing_topics_and_a_move_with_nowhere_to_go(
        bot: BotEnv) -> None:
    ids = await _setup(bot)
    await _slots(bot, "add", "2026-11-26", "09:00-10:00")
    [slot] = await _all_slots(bot)
    await bot.send(bot.updates.command(OWNER_B, "/checkup"))
    await _press(bot, OWNER_B, "ck:t:0")
    await _book(bot, OWNER_A, slot.id, day="20261126")
    await _press(bot, OWNER_A, "ck:ok")
    # B's Done finds nothing left: the same answer as at the start, and the desk is told.
    await _press(bot, OWNER_B, "ck:td")
    assert "<Acme> b" in bot.fake.messages_in(OWNER_B.id)[-1]["text"]
    assert "ck:d:" not in " ".join(_buttons(bot.fake.messages_in(OWNER_B.id)[-1]))
    await bot.deliver()
    assert "<Acme> b" in bot.texts(DESK_GROUP.id)[-1]
    # A, whose check-up is to come, is not "waiting": shown the way to it, the desk not told.
    desk_messages = len(bot.texts(DESK_GROUP.id))
    booking = await _booking(bot, ids["a"])
    await bot.send(bot.updates.command(OWNER_A, "/checkup"))
    await bot.deliver()
    t = bot.runtime.translator("en")
    assert bot.last_text(OWNER_A.id) == t(
        "There is no other free check-up place in the next {days} days. The check-up "
        "<b>{name}</b> has booked is under My bookings.", days=30, name="\0").replace(
            "<b>", "").replace("</b>", "").replace("\0", "<Acme> a")
    assert len(bot.texts(DESK_GROUP.id)) == desk_messages
    # A wants to move, and no other time is free: the booking stays as it is.
    await _press(bot, OWNER_A, "ck:my")
    await _press(bot, OWNER_A, f"ck:b:{booking.id}")
    await _press(bot, OWNER_A, f"ck:r:{booking.id}")
    assert bot.fake.messages_in(OWNER_A.id)[-1]["text"] == t(
        "There is no other free time in the next {days} days; your check-up keeps its time.",
        days=30)
    assert (await _booking(bot, ids["a"])).slot_id == slot.id
