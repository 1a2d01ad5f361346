"""What residents type outside any conversation, through the real Application on SQLite and
PostgreSQL: never "not understood"; offered to be reported (the words become the description,
kept in a draft so a button still works after a restart) or passed on to the staff of an open
ticket; a reply to any message of the bot that names a ticket reaches its staff."""

from __future__ import annotations

from datetime import timedelta

from bot.sandbox.apispec import html_visible_text
from bot.services import tickets
from handlers import booking
from storage.models import Draft
from tests.harness import BotEnv, start_bot, stop_bot
from tests.test_relay import (
    GROUP,
    NEIGHBOUR,
    RESIDENT,
    WORKER,
    bind,
    card_of,
    events,
    open_ticket,
    pending_rows,
    ticket_of,
    to_chat,
)
from tests.test_report_flow import INSIDE, PHONE

PARKING = "你好，我家楼下有人乱停车，已经堵了好几天"
NOT_UNDERSTOOD = "I did not understand that. Please choose from the menu below."


def _buttons(call) -> list[str]:
    markup = call.params.get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row
            if "callback_data" in b]


def _last_to(bot: BotEnv, user):
    return [c for c in bot.fake.calls if c.params.get("chat_id") == user.id
            and c.method == "sendMessage"][-1]


async def _press(bot: BotEnv, user, prefix: str, call=None) -> None:
    call = call or _last_to(bot, user)
    data = next(d for d in _buttons(call) if d.startswith(prefix))
    await bot.send(bot.updates.callback(user, data, call.result))


async def _draft(bot: BotEnv, user, flow: str) -> Draft | None:
    async with bot.runtime.uow() as uow:
        return await uow.drafts.get(user.id, flow)


async def test_free_text_is_offered_as_a_report_that_survives_a_restart(db, catalogs) -> None:
    first = await start_bot(db, catalogs)
    t = first.runtime.translator("zh_Hans")
    await first.send(first.updates.private_text(RESIDENT, PARKING))
    offer = _last_to(first, RESIDENT)
    assert offer.params["text"] != t(NOT_UNDERSTOOD)
    assert offer.params["text"] == t(
        "Shall I report this as a problem? What you wrote becomes its description; you then "
        "choose what it is about and where it is.")
    buttons = _buttons(offer)
    assert buttons[0].startswith("ft:r:") and buttons[-1].startswith("ft:x:")
    assert all(len(b.encode()) <= 64 and "乱停车" not in b for b in buttons)
    await stop_bot(first)
    assert first.errors == []

    # After a restart the button still finds the words: they are in the database.
    second = await start_bot(db, catalogs, fake=first.fake, first_update_id=1000)
    await _press(second, RESIDENT, "ft:r:", offer)
    question = _last_to(second, RESIDENT)
    assert "rp:cat:sanitation" in _buttons(question)
    assert "乱停车" in question.params["text"]
    # The description is not asked for, so it is not counted: 4 questions, none skipped.
    step = "Step {step} of {total}"
    assert t(step, step=1, total=4) in question.params["text"]
    assert second.fake.last("editMessageReplyMarkup").params["message_id"] == \
        offer.result["message_id"]  # the offer is answered: its buttons go
    assert await _draft(second, RESIDENT, "freetext") is None
    await _press(second, RESIDENT, "rp:cat:sanitation")
    report = await _draft(second, RESIDENT, "report")
    # Not asked again: on to the photos.
    assert report.step == "media" and report.data["description"] == PARKING
    assert "rp:skip:media" in _buttons(_last_to(second, RESIDENT))
    assert t(step, step=2, total=4) in _last_to(second, RESIDENT).params["text"]
    # The old offer cannot start another report.
    await second.send(second.updates.callback(RESIDENT, offer.params["reply_markup"]
                                              ["inline_keyboard"][0][0]["callback_data"],
                                              offer.result))
    assert second.fake.last("answerCallbackQuery").params["text"] == t(
        "This offer has been answered or has expired: see the answer above, or write again.")
    assert (await _draft(second, RESIDENT, "report")).step == "media"
    await stop_bot(second)
    second.fake.assert_no_violations()
    assert second.errors == []


def _guidance(t) -> str:
    return t("🚨 <b>If anyone is in danger, call now:</b>\n"
             "110 — police\n119 — fire\n120 — ambulance\n\n"
             "Your report will be marked urgent, but it does not replace an emergency call.")


async def test_words_of_danger_get_the_emergency_numbers_before_the_offer(bot: BotEnv) -> None:
    """Not after two taps: at once, above whatever the words get (the menu for a cry too
    short to report, the offer for a description), and the report made of them is urgent."""
    await bind(bot, GROUP)
    t = bot.runtime.translator("zh_Hans")
    sent = len(bot.fake.calls_to("sendMessage"))
    await bot.send(bot.updates.private_text(RESIDENT, "着火了！快来人"))  # under 10 characters
    [menu] = bot.fake.calls_to("sendMessage")[sent:]  # the guidance above, in one message
    assert menu.params["text"].startswith(_guidance(t) + "\n\n")
    assert "rp:new" in _buttons(menu)
    await bot.send(bot.updates.command(RESIDENT, "/cancel"))

    sent = len(bot.fake.calls_to("sendMessage"))
    await bot.send(bot.updates.private_text(RESIDENT, "三楼楼道里起火了，浓烟很大，快来人帮忙"))
    [offer] = bot.fake.calls_to("sendMessage")[sent:]
    assert offer.params["text"].startswith(_guidance(t) + "\n\n")
    assert _buttons(offer)[0].startswith("ft:r:")
    # Harmless words get no alarm.
    sent = len(bot.fake.calls_to("sendMessage"))
    await bot.send(bot.updates.private_text(NEIGHBOUR, "我要打人工客服，电话一直打不通"))
    [offer_to_neighbour] = bot.fake.calls_to("sendMessage")[sent:]
    assert "110" not in offer_to_neighbour.params["text"]

    await _press(bot, RESIDENT, "ft:r:", offer)
    await _press(bot, RESIDENT, "rp:cat:sanitation")
    assert (await _draft(bot, RESIDENT, "report")).data["urgent"] is True
    # Shown once: the offer had it.
    assert sum(text.startswith(html_visible_text(_guidance(t)))
               for text in bot.fake.sent_texts(RESIDENT.id)) == 2
    await _press(bot, RESIDENT, "rp:skip:media")
    await bot.send(bot.updates.location(RESIDENT, *INSIDE))
    await bot.send(bot.updates.contact(RESIDENT, PHONE))
    await _press(bot, RESIDENT, "rp:submit")
    async with bot.runtime.uow() as uow:
        [ticket] = await uow.tickets.of_resident(RESIDENT.id, offset=0, limit=5)
    assert ticket.urgent


async def test_a_greeting_gets_the_menu_and_is_joined_to_what_follows(bot: BotEnv) -> None:
    t = bot.runtime.translator("zh_Hans")
    await bot.send(bot.updates.private_text(RESIDENT, "你好"))
    greeting = _last_to(bot, RESIDENT)
    assert greeting.params["text"] == t(
        "Hello! To report a problem, describe it in a sentence or two (at least {min} "
        "characters) and I will offer to send it, or choose from the menu.", min=10)
    assert "rp:new" in _buttons(greeting)
    await bot.send(bot.updates.private_text(RESIDENT, "楼下有人乱停车"))
    assert _buttons(_last_to(bot, RESIDENT))[0].startswith("ft:r:")
    assert (await _draft(bot, RESIDENT, "freetext")).data["text"] == "你好\n楼下有人乱停车"
    await bot.send(bot.updates.command(RESIDENT, "/cancel"))
    assert bot.last_text(RESIDENT.id) == t("OK, nothing was sent.")
    assert await _draft(bot, RESIDENT, "freetext") is None


async def test_with_open_tickets_the_text_can_go_to_their_staff(bot: BotEnv) -> None:
    await bind(bot, GROUP)
    ticket_id = await open_ticket(bot)
    ticket = await ticket_of(bot, ticket_id)
    t = bot.runtime.translator("zh_Hans")
    await bot.send(bot.updates.private_text(RESIDENT, "师傅，今天下午家里有人"))
    offer = _last_to(bot, RESIDENT)
    assert any(b.endswith(f":{ticket_id}") for b in _buttons(offer))
    await _press(bot, RESIDENT, "ft:s:", offer)
    assert bot.last_text(RESIDENT.id) == t("Sent to the staff handling No. {number}.",
                                           number=ticket.number)
    await bot.deliver()
    before = await pending_rows(bot)
    relayed = to_chat(bot, "sendMessage", GROUP.id)[-1]
    assert relayed.params["text"].endswith("师傅，今天下午家里有人")
    assert relayed.params["reply_parameters"]["message_id"] == ticket.card_message_id
    assert [e.data["text"] for e in await events(bot, ticket_id, "resident_message")] == [
        "师傅，今天下午家里有人"]
    # Pressed again (a double tap, an old message): nothing goes twice.
    send = next(b for b in _buttons(offer) if b.startswith("ft:s:"))
    await bot.send(bot.updates.callback(RESIDENT, send, offer.result))
    assert bot.fake.last("answerCallbackQuery").params["text"] == t(
        "This offer has been answered or has expired: see the answer above, or write again.")
    assert await pending_rows(bot) == before
    assert len(await events(bot, ticket_id, "resident_message")) == 1


async def _report(bot: BotEnv, description: str):
    """A report made in the chat; the message that says it is registered."""
    await bot.send(bot.updates.command(RESIDENT, "/report"))
    await _press(bot, RESIDENT, "rp:cat:sanitation")
    await bot.send(bot.updates.private_text(RESIDENT, description))
    await _press(bot, RESIDENT, "rp:skip:media")
    await bot.send(bot.updates.location(RESIDENT, *INSIDE))
    await bot.send(bot.updates.contact(RESIDENT, PHONE))
    await _press(bot, RESIDENT, "rp:submit")
    return _last_to(bot, RESIDENT)


async def test_a_reply_to_the_registration_reaches_the_staff(bot: BotEnv) -> None:
    await bind(bot, GROUP)
    t = bot.runtime.translator("zh_Hans")
    registered = await _report(bot, "楼道里堆满了垃圾，已经一周没人清理了")
    async with bot.runtime.uow() as uow:
        [ticket] = await uow.tickets.of_resident(RESIDENT.id, offset=0, limit=5)
    assert ticket.number in registered.params["text"]
    await bot.deliver()

    await bot.send(bot.updates.private_text(RESIDENT, "补充：垃圾在三楼楼梯口",
                                            reply_to=registered.result))
    assert bot.last_text(RESIDENT.id) == t("Sent to the staff handling No. {number}.",
                                           number=ticket.number)
    await bot.deliver()
    assert to_chat(bot, "sendMessage", GROUP.id)[-1].params["text"].endswith(
        "补充：垃圾在三楼楼梯口")

    # Once it is over, a reply says so and offers to report the same words anew.
    rt = bot.runtime
    async with rt.uow() as uow:
        await tickets.withdraw(uow, rt.clock, ticket.id, RESIDENT.id, "已解决")
        await uow.commit()
    await bot.send(bot.updates.private_text(RESIDENT, "垃圾又堆起来了，请再来看看",
                                            reply_to=registered.result))
    closed = _last_to(bot, RESIDENT)
    assert closed.params["text"] == t(
        "No. {number} is no longer open ({status}), so your message was not passed on. If "
        "the problem is still there, please make a new report from the menu.",
        number=ticket.number, status=t("Withdrawn by the resident"))
    await _press(bot, RESIDENT, "ft:r:", closed)
    await _press(bot, RESIDENT, "rp:cat:sanitation")
    assert (await _draft(bot, RESIDENT, "report")).data["description"] == \
        "垃圾又堆起来了，请再来看看"


async def test_a_reply_to_an_old_registration_during_a_new_report_answers_the_report(
        bot: BotEnv) -> None:
    """A reply swiped onto the nearest message while a new report asks a question is the
    report's answer, not a message for the old ticket's staff."""
    await bind(bot, GROUP)
    registered = await _report(bot, "楼道里堆满了垃圾，已经一周没人清理了")
    async with bot.runtime.uow() as uow:
        [ticket] = await uow.tickets.of_resident(RESIDENT.id, offset=0, limit=5)
    assert ticket.number in registered.params["text"]
    await bot.deliver()
    before = await pending_rows(bot)
    await bot.send(bot.updates.command(RESIDENT, "/report"))
    await _press(bot, RESIDENT, "rp:cat:sanitation")
    lamp = "二楼楼道的灯坏了，晚上一片漆黑"
    await bot.send(bot.updates.private_text(RESIDENT, lamp, reply_to=registered.result))
    report = await _draft(bot, RESIDENT, "report")
    assert report.step == "media" and report.data["description"] == lamp
    assert await pending_rows(bot) == before
    assert await events(bot, ticket.id, "resident_message") == []

    # The same for any message of the bot that names the ticket without being remembered
    # with it.
    await bot.send(bot.updates.command(RESIDENT, "/cancel"))
    await bot.send(bot.updates.command(RESIDENT, "/report"))
    await _press(bot, RESIDENT, "rp:cat:sanitation")
    naming = {**_last_to(bot, RESIDENT).result, "text": f"No. {ticket.number}"}
    await bot.send(bot.updates.private_text(RESIDENT, lamp, reply_to=naming))
    assert (await _draft(bot, RESIDENT, "report")).step == "media"
    assert await events(bot, ticket.id, "resident_message") == []

    # A reply to a worker's relayed message is a conversation, form or not.
    await bot.send(bot.updates.group_text(GROUP, WORKER, "灯是哪一层的？",
                                          reply_to=await card_of(bot, ticket.id)))
    await bot.deliver()
    relayed = to_chat(bot, "sendMessage", RESIDENT.id)[-1]
    await bot.send(bot.updates.private_text(RESIDENT, "是二楼的", reply_to=relayed.result))
    assert [e.data["text"] for e in await events(bot, ticket.id, "resident_message")] == [
        "是二楼的"]
    assert (await _draft(bot, RESIDENT, "report")).step == "media"


async def test_someone_elses_ticket_number_is_no_way_in(bot: BotEnv) -> None:
    """A reply to a message of the bot passes on only to a ticket of the person's own."""
    await bind(bot, GROUP)
    ticket_id = await open_ticket(bot)
    ticket = await ticket_of(bot, ticket_id)
    await bot.send(bot.updates.private_text(NEIGHBOUR, "hello"))
    greeting = _last_to(bot, NEIGHBOUR).result
    forged = {**greeting, "text": f"No. {ticket.number}"}
    before = await pending_rows(bot)
    await bot.send(bot.updates.private_text(NEIGHBOUR, "Let me in on this one please",
                                            reply_to=forged))
    assert await pending_rows(bot) == before
    assert await events(bot, ticket_id, "resident_message") == []
    # Taken as words of their own instead, with no way to the other person's ticket.
    offer = _buttons(_last_to(bot, NEIGHBOUR))
    assert offer[0].startswith("ft:r:") and not any(b.startswith("ft:s:") for b in offer)


async def test_another_conversation_keeps_its_draft(bot: BotEnv) -> None:
    """Text that another conversation's handler let through (a check-up booking does not
    take replies) is not taken from it: the person is told how to go on."""
    t = bot.runtime.translator("zh_Hans")
    await bot.send(bot.updates.command(RESIDENT, "/start"))
    welcome = _last_to(bot, RESIDENT).result
    rt = bot.runtime
    async with rt.uow() as uow:
        await uow.drafts.start(RESIDENT.id, booking.FLOW, "day", {}, rt.clock.now())
        await uow.commit()
    await bot.send(bot.updates.private_text(RESIDENT, PARKING, reply_to=welcome))
    assert bot.last_text(RESIDENT.id) == t(
        "You are in the middle of something: please answer the last question above, or send "
        "/cancel to stop it.")
    assert await _draft(bot, RESIDENT, booking.FLOW) is not None
    assert await _draft(bot, RESIDENT, "freetext") is None


async def test_kept_words_expire_without_a_reminder(bot: BotEnv) -> None:
    """Nothing was begun, so there is nothing to remind of or to announce when the words
    are dropped."""
    await bot.send(bot.updates.private_text(RESIDENT, PARKING))
    said = len(bot.texts(RESIDENT.id))
    for _ in range(4):
        bot.clock.advance(timedelta(hours=12))
        await bot.tick()
    await bot.deliver()
    assert await _draft(bot, RESIDENT, "freetext") is None
    assert len(bot.texts(RESIDENT.id)) == said
