"""My tickets through the real Application, on SQLite and PostgreSQL: the paged list, the
detail with its history in plain words, adding information, withdrawing with a reason, and
forged buttons; the drafts never take messages that belong to other flows."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.actions.notifier import Notifier
from bot.services import tickets
from bot.services.tickets import NewReport
from bot.views.cards import STATUS_LABELS
from storage.models import Draft
from tests.harness import BotEnv
from tests.telegram_fake import Chat
from tests.test_relay import (
    GROUP,
    NEIGHBOUR,
    RESIDENT,
    STRANGER,
    WORKER,
    bind,
    card_of,
    deliver,
    events,
    media,
    open_ticket,
    pending_rows,
    ticket_of,
    to_chat,
)


def _buttons(call) -> list[str]:
    markup = call.params.get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row
            if "callback_data" in b]


def _t(bot: BotEnv, language: str = "zh_Hans"):
    return bot.runtime.translator(language)


async def _press(bot: BotEnv, user, data: str, message=None):
    """Press a button of `message` (by default the last message the bot sent the user)."""
    if message is None:
        message = [c for c in bot.fake.calls if c.params.get("chat_id") == user.id
                   and c.method == "sendMessage"][-1].result
    await bot.send(bot.updates.callback(user, data, message))
    # What the press showed: the press's own answer goes beside it (handlers.reply).
    return [c for c in bot.fake.calls if c.method != "answerCallbackQuery"][-1]


async def _alerted(bot: BotEnv, language: str = "zh_Hans") -> bool:
    call = bot.fake.last("answerCallbackQuery")
    return call.params.get("show_alert") is True and call.params.get("text") == _t(
        bot, language)("This button is no longer valid.")


async def test_the_list_pages_five_at_a_time_newest_first(bot: BotEnv) -> None:
    await bind(bot, GROUP)
    ids = [await open_ticket(bot) for _ in range(6)]
    ids.append(await open_ticket(bot, STRANGER, co_reporters=(RESIDENT,)))
    numbers = {i: (await ticket_of(bot, i)).number for i in ids}
    bot.fake.clear()

    await bot.send(bot.updates.command(RESIDENT, "/mytickets"))
    first = bot.fake.last("sendMessage")
    newest = list(reversed(ids))
    assert _buttons(first) == [f"my:t:{i}" for i in newest[:5]] + ["my:page:1"]
    t = _t(bot)
    assert t("<b>My tickets</b> · page {page} of {pages}", page=1, pages=2) in (
        first.params["text"])
    assert numbers[newest[0]] in first.params["text"]
    assert t(STATUS_LABELS["open"]) in first.params["text"]

    edit = await _press(bot, RESIDENT, "my:page:1", first.result)
    assert edit.method == "editMessageText"
    assert _buttons(edit) == [f"my:t:{i}" for i in newest[5:]] + ["my:page:0"]

    # The main menu's entry opens the list as a new message.
    await _press(bot, RESIDENT, "my:list", first.result)
    assert bot.fake.last("sendMessage").params["text"] == first.params["text"]

    for forged in ("my:page:2", "my:page:99", "my:bogus", "my:t:x"):
        await _press(bot, RESIDENT, forged, first.result)
        assert await _alerted(bot), forged


async def test_someone_without_tickets_is_told_how_to_report(bot: BotEnv) -> None:
    await bot.send(bot.updates.command(STRANGER, "/mytickets"))
    assert bot.last_text(STRANGER.id) == _t(bot)(
        "You have no tickets yet. To report an issue, open the main menu with /start.")


async def test_the_detail_tells_the_history_in_plain_words(bot: BotEnv) -> None:
    await bind(bot, GROUP)
    ticket_id = await open_ticket(bot)
    card = await card_of(bot, ticket_id)
    rt = bot.runtime
    async with rt.uow() as uow:
        await tickets.claim(uow, rt.clock, ticket_id, WORKER.id, "小<b>王</b>")
        await tickets.start(uow, rt.clock, ticket_id, WORKER.id)
        await uow.commit()
    rt.clock.advance(timedelta(hours=2))
    await bot.send(bot.updates.group_text(GROUP, WORKER, "明天 <上门>", reply_to=card))
    await deliver(bot)
    relayed = to_chat(bot, "sendMessage", RESIDENT.id)[-1].result
    await bot.send(bot.updates.private_text(RESIDENT, "好的 & 谢谢", reply_to=relayed))
    await deliver(bot)

    await bot.send(bot.updates.command(RESIDENT, "/mytickets"))
    detail = await _press(bot, RESIDENT, f"my:t:{ticket_id}")
    assert detail.method == "editMessageText"
    text = detail.params["text"]
    t = _t(bot)
    ticket = await ticket_of(bot, ticket_id)
    for piece in (ticket.number, t("Status: {status}", status=t(STATUS_LABELS["in_progress"])),
                  "东湖一社区第1网格", "&lt;script&gt;&amp;", t("Reported."),
                  t("Claimed by a worker."), t("Work started."),
                  t("Worker: {message}", message="明天 &lt;上门&gt;"),
                  t("You: {message}", message="好的 &amp; 谢谢"), "11-23 11:00"):
        assert piece in text, piece
    assert "小" not in text.split(t("<b>History</b>"))[1]  # workers by role, never by name
    assert "wang_account" not in text
    assert _buttons(detail) == [f"my:add:{ticket_id}", f"my:wd:{ticket_id}", "my:page:0"]


async def test_adding_information_reaches_the_group(bot: BotEnv) -> None:
    await bind(bot, GROUP)
    ticket_id = await open_ticket(bot)
    ticket = await ticket_of(bot, ticket_id)
    card = await card_of(bot, ticket_id)
    await bot.send(bot.updates.command(RESIDENT, "/mytickets"))
    await _press(bot, RESIDENT, f"my:t:{ticket_id}")
    detail = bot.fake.last("editMessageText").result
    await _press(bot, RESIDENT, f"my:add:{ticket_id}", detail)
    t = _t(bot)
    prompt = t("Send what you want to add to No. {number}: a text, a photo, a video, a "
               "document or a voice message. Send /cancel to stop.", number=ticket.number)
    assert bot.last_text(RESIDENT.id) == prompt

    # Wrong kind: explained, and the same question again.
    await bot.send(media(bot, Chat.private(RESIDENT), RESIDENT, "location"))
    assert bot.last_text(RESIDENT.id).endswith(prompt)
    before = await pending_rows(bot)
    assert before == 0

    await bot.send(media(bot, Chat.private(RESIDENT), RESIDENT, "photo", caption="新照片"))
    assert bot.last_text(RESIDENT.id) == t(
        "Added to No. {number} and sent to the staff handling it.", number=ticket.number)
    await deliver(bot)
    [copy] = to_chat(bot, "copyMessage", GROUP.id)
    assert copy.params["reply_parameters"]["message_id"] == card["message_id"]
    assert copy.params["caption"].endswith("\n新照片")
    [logged] = await events(bot, ticket_id, "resident_message")
    assert logged.data["file"] == "photo"

    # The draft is over: the next message is an ordinary one again (offered, not sent).
    await bot.send(bot.updates.private_text(RESIDENT, "还有"))
    assert bot.last_text(RESIDENT.id) == t(
        "Shall I pass your message on to the staff handling one of your open requests? To "
        "report something new, describe it in a sentence or two.")

    # /cancel ends it without adding anything.
    await _press(bot, RESIDENT, f"my:add:{ticket_id}", detail)
    await bot.send(bot.updates.command(RESIDENT, "/cancel"))
    assert bot.last_text(RESIDENT.id) == t("Cancelled. Nothing was added.")
    await bot.send(bot.updates.private_text(RESIDENT, "还有"))
    assert len(await events(bot, ticket_id, "resident_message")) == 1


def _button_message(bot: BotEnv, user, data: str):
    """The newest message to `user` carrying a button with exactly `data`."""
    for call in reversed(bot.fake.calls):
        if call.params.get("chat_id") == user.id and data in _buttons(call):
            return call.result
    raise AssertionError(f"no message to {user.id} has a {data!r} button")


async def _draft_flows(bot: BotEnv, user) -> list[str]:
    async with bot.runtime.db.sessions() as session:
        return sorted((await session.scalars(select(Draft.flow).where(
            Draft.user_id == user.id))).all())


async def test_other_commands_keep_their_meaning_while_a_draft_waits(bot: BotEnv) -> None:
    await bind(bot, GROUP)
    ticket_id = await open_ticket(bot)
    ticket = await ticket_of(bot, ticket_id)
    await bot.send(bot.updates.command(RESIDENT, "/mytickets"))
    await _press(bot, RESIDENT, f"my:add:{ticket_id}")
    await bot.send(bot.updates.command(RESIDENT, "/help"))
    assert "/start" in bot.last_text(RESIDENT.id)
    await bot.send(bot.updates.private_text(RESIDENT, "三楼也有"))
    assert bot.last_text(RESIDENT.id) == _t(bot)(
        "Added to No. {number} and sent to the staff handling it.", number=ticket.number)


async def test_a_report_answer_never_goes_to_another_ticket(bot: BotEnv) -> None:
    """One private conversation at a time. The reviewer's sequence: a report is begun, then
    "Add information" on No. X (which drops the report), then /start, then the old
    "Continue": the report begins anew, and what is typed next is the report's."""
    await bind(bot, GROUP)
    ticket_id = await open_ticket(bot)
    ticket = await ticket_of(bot, ticket_id)
    t = _t(bot)
    rt = bot.runtime
    async with rt.uow() as uow:  # the same person answers a question in a group, too
        await uow.drafts.start(RESIDENT.id, "resolve", "note", {"ticket_id": ticket_id},
                               rt.clock.now())
        await uow.commit()

    await bot.send(bot.updates.command(RESIDENT, "/report"))
    await bot.send(bot.updates.callback(RESIDENT, "rp:cat:sanitation",
                                        _button_message(bot, RESIDENT, "rp:cat:sanitation")))
    await bot.send(bot.updates.command(RESIDENT, "/report"))  # "Continue or start over?"
    offer = _button_message(bot, RESIDENT, "rp:resume")

    await bot.send(bot.updates.command(RESIDENT, "/mytickets"))
    await _press(bot, RESIDENT, f"my:t:{ticket_id}")
    await _press(bot, RESIDENT, f"my:add:{ticket_id}", _button_message(
        bot, RESIDENT, f"my:add:{ticket_id}"))
    assert bot.last_text(RESIDENT.id).startswith(t("Your unfinished report was discarded."))
    assert await _draft_flows(bot, RESIDENT) == ["addinfo", "resolve"]

    await bot.send(bot.updates.command(RESIDENT, "/start"))
    assert "rp:resume" not in _buttons(bot.fake.last("sendMessage"))
    await bot.send(bot.updates.callback(RESIDENT, "rp:resume", offer))
    assert await _draft_flows(bot, RESIDENT) == ["report", "resolve"]
    description = "这是新的报事描述，不是补充信息"
    await bot.send(bot.updates.private_text(RESIDENT, description))
    await bot.send(bot.updates.callback(RESIDENT, "rp:cat:sanitation",
                                        _button_message(bot, RESIDENT, "rp:cat:sanitation")))
    await bot.send(bot.updates.private_text(RESIDENT, description))
    async with rt.uow() as uow:
        assert (await uow.drafts.get(RESIDENT.id, "report")).data["description"] == description
    added = t("Added to No. {number} and sent to the staff handling it.", number=ticket.number)
    assert added not in bot.texts(RESIDENT.id)
    assert await events(bot, ticket_id, "resident_message") == []
    await deliver(bot)
    assert not any(description in text for text in bot.texts(GROUP.id))


async def test_a_cancelled_report_leaves_no_add_information_behind(bot: BotEnv) -> None:
    """Add information, then /report, then /cancel: nothing typed later reaches No. X."""
    await bind(bot, GROUP)
    ticket_id = await open_ticket(bot)
    t = _t(bot)
    await bot.send(bot.updates.command(RESIDENT, "/mytickets"))
    await _press(bot, RESIDENT, f"my:add:{ticket_id}")
    await bot.send(bot.updates.command(RESIDENT, "/report"))
    assert await _draft_flows(bot, RESIDENT) == ["report"]
    await bot.send(bot.updates.command(RESIDENT, "/cancel"))
    assert bot.last_text(RESIDENT.id) == t("Your report was cancelled; nothing was sent.")
    assert await _draft_flows(bot, RESIDENT) == []
    bot.clock.advance(timedelta(hours=1))
    await bot.send(bot.updates.private_text(RESIDENT, "楼下的灯也坏了"))
    assert bot.last_text(RESIDENT.id) == t(
        "Shall I pass your message on to the staff handling one of your open requests? To "
        "report something new, describe it in a sentence or two.")
    assert await events(bot, ticket_id, "resident_message") == []

    # Withdraw replaces Add information, and cancelling ends only its own draft.
    await _press(bot, RESIDENT, f"my:add:{ticket_id}")
    await _press(bot, RESIDENT, f"my:wd:{ticket_id}")
    assert await _draft_flows(bot, RESIDENT) == ["withdraw"]
    await bot.send(bot.updates.command(RESIDENT, "/cancel"))
    assert await _draft_flows(bot, RESIDENT) == []
    assert (await ticket_of(bot, ticket_id)).status == "open"


async def test_a_co_reporter_sees_how_it_goes_not_what_others_wrote(bot: BotEnv) -> None:
    await bind(bot, GROUP)
    await bot.send(bot.updates.command(NEIGHBOUR, "/start"))
    rt = bot.runtime
    async with rt.uow() as uow:
        grid = await uow.nodes.by_code("SFQ-DH-01-G1")
        ticket = await tickets.create(uow, rt.clock, rt.config, NewReport(
            category=rt.config.category("sanitation"), description="我家门口 <私事>",
            reporter_id=RESIDENT.id, language="zh_Hans", grid_id=grid.id,
            address="幸福路 8 号 302 室", reporter_name="张三", reporter_phone="13812345678"))
        await tickets.add_co_reporter(uow, rt.clock, ticket, NEIGHBOUR.id)
        await Notifier(rt, uow).post_card(ticket)
        await uow.commit()
        ticket_id = ticket.id
    await deliver(bot)
    card = await card_of(bot, ticket_id)
    async with rt.uow() as uow:
        await tickets.claim(uow, rt.clock, ticket_id, WORKER.id, "小王")
        await uow.commit()
    await bot.send(bot.updates.group_text(GROUP, WORKER, "请问302室几点在家", reply_to=card))
    await deliver(bot)
    relayed = to_chat(bot, "sendMessage", RESIDENT.id)[-1].result
    await bot.send(bot.updates.private_text(RESIDENT, "晚上七点以后", reply_to=relayed))
    async with rt.uow() as uow:
        await tickets.withdraw(uow, rt.clock, ticket_id, RESIDENT.id, "邻居帮忙弄好了")
        await uow.commit()

    en = _t(bot, "en")
    await bot.send(bot.updates.command(NEIGHBOUR, "/mytickets"))
    detail = await _press(bot, NEIGHBOUR, f"my:t:{ticket_id}")
    text = detail.params["text"]
    for piece in ("Sanitation", grid.display_name("en"), en("Status: {status}",
                  status=en(STATUS_LABELS["withdrawn"])), en("Reported."),
                  en("You joined this report."), en("Claimed by a worker."),
                  en("Withdrawn by the resident who reported it.")):
        assert piece in text, piece
    for secret in ("私事", "幸福路", "302", "七点", "邻居帮忙", "张三", "138", "小王"):
        assert secret not in text, secret

    # The reporter sees all of it.
    await bot.send(bot.updates.command(RESIDENT, "/mytickets"))
    text = (await _press(bot, RESIDENT, f"my:t:{ticket_id}")).params["text"]
    for piece in ("&lt;私事&gt;", "幸福路", "302室几点", "晚上七点", "邻居帮忙"):
        assert piece in text, piece


async def test_information_for_a_ticket_without_a_group_is_kept(bot: BotEnv) -> None:
    ticket_id = await open_ticket(bot)  # no group bound anywhere up the tree
    ticket = await ticket_of(bot, ticket_id)
    assert ticket.group_chat_id is None
    await bot.send(bot.updates.command(RESIDENT, "/mytickets"))
    await _press(bot, RESIDENT, f"my:add:{ticket_id}")
    await bot.send(bot.updates.private_text(RESIDENT, "三楼也堆满了"))
    t = _t(bot)
    assert bot.last_text(RESIDENT.id) == t(
        "Added to No. {number}. No staff group has taken the ticket yet; they will see it "
        "when it reaches one.", number=ticket.number)
    [logged] = await events(bot, ticket_id, "resident_message")
    assert logged.data["text"] == "三楼也堆满了"
    assert await pending_rows(bot) == 0


async def test_withdrawing_with_a_reason(bot: BotEnv) -> None:
    await bind(bot, GROUP)
    await bot.send(bot.updates.command(NEIGHBOUR, "/start"))
    ticket_id = await open_ticket(bot, co_reporters=(NEIGHBOUR,))
    ticket = await ticket_of(bot, ticket_id)
    card = await card_of(bot, ticket_id)
    t = _t(bot)

    # A co-reporter may add information but not withdraw someone else's report.
    await bot.send(bot.updates.command(NEIGHBOUR, "/mytickets"))
    detail = await _press(bot, NEIGHBOUR, f"my:t:{ticket_id}")
    assert _buttons(detail) == [f"my:add:{ticket_id}", "my:page:0"]
    await _press(bot, NEIGHBOUR, f"my:wd:{ticket_id}", detail.result)
    assert await _alerted(bot, "en")

    await bot.send(bot.updates.command(RESIDENT, "/mytickets"))
    await _press(bot, RESIDENT, f"my:wd:{ticket_id}")
    prompt = t("Why do you want to withdraw No. {number}? Please write the reason in a few "
               "words ({min} to {max} characters). Send /cancel to keep the ticket open.",
               number=ticket.number, min=2, max=300)
    assert bot.last_text(RESIDENT.id) == prompt
    await bot.send(bot.updates.private_text(RESIDENT, "x"))
    assert bot.last_text(RESIDENT.id).endswith(prompt)
    await bot.send(bot.updates.private_text(RESIDENT, "y" * 301))
    assert bot.last_text(RESIDENT.id).endswith(prompt)
    assert (await ticket_of(bot, ticket_id)).status == "open"

    bot.fake.clear()
    await bot.send(bot.updates.private_text(RESIDENT, "已经自己解决了 <b>&\x00"))
    assert bot.last_text(RESIDENT.id) == t(
        "No. {number} is withdrawn. Thank you for letting us know.", number=ticket.number)
    assert (await ticket_of(bot, ticket_id)).status == "withdrawn"
    [withdrawn] = await events(bot, ticket_id, "withdrawn")
    assert withdrawn.data["reason"] == "已经自己解决了 <b>&"
    await deliver(bot)

    edit = bot.fake.last("editMessageText")
    assert edit.params["chat_id"] == GROUP.id and edit.params["message_id"] == card["message_id"]
    assert t(STATUS_LABELS["withdrawn"]) in edit.params["text"]
    told = to_chat(bot, "sendMessage", GROUP.id)[-1].params
    assert told["text"] == t(
        "<b>No. {number}</b> was withdrawn by the resident. Reason: {reason}",
        number=ticket.number, reason="已经自己解决了 &lt;b&gt;&amp;")
    assert told["reply_parameters"]["message_id"] == card["message_id"]
    assert to_chat(bot, "sendMessage", NEIGHBOUR.id)[-1].params["text"] == _t(bot, "en")(
        "<b>No. {number}</b> was withdrawn by the resident who reported it; it is closed now.",
        number=ticket.number)

    # Once withdrawn: no more Add information or Withdraw, and old buttons explain why.
    await bot.send(bot.updates.command(RESIDENT, "/mytickets"))
    detail = await _press(bot, RESIDENT, f"my:t:{ticket_id}")
    assert _buttons(detail) == ["my:page:0"]
    assert t("Withdrawn. Reason: {reason}", reason="已经自己解决了 &lt;b&gt;&amp;") in (
        detail.params["text"])
    await _press(bot, RESIDENT, f"my:wd:{ticket_id}", detail.result)
    assert bot.fake.last("answerCallbackQuery").params["show_alert"] is True


async def test_cancelling_a_withdrawal_keeps_the_ticket(bot: BotEnv) -> None:
    await bind(bot, GROUP)
    ticket_id = await open_ticket(bot)
    ticket = await ticket_of(bot, ticket_id)
    await bot.send(bot.updates.command(RESIDENT, "/mytickets"))
    prompt = await _press(bot, RESIDENT, f"my:wd:{ticket_id}")
    await _press(bot, RESIDENT, "my:cancel", prompt.result)
    assert bot.fake.last("editMessageText").params["text"] == _t(bot)(
        "Cancelled. No. {number} stays as it is.", number=ticket.number)
    await bot.send(bot.updates.private_text(RESIDENT, "我不想撤回了"))
    assert (await ticket_of(bot, ticket_id)).status == "open"
    await _press(bot, RESIDENT, "my:cancel", prompt.result)  # nothing left to cancel
    assert await _alerted(bot)


async def test_forged_buttons_show_nothing(bot: BotEnv) -> None:
    await bind(bot, GROUP)
    theirs = await open_ticket(bot, STRANGER, description="别人的 <秘密> 描述，不应看到")
    await bot.send(bot.updates.command(RESIDENT, "/mytickets"))
    menu = bot.fake.last("sendMessage").result
    for data in (f"my:t:{theirs}", f"my:add:{theirs}", f"my:wd:{theirs}", "my:t:999999",
                 "my:t:" + "9" * 40):
        before = len(bot.fake.calls)
        await _press(bot, RESIDENT, data, menu)
        assert await _alerted(bot), data
        assert [c.method for c in bot.fake.calls[before:]] == ["answerCallbackQuery"]
    # Never in a group, even for one's own tickets.
    await bot.send(bot.updates.callback(STRANGER, "my:list", await card_of(bot, theirs)))
    assert await _alerted(bot)
    await bot.send(bot.updates.callback(STRANGER, f"my:t:{theirs}", await card_of(bot, theirs)))
    assert await _alerted(bot)
    assert await pending_rows(bot) == 0
