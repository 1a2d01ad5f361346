"""The satisfaction follow-up (回访) after a resolution, through the real
Application: asked after the delay and outside quiet hours, answered with buttons, a comment,
one reminder, closed when unanswered, reopened one level up when not solved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.actions.notifier import Notifier
from bot.clock import FakeClock
from bot.services import tickets
from storage.models import TicketSurvey
from tests.harness import ADMIN, BotEnv, start_bot, stop_bot
from tests.telegram_fake import Chat, User

GRID = "SFQ-DH-01-G1"
SHANGHAI = ZoneInfo("Asia/Shanghai")
RESIDENT = User(820_001, "居民甲", language_code="zh-hans")
NEIGHBOUR = User(820_002, "Neighbour <b>", language_code="en")
WORKER = User(820_101, "网格员乙", language_code="zh-hans")
GRID_GROUP = Chat(-1008200000001, "supergroup", title="第1网格")
COMMUNITY_GROUP = Chat(-1008200000002, "supergroup", title="东湖第一社区")


def local(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI).astimezone(UTC)


async def _resolved(bot: BotEnv, *, co_reporter: bool = False) -> int:
    """A ticket reported, claimed and resolved through the group's buttons."""
    rt = bot.runtime
    await bot.send(bot.updates.command(GRID_GROUP, "/bind", GRID, user=ADMIN))
    await bot.send(bot.updates.command(COMMUNITY_GROUP, "/bind", "SFQ-DH-01", user=ADMIN))
    bot.fake.set_member(GRID_GROUP.id, WORKER.id, "member")
    for user in (RESIDENT, NEIGHBOUR):
        await bot.send(bot.updates.command(user, "/start"))
    async with rt.uow() as uow:
        grid = await uow.nodes.by_code(GRID)
        ticket = await tickets.create(uow, rt.clock, rt.config, tickets.NewReport(
            category=rt.config.category("sanitation"), description="楼道里堆满了垃圾",
            reporter_id=RESIDENT.id, language="zh_Hans", grid_id=grid.id))
        if co_reporter:
            await tickets.add_co_reporter(uow, rt.clock, ticket, NEIGHBOUR.id)
        await Notifier(rt, uow).post_card(ticket)
        await uow.commit()
    await bot.deliver()
    card = next(c for c in reversed(bot.fake.calls_to("sendMessage"))
                if c.params["chat_id"] == GRID_GROUP.id and c.params.get("reply_markup"))
    await bot.send(bot.updates.callback(WORKER, f"tk:claim:{ticket.id}", card.result))
    await bot.send(bot.updates.callback(WORKER, f"tk:resolve:{ticket.id}", card.result))
    prompt = next(c for c in reversed(bot.fake.calls_to("sendMessage"))
                  if c.params["chat_id"] == GRID_GROUP.id
                  and c.params.get("reply_markup", {}).get("force_reply"))
    await bot.send(bot.updates.group_text(GRID_GROUP, WORKER, "已清理<完毕>",
                                          reply_to=prompt.result))
    await bot.deliver()
    return ticket.id


def _survey_message(bot: BotEnv, user: User):
    return next(c for c in reversed(bot.fake.calls_to("sendMessage"))
                if c.params["chat_id"] == user.id and "sv:" in str(c.params.get("reply_markup")))


def _buttons(call) -> dict[str, str]:
    return {b["text"]: b["callback_data"]
            for row in call.params["reply_markup"]["inline_keyboard"] for b in row}


def _last_edit(bot: BotEnv, user: User) -> dict:
    return [c for c in bot.fake.calls_to("editMessageText")
            if c.params["chat_id"] == user.id][-1].params


async def _press(bot: BotEnv, user: User, message, data: str) -> None:
    await bot.send(bot.updates.callback(user, data, message.result))
    await bot.deliver()


async def _ticket(bot: BotEnv, ticket_id: int):
    async with bot.runtime.uow() as uow:
        return await uow.tickets.get(ticket_id)


async def _surveys(bot: BotEnv, ticket_id: int) -> list[TicketSurvey]:
    async with bot.runtime.uow() as uow:
        return list(await uow.surveys.of_ticket(ticket_id))


async def _at(bot: BotEnv, moment: datetime) -> int:
    bot.clock.advance(moment - bot.clock.now())
    ran = await bot.tick()
    await bot.deliver()
    return ran


async def test_content_resident_closes_the_ticket_and_may_comment(bot: BotEnv) -> None:
    ticket_id = await _resolved(bot)  # Monday 09:00
    assert await _at(bot, local("2026-11-23 10:59")) == 0
    assert await _at(bot, local("2026-11-23 11:00")) == 1  # two hours later
    message = _survey_message(bot, RESIDENT)
    assert "已清理&lt;完毕&gt;" in message.params["text"]
    t = bot.runtime.translator("zh_Hans")
    await _press(bot, RESIDENT, message, _buttons(message)[t("✅ Yes, solved")])
    edited = bot.fake.last("editMessageText").params
    labels = [b["text"] for row in edited["reply_markup"]["inline_keyboard"] for b in row]
    assert labels[:5] == ["😊 非常满意", "🙂 满意", "😐 基本满意", "🙁 不满意", "😞 非常不满意"]

    await _press(bot, RESIDENT, message, f"sv:{(await _surveys(bot, ticket_id))[0].id}:s4")
    ticket = await _ticket(bot, ticket_id)
    assert (ticket.status, ticket.close_reason) == ("closed", "rated")
    [survey] = await _surveys(bot, ticket_id)
    assert (survey.status, survey.solved, survey.score) == ("answered", True, 4)
    assert "⭐" in bot.last_text(GRID_GROUP.id) and "4/5" in bot.last_text(GRID_GROUP.id)
    # Nothing more is due for it.
    assert await _at(bot, local("2026-12-01 11:00")) == 0

    await _press(bot, RESIDENT, message, f"sv:{survey.id}:c")
    await bot.send(bot.updates.sticker(RESIDENT))
    assert "/cancel" in bot.last_text(RESIDENT.id)
    await bot.send(bot.updates.private_text(RESIDENT, "很及时，谢谢<网格员>"))
    await bot.deliver()
    assert (await _surveys(bot, ticket_id))[0].comment == "很及时，谢谢<网格员>"
    relayed = bot.fake.last("sendMessage").params
    assert relayed["chat_id"] == GRID_GROUP.id
    assert "很及时，谢谢&lt;网格员&gt;" in relayed["text"]


async def test_not_solved_reopens_one_level_up_and_tells_both_groups(bot: BotEnv) -> None:
    ticket_id = await _resolved(bot, co_reporter=True)
    await _at(bot, local("2026-11-23 11:00"))
    mine, theirs = _survey_message(bot, RESIDENT), _survey_message(bot, NEIGHBOUR)
    assert "Is the problem solved?" in theirs.params["text"]  # each in their own language
    survey_id = (await _surveys(bot, ticket_id))[0].id
    await _press(bot, RESIDENT, mine, f"sv:{survey_id}:n")
    await _press(bot, RESIDENT, mine, f"sv:{survey_id}:s3")  # content, but not solved
    ticket = await _ticket(bot, ticket_id)
    async with bot.runtime.uow() as uow:
        node = await uow.nodes.get(ticket.node_id)
    assert (ticket.status, node.code, ticket.reopen_count) == ("open", "SFQ-DH-01", 1)
    assert ticket.group_chat_id == COMMUNITY_GROUP.id
    assert any("楼道里堆满了垃圾" in text for text in bot.texts(COMMUNITY_GROUP.id))
    assert "⬆️" in bot.last_text(GRID_GROUP.id)
    # The co-reporter's question of that round is withdrawn.
    statuses = {s.user_id: s.status for s in await _surveys(bot, ticket_id)}
    assert statuses == {RESIDENT.id: "answered", NEIGHBOUR.id: "cancelled"}
    await _press(bot, NEIGHBOUR, theirs, _buttons(theirs)["✅ Yes, solved"])
    assert "closed" in bot.fake.last("answerCallbackQuery").params["text"]
    # The reopened ticket runs on the community's timers; the old survey timers are gone.
    async with bot.runtime.uow() as uow:
        kinds = {task.kind for task in await uow.tasks.pending(ticket_id=ticket_id)}
    assert not kinds & {"survey_remind", "survey_give_up"}
    assert "claim_remind" in kinds


async def test_a_low_score_reopens_even_when_solved(bot: BotEnv) -> None:
    ticket_id = await _resolved(bot)
    await _at(bot, local("2026-11-23 11:00"))
    message = _survey_message(bot, RESIDENT)
    survey_id = (await _surveys(bot, ticket_id))[0].id
    await _press(bot, RESIDENT, message, f"sv:{survey_id}:y")
    await _press(bot, RESIDENT, message, f"sv:{survey_id}:s2")
    assert (await _ticket(bot, ticket_id)).status == "open"


async def test_co_reporters_are_asked_and_all_must_be_content(bot: BotEnv) -> None:
    ticket_id = await _resolved(bot, co_reporter=True)
    await _at(bot, local("2026-11-23 11:00"))
    mine, theirs = _survey_message(bot, RESIDENT), _survey_message(bot, NEIGHBOUR)
    by_user = {s.user_id: s.id for s in await _surveys(bot, ticket_id)}
    await _press(bot, RESIDENT, mine, f"sv:{by_user[RESIDENT.id]}:y")
    await _press(bot, RESIDENT, mine, f"sv:{by_user[RESIDENT.id]}:s5")
    assert (await _ticket(bot, ticket_id)).status == "resolved"  # waiting for the neighbour
    await _press(bot, NEIGHBOUR, theirs, f"sv:{by_user[NEIGHBOUR.id]}:y")
    await _press(bot, NEIGHBOUR, theirs, f"sv:{by_user[NEIGHBOUR.id]}:s3")
    assert (await _ticket(bot, ticket_id)).status == "closed"


async def test_one_reminder_then_closed_as_unanswered_after_seven_days(bot: BotEnv) -> None:
    ticket_id = await _resolved(bot)
    await _at(bot, local("2026-11-23 11:00"))
    asked = len(bot.fake.sent_texts(RESIDENT.id))
    assert await _at(bot, local("2026-11-24 10:59")) == 0
    assert await _at(bot, local("2026-11-24 11:00")) == 1
    assert len(bot.fake.sent_texts(RESIDENT.id)) == asked + 1
    assert "提醒" in bot.last_text(RESIDENT.id)
    assert await _at(bot, local("2026-11-30 10:59")) == 0
    assert len(bot.fake.sent_texts(RESIDENT.id)) == asked + 1  # only one reminder
    assert await _at(bot, local("2026-11-30 11:00")) == 1
    ticket = await _ticket(bot, ticket_id)
    assert (ticket.status, ticket.close_reason) == ("closed", "unanswered")
    assert (await _surveys(bot, ticket_id))[0].status == "unanswered"
    assert bot.runtime.translator("zh_Hans")("Closed") in bot.fake.last(
        "editMessageText").params["text"]


async def test_survey_waits_out_quiet_hours(db, catalogs) -> None:
    # Resolved at 20:00: two hours later is 22:00, inside 21:00–08:00, so it waits for 08:00.
    bot = await start_bot(db, catalogs, clock=FakeClock(local("2026-11-23 20:00")))
    try:
        await _resolved(bot)
        assert await _at(bot, local("2026-11-24 07:59")) == 0
        assert not [c for c in bot.fake.calls_to("sendMessage")
                    if c.params["chat_id"] == RESIDENT.id and "sv:" in str(c.params)]
        assert await _at(bot, local("2026-11-24 08:00")) == 1
        _survey_message(bot, RESIDENT)
        bot.fake.assert_no_violations()
        assert bot.errors == []
    finally:
        await stop_bot(bot)


async def test_a_survey_due_while_down_waits_for_the_morning_and_runs_once(
        bot: BotEnv, db, catalogs) -> None:
    await _resolved(bot)
    bot.clock.advance(local("2026-11-23 23:30") - bot.clock.now())  # down since before 11:00
    again = await start_bot(db, catalogs, clock=bot.clock, fake=bot.fake, first_update_id=900)
    try:
        assert await again.tick() == 1  # runs, finds quiet hours, puts itself off
        await again.deliver()
        assert not [c for c in bot.fake.calls_to("sendMessage")
                    if c.params["chat_id"] == RESIDENT.id and "sv:" in str(c.params)]
        bot.clock.advance(local("2026-11-24 08:00") - bot.clock.now())
        assert await again.tick() == 1
        assert await bot.tick() == 0
        await again.deliver()
        assert len([c for c in bot.fake.calls_to("sendMessage")
                    if c.params["chat_id"] == RESIDENT.id and "sv:" in str(c.params)]) == 1
    finally:
        await stop_bot(again)


async def test_forged_and_foreign_survey_buttons_change_nothing(bot: BotEnv) -> None:
    ticket_id = await _resolved(bot)
    await _at(bot, local("2026-11-23 11:00"))
    message = _survey_message(bot, RESIDENT)
    survey_id = (await _surveys(bot, ticket_id))[0].id
    for user, data in ((NEIGHBOUR, f"sv:{survey_id}:y"), (RESIDENT, f"sv:{survey_id}:s5"),
                       (RESIDENT, "sv:99999:y"), (RESIDENT, f"sv:{survey_id}:s9"),
                       (RESIDENT, f"sv:{survey_id}:c")):
        await _press(bot, user, message, data)
        assert bot.fake.last("answerCallbackQuery").params.get("show_alert")
    [survey] = await _surveys(bot, ticket_id)
    assert (survey.status, survey.solved, survey.score) == ("asked", None, None)
    assert (await _ticket(bot, ticket_id)).status == "resolved"


async def test_two_content_answers_at_once_close_the_ticket(bot: BotEnv) -> None:
    import asyncio

    ticket_id = await _resolved(bot, co_reporter=True)
    await _at(bot, local("2026-11-23 11:00"))
    mine, theirs = _survey_message(bot, RESIDENT), _survey_message(bot, NEIGHBOUR)
    by_user = {s.user_id: s.id for s in await _surveys(bot, ticket_id)}
    await _press(bot, RESIDENT, mine, f"sv:{by_user[RESIDENT.id]}:y")
    await _press(bot, NEIGHBOUR, theirs, f"sv:{by_user[NEIGHBOUR.id]}:y")
    await asyncio.gather(
        bot.send(bot.updates.callback(RESIDENT, f"sv:{by_user[RESIDENT.id]}:s5", mine.result)),
        bot.send(bot.updates.callback(NEIGHBOUR, f"sv:{by_user[NEIGHBOUR.id]}:s4",
                                      theirs.result)))
    ticket = await _ticket(bot, ticket_id)
    assert (ticket.status, ticket.close_reason) == ("closed", "rated")


async def test_answers_count_at_the_grid_that_resolved_and_not_solved_is_not_satisfied(
        bot: BotEnv) -> None:
    from bot.services import stats

    # A very dissatisfied answer moves the ticket up to the community, but it rates the
    # grid's work; a second ticket's "not solved · fairly satisfied" is no satisfied answer.
    first = await _resolved(bot)
    second = await _resolved(bot)
    await _at(bot, local("2026-11-23 11:00"))
    for ticket_id, solved, score in ((first, "y", 1), (second, "n", 3)):
        survey_id = (await _surveys(bot, ticket_id))[0].id
        message = next(c for c in reversed(bot.fake.calls_to("sendMessage"))
                       if c.params["chat_id"] == RESIDENT.id
                       and f"sv:{survey_id}:" in str(c.params.get("reply_markup")))
        await _press(bot, RESIDENT, message, f"sv:{survey_id}:{solved}")
        await _press(bot, RESIDENT, message, f"sv:{survey_id}:s{score}")
    rt = bot.runtime
    now = rt.clock.advance(timedelta(minutes=1))
    period = stats.current_period(stats.Span.WEEK, now, rt.config)
    async with rt.uow() as uow:
        grid = await uow.nodes.by_code(GRID)
        report = await stats.subtree_report(uow, grid.id, period, now)
    assert (report.total.answered, report.total.satisfied) == (2, 0)


async def test_not_solved_alone_reopens_at_once_and_is_never_closed_as_unanswered(
        bot: BotEnv) -> None:
    ticket_id = await _resolved(bot)
    await _at(bot, local("2026-11-23 11:00"))
    message = _survey_message(bot, RESIDENT)
    t = bot.runtime.translator("zh_Hans")
    await _press(bot, RESIDENT, message, _buttons(message)[t("❌ Not solved")])
    # The resident stops there: no score. The ticket is open again one level up already.
    ticket = await _ticket(bot, ticket_id)
    assert (ticket.status, ticket.group_chat_id, ticket.reopen_count) == (
        "open", COMMUNITY_GROUP.id, 1)
    [survey] = await _surveys(bot, ticket_id)
    assert (survey.status, survey.solved, survey.score) == ("answered", False, None)
    thanks = _last_edit(bot, RESIDENT)
    assert t("We are sorry it is not settled yet: {request} has been reopened and passed "
             "to {place}.", request=t("your report"),
             place="示范区 / 东湖街道 / 东湖第一社区") in thanks["text"]
    # The score is offered, not required; the survey's time running out closes nothing.
    await _at(bot, local("2026-12-01 11:00"))
    ticket = await _ticket(bot, ticket_id)
    assert ticket.status == "open" and ticket.close_reason is None
    score_button = {b["text"]: b["callback_data"] for row in thanks["reply_markup"][
        "inline_keyboard"] for b in row}[t("😞 Very dissatisfied")]
    await _press(bot, RESIDENT, message, score_button)
    [survey] = await _surveys(bot, ticket_id)
    assert (survey.status, survey.solved, survey.score) == ("answered", False, 1)
    assert (await _ticket(bot, ticket_id)).reopen_count == 1  # recorded, not acted on twice


async def test_solved_with_a_low_score_is_not_called_unsolved(bot: BotEnv) -> None:
    ticket_id = await _resolved(bot)
    await _at(bot, local("2026-11-23 11:00"))
    message = _survey_message(bot, RESIDENT)
    survey_id = (await _surveys(bot, ticket_id))[0].id
    await _press(bot, RESIDENT, message, f"sv:{survey_id}:y")
    await _press(bot, RESIDENT, message, f"sv:{survey_id}:s2")
    t = bot.runtime.translator("zh_Hans")
    thanks = _last_edit(bot, RESIDENT)["text"]
    place = "示范区 / 东湖街道 / 东湖第一社区"
    assert t("We are sorry you are not satisfied: {request} has been reopened and passed "
             "to {place}.", request=t("your report"), place=place) in thanks
    assert t("We are sorry it is not settled yet: {request} has been reopened and passed "
             "to {place}.", request=t("your report"), place=place) not in thanks


async def test_a_resolution_sent_back_up_still_counts_where_it_was_made(bot: BotEnv) -> None:
    """Each resolution counts at the node that made it: the grid resolved, the resident sent
    the ticket up (1/5), the community resolved it again. Both resolutions count."""
    from bot.services import stats

    ticket_id = await _resolved(bot)
    await _at(bot, local("2026-11-23 11:00"))
    message = _survey_message(bot, RESIDENT)
    survey_id = (await _surveys(bot, ticket_id))[0].id
    await _press(bot, RESIDENT, message, f"sv:{survey_id}:y")
    await _press(bot, RESIDENT, message, f"sv:{survey_id}:s1")
    bot.fake.set_member(COMMUNITY_GROUP.id, WORKER.id, "member")
    card = next(c for c in reversed(bot.fake.calls_to("sendMessage"))
                if c.params["chat_id"] == COMMUNITY_GROUP.id
                and f"tk:claim:{ticket_id}" in str(c.params.get("reply_markup")))
    await bot.send(bot.updates.callback(WORKER, f"tk:claim:{ticket_id}", card.result))
    await bot.send(bot.updates.callback(WORKER, f"tk:resolve:{ticket_id}", card.result))
    prompt = next(c for c in reversed(bot.fake.calls_to("sendMessage"))
                  if c.params["chat_id"] == COMMUNITY_GROUP.id
                  and c.params.get("reply_markup", {}).get("force_reply"))
    await bot.send(bot.updates.group_text(COMMUNITY_GROUP, WORKER, "社区已协调物业清运",
                                          reply_to=prompt.result))
    assert (await _ticket(bot, ticket_id)).status == "resolved"
    rt = bot.runtime
    now = rt.clock.advance(timedelta(minutes=1))
    period = stats.current_period(stats.Span.WEEK, now, rt.config)
    async with rt.uow() as uow:
        grid = await uow.nodes.by_code(GRID)
        community = await uow.nodes.by_code("SFQ-DH-01")
        at_grid = await stats.subtree_report(uow, grid.id, period, now)
        at_community = await stats.subtree_report(uow, community.id, period, now)
    assert (at_grid.total.resolved, at_grid.total.answered, at_grid.total.satisfied) == (1, 1, 0)
    assert at_community.total.resolved == 2
    [own] = [line for line in at_community.lines if line.node is None]
    assert own.tally.resolved == 1


async def test_a_reopening_with_nothing_above_keeps_one_live_card(bot: BotEnv) -> None:
    ticket_id = await _resolved(bot)
    await bot.send(bot.updates.command(COMMUNITY_GROUP, "/unbind", user=ADMIN))
    await _at(bot, local("2026-11-23 11:00"))
    message = _survey_message(bot, RESIDENT)
    t = bot.runtime.translator("zh_Hans")
    await _press(bot, RESIDENT, message, _buttons(message)[t("❌ Not solved")])
    ticket = await _ticket(bot, ticket_id)
    # No group above the grid's: the ticket reopens where it is, on the card it has.
    assert (ticket.status, ticket.group_chat_id, ticket.reopen_count) == ("open", GRID_GROUP.id,
                                                                         1)
    cards = [c for c in bot.fake.calls_to("sendMessage") if c.params["chat_id"] == GRID_GROUP.id
             and f"tk:details:{ticket_id}" in str(c.params.get("reply_markup"))]
    assert len(cards) == 1 and ticket.card_message_id == cards[0].result["message_id"]
    edit = [c for c in bot.fake.calls_to("editMessageText")
            if c.params["chat_id"] == GRID_GROUP.id][-1].params
    assert edit["message_id"] == ticket.card_message_id
    assert f"tk:claim:{ticket_id}" in str(edit["reply_markup"])
    assert t("Reopened by a resident ({answer}): please take it on again.",
             answer=t("Not solved")) in bot.last_text(GRID_GROUP.id)


async def test_not_solved_said_before_an_upgrade_reopens_at_the_give_up(bot: BotEnv) -> None:
    """An earlier version kept "not solved" waiting for the score: such an answer in the
    database when the survey's time runs out reopens the ticket instead of closing it."""
    from sqlalchemy import update

    ticket_id = await _resolved(bot)
    await _at(bot, local("2026-11-23 11:00"))
    async with bot.runtime.uow() as uow:
        await uow.session.execute(update(TicketSurvey).where(
            TicketSurvey.ticket_id == ticket_id).values(solved=False))
        await uow.commit()
    await _at(bot, local("2026-11-30 11:00"))
    ticket = await _ticket(bot, ticket_id)
    assert (ticket.status, ticket.close_reason, ticket.group_chat_id) == (
        "open", None, COMMUNITY_GROUP.id)
    [survey] = await _surveys(bot, ticket_id)
    assert (survey.status, survey.solved) == ("answered", False)
    t = bot.runtime.translator("zh_Hans")
    assert t("We have reopened {request} and passed it to {place}.", request=t("your report"),
             place="示范区 / 东湖街道 / 东湖第一社区") in bot.last_text(RESIDENT.id)
