"""A resident's data rights through the real Application, on SQLite and PostgreSQL: /mydata
sends everything as a JSON document; /deletemydata tells what will happen, asks, refuses
forged and stale buttons, then erases — open tickets withdrawn (timers stopped, the group
told), resolved ones closed, bookings cancelled, the card shown again without the data and
the photos and place under it deleted — and leaves anonymous statistics; a co-reporter's
erasure leaves the reporter's ticket alone; the retention sweep erases old tickets once,
however many processes run it; and the admin actions are logged."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, time, timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text

from bot.actions import retention
from bot.actions.notifier import Notifier
from bot.actions.privacy import confirmation_mac as _mac
from bot.services import audit, bookings, enterprises, privacy, surveys, tickets
from bot.services.tickets import NewReport
from storage import migrate
from storage.db import create_database
from storage.models import (
    AdminAction,
    Base,
    Draft,
    Enterprise,
    EnterpriseContact,
    OutboxMessage,
    ScheduledTask,
    TicketAttachment,
    TicketEvent,
    TicketReporter,
    TicketSurvey,
    User,
)
from tests.conftest import BACKENDS, pg_schema
from tests.harness import ADMIN, BotEnv, make_config, start_bot, stop_bot
from tests.telegram_fake import Chat
from tests.test_relay import (
    DESCRIPTION,
    GROUP,
    NEIGHBOUR,
    RESIDENT,
    STRANGER,
    WORKER,
    bind,
    card_of,
    deliver,
    open_ticket,
    ticket_of,
    to_chat,
)

ADDRESS = "东湖路 <12> 号 & 3 楼"
PHONE = "13812345678"


def _t(bot: BotEnv, language: str = "zh_Hans"):
    return bot.runtime.translator(language)


async def _report(bot: BotEnv, reporter=RESIDENT, *, co_reporters=(),
                  name: str | None = None) -> int:
    """A ticket with an address and an exact place, its card (with the photo and the place
    under it) delivered to the grid's group."""
    rt = bot.runtime
    async with rt.uow() as uow:
        grid = await uow.nodes.by_code("SFQ-DH-01-G1")
        ticket = await tickets.create(uow, rt.clock, rt.config, NewReport(
            category=rt.config.category("sanitation"), description=DESCRIPTION,
            reporter_id=reporter.id, language="zh_Hans", grid_id=grid.id, address=ADDRESS,
            latitude=31.2301, longitude=121.4202, reporter_name=name or reporter.first_name,
            reporter_phone=PHONE, attachments=[("photo", "AgAD-report-photo")]))
        for user in co_reporters:
            await tickets.add_co_reporter(uow, rt.clock, ticket, user.id)
        await Notifier(rt, uow).post_card(ticket)
        await uow.commit()
        ticket_id = ticket.id
    await deliver(bot)
    return ticket_id


async def _rows(bot: BotEnv, model, *where):
    async with bot.runtime.db.sessions() as session:
        return list((await session.scalars(select(model).where(*where))).all())


def _buttons(call) -> list[str]:
    markup = call.params.get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]


async def _ask_erasure(bot: BotEnv, user):
    await bot.send(bot.updates.command(user, "/deletemydata"))
    question = bot.fake.last("sendMessage")
    assert question.params["chat_id"] == user.id
    return question


async def _confirm(bot: BotEnv, user, question) -> None:
    yes = next(data for data in _buttons(question) if data.startswith("dd:y:"))
    await bot.send(bot.updates.callback(user, yes, question.result))


async def _alert(bot: BotEnv) -> str:
    call = bot.fake.last("answerCallbackQuery")
    assert call.params.get("show_alert") is True
    return call.params["text"]


async def _reply_in_private(bot: BotEnv, user, text: str) -> None:
    """The resident writes to the workers by replying to the bot's last message about it."""
    relayed = to_chat(bot, "sendMessage", user.id)[-1].result
    await bot.send(bot.updates.private_text(user, text, reply_to=relayed))
    await deliver(bot)


# -- /mydata --------------------------------------------------------------------------------------

async def test_mydata_sends_everything_the_bot_holds_as_a_json_document(bot: BotEnv) -> None:
    await bind(bot, GROUP)
    await bot.send(bot.updates.command(NEIGHBOUR, "/start"))  # speaks English
    mine = await _report(bot, NEIGHBOUR, name="Ann <Smith>")
    joined = await open_ticket(bot, STRANGER, co_reporters=(NEIGHBOUR,))
    card = await card_of(bot, mine)
    await bot.send(bot.updates.group_text(GROUP, WORKER, "我们明天到", reply_to=card))
    await deliver(bot)
    await _reply_in_private(bot, NEIGHBOUR, "Thanks & <see you>")
    rt = bot.runtime
    now = rt.clock.now()
    async with rt.uow() as uow:
        uow.session.add(TicketSurvey(ticket_id=joined, user_id=NEIGHBOUR.id, round=0,
                                     status="answered", solved=True, score=4,
                                     comment="quick <work>", created_at=now, answered_at=now))
        enterprise = Enterprise(name="Acme <Ltd>", credit_code="91110108551385082Q",
                                industry="it", invite_code="INVA", created_by=NEIGHBOUR.id,
                                consent_at=now, created_at=now, updated_at=now)
        uow.session.add(enterprise)
        await uow.session.flush()
        uow.session.add(EnterpriseContact(enterprise_id=enterprise.id, user_id=NEIGHBOUR.id,
                                          name="Ann Contact", phone="13900001111",
                                          role="owner", added_at=now))
        await uow.commit()
    bot.fake.clear()

    await bot.send(bot.updates.command(NEIGHBOUR, "/mydata"))
    call = bot.fake.last("sendDocument")
    assert call.params["chat_id"] == NEIGHBOUR.id
    t = _t(bot, "en")
    assert call.params["caption"].startswith(t("<b>Your data in Gridgate</b>\n"
                                               "Tickets you reported: {reported}\n",
                                               reported=1)[:20])
    assert "Tickets you reported: 1" in call.params["caption"]
    assert "Tickets you joined: 1" in call.params["caption"]
    [upload] = call.files.values()
    assert upload.filename.startswith("gridgate-my-data-") and upload.filename.endswith(".json")
    data = json.loads(upload.content.decode("utf-8"))

    assert data["telegram_user_id"] == NEIGHBOUR.id
    assert data["settings"]["telegram_language_code"] == "en"
    [reported] = data["reported_tickets"]
    assert reported["name"] == "Ann <Smith>" and reported["phone"] == PHONE
    assert reported["description"] == DESCRIPTION and reported["address"] == ADDRESS
    assert reported["latitude"] == 31.2301 and reported["grid"] == "SFQ-DH-01-G1"
    assert reported["attachments"][0]["file_id"] == "AgAD-report-photo"
    assert reported["created_at"].endswith("+08:00")  # local time with its offset
    assert [m["text"] for m in reported["your_messages"] if m.get("text")] == [
        "Thanks & <see you>"]
    assert {"created", "resident_message", "worker_message"} <= {
        e["kind"] for e in reported["history"]}
    [other] = data["joined_tickets"]
    assert other["number"] == (await ticket_of(bot, joined)).number
    # Someone else's report: what they wrote is theirs, not in this copy.
    assert DESCRIPTION not in json.dumps(other, ensure_ascii=False)
    [answer] = data["survey_answers"]
    assert answer["score"] == 4 and answer["comment"] == "quick <work>"
    [contact] = data["enterprises"]
    assert contact["your_phone"] == "13900001111" and contact["registered_by_you"] is True
    assert "我们明天到" not in upload.content.decode("utf-8")  # the worker's words
    assert str(STRANGER.id) not in upload.content.decode("utf-8")


async def test_mydata_in_a_group_says_nothing(bot: BotEnv) -> None:
    group = Chat(-1001000000777, "supergroup", title="g")
    bot.fake.add_chat(group.id, group.type, title=group.title)
    await bot.send(bot.updates.command(group, "/mydata", user=RESIDENT))
    await bot.send(bot.updates.command(group, "/deletemydata", user=RESIDENT))
    assert bot.fake.calls_to("sendDocument") == [] and bot.fake.calls_to("sendMessage") == []


# -- /deletemydata --------------------------------------------------------------------------------

async def test_erasure_withdraws_open_tickets_and_leaves_anonymous_statistics(
        bot: BotEnv) -> None:
    await bind(bot, GROUP)
    await bot.send(bot.updates.command(NEIGHBOUR, "/start"))
    ticket_id = await _report(bot, co_reporters=(NEIGHBOUR,))
    number = (await ticket_of(bot, ticket_id)).number
    card = await card_of(bot, ticket_id)
    await bot.send(bot.updates.group_text(GROUP, WORKER, "请问具体位置?", reply_to=card))
    await deliver(bot)
    await _reply_in_private(bot, RESIDENT, "我家门口 13812345678")
    photos = [c.result["message_id"] for c in to_chat(bot, "sendPhoto", GROUP.id)]
    places = [c.result["message_id"] for c in to_chat(bot, "sendLocation", GROUP.id)]
    relayed = [c.result["message_id"] for c in to_chat(bot, "sendMessage", GROUP.id)
               if "我家门口" in c.params["text"]]
    assert photos and places and relayed
    async with bot.runtime.uow() as uow:
        await uow.drafts.start(RESIDENT.id, "report", "describe", {"description": "半截"},
                               bot.clock.now())
        await uow.commit()
    assert [t.kind for t in await _rows(bot, ScheduledTask, ScheduledTask.status == "pending",
                                        ScheduledTask.ticket_id == ticket_id)]

    question = await _ask_erasure(bot, RESIDENT)
    t = _t(bot)
    text = question.params["text"]
    assert t("<b>Erase your personal data?</b>") in text
    assert t("• Your {count} open ticket(s) will be withdrawn; the staff handling them are "
             "told.", count=1) in text
    assert len(_buttons(question)) == 2
    assert (await ticket_of(bot, ticket_id)).description == DESCRIPTION  # nothing yet

    await _confirm(bot, RESIDENT, question)
    done = bot.fake.last("editMessageText")
    assert done.params["chat_id"] == RESIDENT.id
    assert done.params["text"].startswith(t("Your personal data has been erased."))
    assert t("{count} open ticket(s) were withdrawn.", count=1) in done.params["text"]

    ticket = await ticket_of(bot, ticket_id)
    assert ticket.status == "withdrawn" and ticket.erased_at is not None
    assert (ticket.description, ticket.address, ticket.latitude, ticket.longitude) == (
        "", None, None, None)
    assert (ticket.reporter_id, ticket.reporter_name, ticket.reporter_phone) == (
        None, None, None)
    assert (ticket.category, ticket.grid_id is not None, ticket.number) == (
        "sanitation", True, number)
    assert await _rows(bot, TicketAttachment, TicketAttachment.ticket_id == ticket_id) == []
    assert await _rows(bot, TicketReporter, TicketReporter.ticket_id == ticket_id) == []
    assert await _rows(bot, User, User.id == RESIDENT.id) == []
    assert await _rows(bot, Draft, Draft.user_id == RESIDENT.id) == []
    assert await _rows(bot, ScheduledTask, ScheduledTask.status == "pending",
                       ScheduledTask.ticket_id == ticket_id) == []
    logged = await _rows(bot, TicketEvent, TicketEvent.ticket_id == ticket_id)
    dump = json.dumps([e.data for e in logged], ensure_ascii=False)
    for secret in ("我家门口", "13812345678", "请问具体位置"):
        assert secret not in dump, secret
    assert all(e.actor_id is None for e in logged if e.actor_role == "resident")
    [erased] = [e for e in logged if e.kind == "erased"]
    assert erased.data == {"scope": "ticket", "by": "request"} and erased.actor_id is None
    assert [e.kind for e in logged if e.kind == "withdrawn"] == ["withdrawn"]
    for row in await _rows(bot, OutboxMessage, OutboxMessage.chat_id == RESIDENT.id):
        assert row.params == {}

    bot.fake.clear()
    await deliver(bot)
    group_texts = bot.fake.sent_texts(GROUP.id)
    assert t("<b>No. {number}</b> was withdrawn: the resident had their personal data "
             "erased.", number=number).replace("<b>", "").replace("</b>", "") in group_texts
    shown = (await card_of(bot, ticket_id))["text"]
    assert t("🔒 The resident's personal data has been erased.") in shown
    for secret in ("垃圾", "东湖路", "张", "5678", "138"):
        assert secret not in shown, secret
    left = {m["message_id"] for m in bot.fake.messages_in(GROUP.id)}
    assert not left & set(photos + places + relayed)
    en = _t(bot, "en")
    assert en("<b>No. {number}</b> was withdrawn by the resident who reported it; it is "
              "closed now.", number=number).replace("<b>", "").replace("</b>", "") in (
        bot.fake.sent_texts(NEIGHBOUR.id))
    assert [c for c in bot.fake.calls if c.params.get("chat_id") == RESIDENT.id] == []

    # The group's history shows the erasure, not the words.
    await bot.send(bot.updates.callback(WORKER, f"tk:details:{ticket_id}",
                                        await card_of(bot, ticket_id)))
    history = bot.fake.last("sendMessage").params["text"]
    assert t("The resident had their personal data erased") in history
    assert "我家门口" not in history

    # Asking again finds nothing left, and a second press erases nothing twice.
    await _confirm(bot, RESIDENT, question)
    assert len(await _rows(bot, TicketEvent, TicketEvent.ticket_id == ticket_id,
                           TicketEvent.kind == "erased")) == 1
    await bot.send(bot.updates.command(RESIDENT, "/mytickets"))
    assert bot.last_text(RESIDENT.id) == t(
        "You have no tickets yet. To report an issue, open the main menu with /start.")


async def test_forged_foreign_and_stale_confirmations_erase_nothing(bot: BotEnv) -> None:
    await bind(bot, GROUP)
    ticket_id = await open_ticket(bot)
    question = await _ask_erasure(bot, RESIDENT)
    yes = next(data for data in _buttons(question) if data.startswith("dd:y:"))
    issued = int(yes.split(":")[2])
    t = _t(bot)
    invalid = t("This button is no longer valid.")

    for forged in (f"dd:y:{issued}:{'0' * 16}", f"dd:y:{issued + 60}:{yes.split(':')[3]}",
                   "dd:y:1:zz", "dd:x"):
        await bot.send(bot.updates.callback(RESIDENT, forged, question.result))
        assert await _alert(bot) == invalid, forged
    await bot.send(bot.updates.callback(STRANGER, yes, question.result))  # not theirs
    assert await _alert(bot) == invalid
    # A button offered in the future (a forged time with a valid MAC is impossible; this
    # is a clock set back) and one offered too long ago are both stale.
    bot.clock.advance(timedelta(minutes=16))
    await bot.send(bot.updates.callback(RESIDENT, yes, question.result))
    assert await _alert(bot) == t("This confirmation has expired. Send /deletemydata again "
                                  "if you still want your data erased.")
    assert (await ticket_of(bot, ticket_id)).description == DESCRIPTION

    await bot.send(bot.updates.callback(RESIDENT, "dd:n", question.result))
    assert bot.fake.last("editMessageText").params["text"] == t("Nothing was erased.")
    fresh = f"dd:y:{issued}:{_mac(bot.runtime, RESIDENT.id, issued)}"
    assert fresh == yes  # the MAC is the bot's: stable, and bound to the person
    assert (await ticket_of(bot, ticket_id)).erased_at is None


async def test_a_co_reporter_erases_their_part_and_the_ticket_stays_its_reporters(
        bot: BotEnv) -> None:
    await bind(bot, GROUP)
    await bot.send(bot.updates.command(NEIGHBOUR, "/start"))
    ticket_id = await open_ticket(bot, co_reporters=(NEIGHBOUR,))
    rt = bot.runtime
    rt.clock.advance(timedelta(minutes=5))
    async with rt.uow() as uow:
        ticket = await uow.tickets.get(ticket_id)
        await tickets.note_message(uow, rt.clock, ticket, actor_id=NEIGHBOUR.id,
                                   role="resident", kind="resident_message",
                                   text="Also the bins <3>", file=("photo", "AgAD-ann"))
        uow.session.add(TicketSurvey(ticket_id=ticket_id, user_id=NEIGHBOUR.id, round=0,
                                     status="answered", solved=True, score=5,
                                     comment="Ann's words", created_at=rt.clock.now(),
                                     answered_at=rt.clock.now()))
        await uow.commit()

    question = await _ask_erasure(bot, NEIGHBOUR)
    assert "withdrawn" not in question.params["text"]  # nothing of theirs is running
    await _confirm(bot, NEIGHBOUR, question)

    ticket = await ticket_of(bot, ticket_id)
    assert ticket.status == "open" and ticket.erased_at is None
    assert ticket.description == DESCRIPTION and ticket.reporter_id == RESIDENT.id
    assert await _rows(bot, TicketReporter, TicketReporter.ticket_id == ticket_id) == []
    files = [a.file_id for a in await _rows(bot, TicketAttachment,
                                             TicketAttachment.ticket_id == ticket_id)]
    assert files == ["AgAD-report-photo"]  # the reporter's photo stays, Ann's goes
    [survey] = await _rows(bot, TicketSurvey, TicketSurvey.ticket_id == ticket_id)
    assert (survey.user_id, survey.comment, survey.score) == (None, None, 5)
    logged = await _rows(bot, TicketEvent, TicketEvent.ticket_id == ticket_id)
    assert NEIGHBOUR.id not in {e.actor_id for e in logged}
    assert "Also the bins" not in json.dumps([e.data for e in logged])
    assert [e.data for e in logged if e.kind == "erased"] == [
        {"scope": "co_reporter", "by": "request"}]


async def test_resolved_tickets_close_and_their_follow_up_stops(bot: BotEnv) -> None:
    await bind(bot, GROUP)
    ticket_id = await open_ticket(bot)
    rt = bot.runtime
    async with rt.uow() as uow:
        await tickets.claim(uow, rt.clock, ticket_id, WORKER.id, "小王")
        ticket = await tickets.resolve(uow, rt.clock, ticket_id, WORKER.id, "已清理 张三家门口")
        await surveys.plan(uow, rt.clock, rt.config, ticket)
        await uow.commit()
    question = await _ask_erasure(bot, RESIDENT)
    t = _t(bot)
    assert t("• Your {count} resolved ticket(s) waiting for your follow-up answer will be "
             "closed.", count=1) in question.params["text"]
    await _confirm(bot, RESIDENT, question)
    ticket = await ticket_of(bot, ticket_id)
    assert (ticket.status, ticket.close_reason, ticket.resolution) == ("closed", "erased", None)
    assert ticket.resolved_at is not None  # it counts as resolved in the statistics
    [survey] = await _rows(bot, TicketSurvey, TicketSurvey.ticket_id == ticket_id)
    assert (survey.status, survey.user_id) == ("cancelled", None)
    assert await _rows(bot, ScheduledTask, ScheduledTask.status == "pending",
                       ScheduledTask.ticket_id == ticket_id) == []
    # The survey's own timer, had it been running, finds the ticket closed.
    bot.fake.clear()
    bot.clock.advance(timedelta(days=8))
    await bot.tick()
    await deliver(bot)
    assert to_chat(bot, "sendMessage", RESIDENT.id) == []


# -- retention ------------------------------------------------------------------------------------

async def test_the_retention_sweep_erases_old_tickets_once(db, catalogs) -> None:
    config = make_config(privacy={"personal_data_retention": "30d"})
    bot = await start_bot(db, catalogs, config=config)
    try:
        await bind(bot, GROUP)
        old = await open_ticket(bot)
        recent = await open_ticket(bot, STRANGER)
        running = await open_ticket(bot, NEIGHBOUR)
        rt = bot.runtime
        async with rt.uow() as uow:
            await tickets.withdraw(uow, rt.clock, old, RESIDENT.id, "不需要了")
            await uow.commit()
        bot.clock.advance(timedelta(days=20))
        async with rt.uow() as uow:
            await tickets.withdraw(uow, rt.clock, recent, STRANGER.id, "好了")
            await uow.commit()
        bot.clock.advance(timedelta(days=11))  # old: 31 days over, recent: 11
        await deliver(bot)
        bot.fake.clear()

        for _ in range(3):  # every process arms the day's sweep; it exists once
            await retention.arm(rt)
        assert len(await _rows(bot, ScheduledTask, ScheduledTask.kind == "retention")) == 1
        assert await bot.tick() >= 1
        assert (await ticket_of(bot, old)).erased_at is not None
        assert (await ticket_of(bot, old)).description == ""
        assert (await ticket_of(bot, recent)).description == DESCRIPTION
        assert (await ticket_of(bot, running)).erased_at is None
        [erased] = await events_of(bot, old, "erased")
        assert erased.data == {"scope": "ticket", "by": "retention"}
        assert erased.actor_role == "system"
        [action] = await _rows(bot, AdminAction, AdminAction.action == "retention_erase")
        assert (action.source, action.details) == ("system", {"tickets": 1, "retention": "30d"})

        await deliver(bot)
        edits = [c for c in to_chat(bot, "editMessageText", GROUP.id)]
        assert edits and "垃圾" not in edits[-1].params["text"]
        assert bot.fake.calls_to("deleteMessages") == []  # too old to delete: edited only

        # Later the same day nothing runs again; the next day the recent one is not due yet.
        await retention.arm(rt)
        assert await bot.tick() == 0
        bot.clock.advance(timedelta(days=1))
        await retention.arm(rt)
        await bot.tick()
        assert (await ticket_of(bot, recent)).erased_at is None
        assert len(await events_of(bot, old, "erased")) == 1
    finally:
        await stop_bot(bot)
    bot.fake.assert_no_violations()
    assert bot.errors == []


async def test_two_sweeps_at_once_erase_each_ticket_once(db, catalogs) -> None:
    config = make_config(privacy={"personal_data_retention": "1d"})
    bot = await start_bot(db, catalogs, config=config)
    try:
        rt = bot.runtime
        ids = [await open_ticket(bot, reporter) for reporter in (RESIDENT, STRANGER, NEIGHBOUR)]
        async with rt.uow() as uow:
            for ticket_id in ids:
                ticket = await uow.tickets.get(ticket_id)
                await tickets.withdraw(uow, rt.clock, ticket_id, ticket.reporter_id, "x")
            await uow.commit()
        bot.clock.advance(timedelta(days=2))

        async def sweep() -> int:
            async with rt.uow() as uow:
                done = await privacy.erase_expired(uow, rt.clock, rt.config, limit=10)
                await asyncio.sleep(0.05)  # hold the rows while the other sweep looks
                await uow.commit()
                return len(done)

        counts = await asyncio.gather(sweep(), sweep())
        assert sum(counts) == 3
        for ticket_id in ids:
            assert len(await events_of(bot, ticket_id, "erased")) == 1
    finally:
        await stop_bot(bot)


async def events_of(bot: BotEnv, ticket_id: int, kind: str) -> list[TicketEvent]:
    return await _rows(bot, TicketEvent, TicketEvent.ticket_id == ticket_id,
                       TicketEvent.kind == kind)


# -- the admin action log -------------------------------------------------------------------------

async def test_admin_actions_in_the_bot_are_logged_with_their_effect(bot: BotEnv) -> None:
    group = Chat(-1001000000888, "supergroup", title="东湖 <网格>")
    await bot.send(bot.updates.command(group, "/bind", "SFQ-DH-01-G1", user=WORKER))
    await bot.send(bot.updates.command(group, "/unbind", user=WORKER))
    assert await _rows(bot, AdminAction) == []  # refused: nothing happened, nothing logged

    await bot.send(bot.updates.command(group, "/bind", "SFQ-DH-01-G1", user=ADMIN))
    await bot.send(bot.updates.command(group, "/language", user=ADMIN))
    await bot.send(bot.updates.callback(ADMIN, "lang:en", bot.fake.last("sendMessage").result))
    await bot.send(bot.updates.command(group, "/unbind", user=ADMIN))
    await bot.send(bot.updates.command(group, "/unbind", user=ADMIN))  # nothing to unbind

    rows = await _rows(bot, AdminAction)
    assert [(r.action, r.source, r.actor_id, r.target) for r in rows] == [
        ("bind", "telegram", ADMIN.id, f"group:{group.id}"),
        ("group_language", "telegram", ADMIN.id, f"group:{group.id}"),
        ("unbind", "telegram", ADMIN.id, f"group:{group.id}"),
    ]
    assert rows[0].details == {"node": "SFQ-DH-01-G1"}
    assert rows[1].details == {"language": "en", "previous": "zh_Hans"}
    assert rows[2].details == {"node": "SFQ-DH-01-G1"}
    assert "网格" not in json.dumps([r.details for r in rows], ensure_ascii=False)


async def test_slot_management_is_logged(bot: BotEnv) -> None:
    desk = Chat(-1008300000009, "supergroup", title="公共法律服务")
    await bot.send(bot.updates.command(desk, "/bind", "legal", user=ADMIN))
    lawyer = WORKER
    bot.fake.set_member(desk.id, lawyer.id, "member")
    await bot.send(bot.updates.command(desk, "/slots", "add", "2026-12-01", "09:00-11:00",
                                       "60m", "2", user=lawyer))
    await bot.send(bot.updates.command(desk, "/slots", user=lawyer))
    listing = bot.fake.last("sendMessage")
    close = next(d for d in _buttons(listing) if d.startswith("bk:sc:"))
    await bot.send(bot.updates.callback(lawyer, close, listing.result))

    added, closed = [r for r in await _rows(bot, AdminAction) if r.action != "bind"]
    assert (added.action, added.actor_id, added.target) == ("slots_add", lawyer.id, "desk:legal")
    assert added.details["count"] == 2 and added.details["places"] == 2
    assert (added.details["first"], added.details["last"]) == (
        "2026-12-01T09:00:00+08:00", "2026-12-01T10:00:00+08:00")
    assert (closed.action, closed.target) == ("slot_close", close.replace("bk:sc:", "slot:"))
    assert closed.details["bookings"] == 0
    assert closed.details["starts_at"] == "2026-12-01T09:00:00+08:00"


async def test_the_log_reads_back_oldest_first_and_the_latest_n(bot: BotEnv) -> None:
    rt = bot.runtime
    async with rt.uow() as uow:
        for n in range(3):
            audit.record(uow, rt.clock, audit.Actor.cli("ops"), "grids_import",
                         target=f"f{n}.geojson", created=n)
            rt.clock.advance(timedelta(hours=1))
        await uow.commit()
    async with rt.uow() as uow:
        every = await audit.entries(uow)
        latest = await audit.entries(uow, limit=2)
        since = await audit.entries(uow, rt.clock.now() - timedelta(minutes=90))
    assert [r.target for r in every] == ["f0.geojson", "f1.geojson", "f2.geojson"]
    assert [r.target for r in latest] == ["f1.geojson", "f2.geojson"]
    assert [r.target for r in since] == ["f2.geojson"]
    assert audit.actor_of(every[0]).label == "cli:ops"



# -- bookings, moved tickets, enterprises ----------------------------------------------------------

DESK_GROUP = Chat(-1008300000019, "supergroup", title="公共法律服务")
STREET_GROUP = Chat(-1001000000319, "supergroup", title="东湖街道")


async def _enterprise(bot: BotEnv, user, *, code: str = "91110108551385082Q") -> int:
    rt = bot.runtime
    now = rt.clock.now()
    async with rt.uow() as uow:
        enterprise = Enterprise(name="Acme <Ltd>", credit_code=code, industry="it",
                                invite_code="INVA", created_by=user.id, consent_at=now,
                                created_at=now, updated_at=now)
        uow.session.add(enterprise)
        await uow.session.flush()
        uow.session.add(EnterpriseContact(enterprise_id=enterprise.id, user_id=user.id,
                                          name="Ann Contact", phone="13900001111",
                                          role="owner", added_at=now))
        await uow.commit()
        return enterprise.id


async def test_a_booking_still_to_come_is_cancelled_and_its_place_freed(bot: BotEnv) -> None:
    await bind(bot, DESK_GROUP, code="legal")
    enterprise_id = await _enterprise(bot, NEIGHBOUR)
    rt = bot.runtime
    async with rt.uow() as uow:
        desk = await bookings.desk(uow, rt.config)
        plan = bookings.SlotPlan((date(2026, 11, 26),), time(10), time(11), timedelta(hours=1),
                                 2)
        [slot], _ = await bookings.add_slots(uow, rt.clock, rt.config, desk.id, plan, WORKER.id)
        change = await bookings.book(uow, rt.clock, rt.config, user_id=NEIGHBOUR.id,
                                     enterprise_id=enterprise_id, topics=["contracts"],
                                     slot_id=slot.id, language="en")
        await Notifier(rt, uow).post_card(change.ticket)
        await uow.commit()
        ticket_id, slot_id = change.ticket.id, slot.id
    await deliver(bot)
    # Within the cut-off the enterprise itself could no longer cancel; erasure still does.
    bot.clock.set(datetime(2026, 11, 26, 1, 30, tzinfo=UTC))  # 09:30 local, 30 min before

    question = await _ask_erasure(bot, NEIGHBOUR)
    en = _t(bot, "en")
    assert en("• Your {count} check-up booking(s) still to come will be cancelled, and their "
              "places freed.", count=1) in question.params["text"]
    assert en("• {count} enterprise(s) will have no contact left; they can be registered "
              "again.", count=1) in question.params["text"]
    await _confirm(bot, NEIGHBOUR, question)
    assert en("{count} check-up booking(s) were cancelled.", count=1) in (
        bot.fake.last("editMessageText").params["text"])

    async with rt.uow() as uow:
        booking = await uow.bookings.of_ticket(ticket_id)
        slot = await uow.bookings.slot(slot_id)
        ticket = await uow.tickets.get(ticket_id)
    assert (booking.status, booking.booked_by, slot.booked) == ("cancelled", None, 0)
    assert (ticket.status, ticket.erased_at is not None) == ("withdrawn", True)
    assert await _rows(bot, EnterpriseContact) == []
    [enterprise] = await _rows(bot, Enterprise)
    assert enterprise.created_by is None and enterprise.name == "Acme <Ltd>"
    assert await _rows(bot, ScheduledTask, ScheduledTask.status == "pending",
                       ScheduledTask.ticket_id == ticket_id) == []
    await deliver(bot)
    t = _t(bot)
    assert any(text.startswith("✖️") and ticket.number in text
               for text in bot.fake.sent_texts(DESK_GROUP.id))
    assert t("🔒 The resident's personal data has been erased.") in (
        await card_of(bot, ticket_id))["text"]

    # Nobody acts for the enterprise now: whoever registers its code again takes it on.
    async with rt.uow() as uow:
        form = enterprises.Form(enterprises.FLOW, enterprises.Step.SUMMARY, {
            "name": "Acme New", "credit_code": "91110108551385082Q", "industry": "it",
            "node_id": (await uow.nodes.by_code("SFQ-DH")).id, "contact_name": "Bo",
            "phone": "13700001111", "consent_at": rt.clock.now().isoformat()})
        registered = await enterprises.register(uow, rt.clock, rt.config, form,
                                                user_id=STRANGER.id)
        await uow.commit()
    assert registered.result is enterprises.Registered.DONE
    assert registered.enterprise.id == enterprise.id
    [contact] = await _rows(bot, EnterpriseContact)
    assert (contact.user_id, contact.role) == (STRANGER.id, "owner")
    [enterprise] = await _rows(bot, Enterprise)
    assert (enterprise.name, enterprise.created_by) == ("Acme New", STRANGER.id)
    assert enterprise.invite_code != "INVA"  # the old code may be known to others


async def test_an_owner_who_leaves_hands_on_the_role(bot: BotEnv) -> None:
    enterprise_id = await _enterprise(bot, NEIGHBOUR)
    rt = bot.runtime
    async with rt.uow() as uow:
        uow.session.add(EnterpriseContact(enterprise_id=enterprise_id, user_id=STRANGER.id,
                                          name="Colleague", phone="13700001111",
                                          role="contact", added_at=rt.clock.now()))
        await uow.commit()
    question = await _ask_erasure(bot, NEIGHBOUR)
    assert "registered again" not in question.params["text"]
    await _confirm(bot, NEIGHBOUR, question)
    [contact] = await _rows(bot, EnterpriseContact)
    assert (contact.user_id, contact.role) == (STRANGER.id, "owner")


async def test_cards_in_groups_the_ticket_left_are_shown_again_without_the_data(
        bot: BotEnv) -> None:
    await bind(bot, GROUP)
    await bind(bot, STREET_GROUP, code="SFQ-DH")
    ticket_id = await _report(bot)
    first_card = await card_of(bot, ticket_id)
    rt = bot.runtime
    async with rt.uow() as uow:
        ticket = await uow.tickets.get(ticket_id)
        old_chat, old_card = ticket.group_chat_id, ticket.card_message_id
        ticket, _, _ = await tickets.move(uow, rt.clock, rt.config, ticket_id, to_node_id=None,
                                          actor_id=WORKER.id, role="worker", reason="太远",
                                          kind="escalated")
        notifier = Notifier(rt, uow)
        await notifier.retire_card(ticket, chat_id=old_chat, message_id=old_card,
                                   note="moved on")
        await notifier.post_card(ticket)
        await uow.commit()
    await deliver(bot)
    assert DESCRIPTION[:4] in bot.fake.server.messages[(GROUP.id, first_card["message_id"])][
        "text"]

    await _confirm(bot, RESIDENT, await _ask_erasure(bot, RESIDENT))
    await deliver(bot)
    old = bot.fake.server.messages[(GROUP.id, first_card["message_id"])]
    new = await card_of(bot, ticket_id)
    assert new["chat"]["id"] == STREET_GROUP.id
    for shown in (old["text"], new["text"]):
        assert DESCRIPTION[:4] not in shown and "东湖路" not in shown
        assert _t(bot)("🔒 The resident's personal data has been erased.") in shown
    assert not (old.get("reply_markup") or {}).get("inline_keyboard")
    # What the outbox kept of the cards' texts is gone too.
    for row in await _rows(bot, OutboxMessage):
        assert DESCRIPTION[:4] not in json.dumps(row.params, ensure_ascii=False) or (
            row.status == "pending")


# -- the migration ---------------------------------------------------------------------------------

async def test_the_migration_keeps_existing_rows_on_both_databases(tmp_path) -> None:
    for backend in BACKENDS:
        if backend == "sqlite":
            db = create_database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
            try:
                await _migrate_with_rows(db)
            finally:
                await db.dispose()
        else:
            async with pg_schema() as db:
                await _migrate_with_rows(db)


async def _migrate_with_rows(db) -> None:
    await migrate.upgrade(db, "0006")
    at = "2026-01-01 00:00:00+00"
    async with db.engine.begin() as conn:
        for statement in (
            "INSERT INTO org_node (id, code, level, name, created_at, updated_at) "
            f"VALUES (1, 'D', 'district', 'd', '{at}', '{at}')",
            "INSERT INTO ticket (id, number, kind, category, status, urgent, description, "
            "node_id, reporter_id, anonymous, language, created_at, updated_at, "
            "missed_deadline, reopen_count, details) VALUES (1, '0101-0001', 'report', 'x', "
            f"'closed', false, 'words', 1, 5, false, 'en', '{at}', '{at}', false, 0, '{{}}')",
            "INSERT INTO ticket_event (id, ticket_id, at, kind, actor_role, data) "
            f"VALUES (1, 1, '{at}', 'created', 'resident', '{{}}')",
            "INSERT INTO ticket_survey (id, ticket_id, user_id, round, status, created_at) "
            f"VALUES (1, 1, 5, 0, 'answered', '{at}')",
        ):
            await conn.execute(text(statement))
    await migrate.upgrade(db)
    async with db.engine.begin() as conn:
        assert (await conn.execute(text("SELECT reporter_id FROM ticket"))).scalar() == 5
        assert (await conn.execute(text("SELECT count(*) FROM ticket_event"))).scalar() == 1
        await conn.execute(text("UPDATE ticket SET reporter_id = NULL"))
        await conn.execute(text("UPDATE ticket_survey SET user_id = NULL"))

    def diff(connection):
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
