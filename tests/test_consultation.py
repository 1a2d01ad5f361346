"""Legal consultations and enterprise matters, through the real
Application: the resident's flow, the card in the desk's group, the lawyer's answer, the
resolution the resident receives, and the follow-up survey."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.views.cards import day_label
from storage.models import Enterprise, EnterpriseContact, Ticket
from tests.harness import ADMIN, BotEnv
from tests.telegram_fake import Chat, User
from tests.test_report_flow import alert, press

SHANGHAI = ZoneInfo("Asia/Shanghai")
RESIDENT = User(830_001, "居民<甲>", language_code="zh-hans")
BOSS = User(830_002, "Boss", language_code="en")
STRANGER = User(830_003, "Stranger", language_code="en")
LAWYER = User(830_101, "王律师", language_code="zh-hans")
LEGAL_GROUP = Chat(-1008300000001, "supergroup", title="公共法律服务")
ENTERPRISE_GROUP = Chat(-1008300000002, "supergroup", title="企业服务")
QUESTION = "公司拖欠我三个月工资，我应该怎么维权？"


async def _bind(bot: BotEnv) -> None:
    await bot.send(bot.updates.command(LEGAL_GROUP, "/bind", "legal", user=ADMIN))
    await bot.send(bot.updates.command(ENTERPRISE_GROUP, "/bind", "enterprise", user=ADMIN))
    bot.fake.set_member(LEGAL_GROUP.id, LAWYER.id, "member")


def _card(bot: BotEnv, chat: Chat):
    return next(c for c in reversed(bot.fake.calls_to("sendMessage"))
                if c.params["chat_id"] == chat.id and c.params.get("reply_markup"))


async def _ticket(bot: BotEnv, user: User) -> Ticket:
    async with bot.runtime.uow() as uow:
        return await uow.session.scalar(select(Ticket).where(Ticket.reporter_id == user.id))


async def test_consultation_answered_by_call_back_then_resolved_and_surveyed(
        bot: BotEnv) -> None:
    await _bind(bot)
    await bot.send(bot.updates.command(RESIDENT, "/start"))
    await press(bot, RESIDENT, "rp:new:consultation")
    await press(bot, RESIDENT, "rp:cat:legal_labour")
    await bot.send(bot.updates.private_text(RESIDENT, QUESTION))
    await press(bot, RESIDENT, "rp:way:call")
    await bot.send(bot.updates.document(RESIDENT))  # a PDF of the labour contract
    # A call-back needs the number: there is no Skip, and a forged one explains why.
    await bot.send(bot.updates.callback(RESIDENT, "rp:skip:contact",
                                        bot.fake.last("sendMessage").result))
    assert "电话号码" in bot.last_text(RESIDENT.id)  # asked again with the other choices
    await bot.send(bot.updates.contact(RESIDENT, "+86 139 0000 1234", user_id=RESIDENT.id))
    assert QUESTION in bot.last_text(RESIDENT.id)  # the summary
    await press(bot, RESIDENT, "rp:submit")
    ticket = await _ticket(bot, RESIDENT)
    assert ticket.kind == "consultation" and ticket.grid_id is None
    assert ticket.details == {"way": "call", "call_consent": True}
    await bot.deliver()

    # The legal desk's group gets the card with the whole number (the resident asked for a
    # call) and the document.
    card = _card(bot, LEGAL_GROUP)
    assert QUESTION in card.params["text"] and "+86 139 0000 1234" in card.params["text"]
    assert "居民&lt;甲&gt;" in card.params["text"]
    assert any(c.params["chat_id"] == LEGAL_GROUP.id for c in bot.fake.calls_to("sendDocument"))

    # A lawyer claims, answers through the bot, and resolves with a summary.
    await bot.send(bot.updates.callback(LAWYER, f"tk:claim:{ticket.id}", card.result))
    await bot.send(bot.updates.group_text(LEGAL_GROUP, LAWYER, "可以申请劳动仲裁，请保留工资条",
                                          reply_to=card.result))
    await bot.deliver()
    relayed = bot.fake.sent_texts(RESIDENT.id)[-1]
    assert "可以申请劳动仲裁" in relayed and str(LAWYER.id) not in relayed
    await bot.send(bot.updates.callback(LAWYER, f"tk:resolve:{ticket.id}", card.result))
    prompt = next(c for c in reversed(bot.fake.calls_to("sendMessage"))
                  if c.params["chat_id"] == LEGAL_GROUP.id
                  and c.params.get("reply_markup", {}).get("force_reply"))
    await bot.send(bot.updates.group_text(LEGAL_GROUP, LAWYER, "已电话答复：建议先协商，再申请仲裁",
                                          reply_to=prompt.result))
    await bot.deliver()
    assert "建议先协商" in bot.fake.sent_texts(RESIDENT.id)[-1]

    # Two hours later (not in quiet hours) the follow-up survey asks the resident.
    bot.clock.advance(timedelta(hours=2))
    assert await bot.tick() == 1
    await bot.deliver()
    assert "sv:" in str(bot.fake.last("sendMessage").params.get("reply_markup"))


async def test_a_chat_consultation_shows_only_a_masked_phone(bot: BotEnv) -> None:
    await _bind(bot)
    await bot.send(bot.updates.command(RESIDENT, "/consult"))
    await press(bot, RESIDENT, "rp:cat:legal_family")
    await bot.send(bot.updates.private_text(RESIDENT, "离婚后孩子的抚养权怎么判？"))
    await press(bot, RESIDENT, "rp:way:chat")
    await bot.send(bot.updates.sticker(RESIDENT))  # not a document
    assert "PDF" in bot.last_text(RESIDENT.id)
    await press(bot, RESIDENT, "rp:skip:media")
    await bot.send(bot.updates.contact(RESIDENT, "+86 139 0000 1234", user_id=RESIDENT.id))
    await press(bot, RESIDENT, "rp:submit")
    await bot.deliver()
    text = _card(bot, LEGAL_GROUP).params["text"]
    assert "139****1234" in text and "0000" not in text


async def test_an_in_person_consultation_picks_a_working_day(bot: BotEnv) -> None:
    # Monday 23 November 2026: the days offered start on Tuesday and skip the weekend.
    await _bind(bot)
    await bot.send(bot.updates.command(RESIDENT, "/consult"))
    await press(bot, RESIDENT, "rp:cat:legal_housing")
    await bot.send(bot.updates.private_text(RESIDENT, "房东不退押金，我能起诉吗？"))
    t = bot.runtime.translator("zh_Hans")
    assert t("Step {step} of {total}", step=3, total=5) in bot.last_text(RESIDENT.id)
    await press(bot, RESIDENT, "rp:way:visit")
    # The day belongs to the way of answering: no number of its own, and the count of
    # steps stays what it was (no "of 6" from here on).
    assert not any(t("Step {step} of {total}", step=n, total=total) in bot.last_text(RESIDENT.id)
                   for n in range(1, 7) for total in (5, 6))
    days = [b["callback_data"] for row in bot.fake.last("sendMessage").params["reply_markup"][
        "inline_keyboard"] for b in row if b["callback_data"].startswith("rp:day:")]
    assert days[:5] == ["rp:day:2026-11-24", "rp:day:2026-11-25", "rp:day:2026-11-26",
                        "rp:day:2026-11-27", "rp:day:2026-11-30"]
    labels = [b["text"] for row in bot.fake.last("sendMessage").params["reply_markup"][
        "inline_keyboard"] for b in row if b["callback_data"].startswith("rp:day:")]
    assert labels[0] == day_label(t, "2026-11-24")
    message = bot.fake.last("sendMessage").result
    await bot.send(bot.updates.callback(RESIDENT, "rp:day:2026-11-28", message))  # Saturday
    assert alert(bot)
    await press(bot, RESIDENT, "rp:day:2026-11-26")
    assert any(t("Step {step} of {total}", step=4, total=5) in text
               for text in bot.texts(RESIDENT.id)[-2:])
    await press(bot, RESIDENT, "rp:skip:media")
    assert any(t("Step {step} of {total}", step=5, total=5) in text
               for text in bot.texts(RESIDENT.id)[-2:])
    await press(bot, RESIDENT, "rp:skip:contact")
    await press(bot, RESIDENT, "rp:submit")
    ticket = await _ticket(bot, RESIDENT)
    assert ticket.details == {"way": "visit", "visit_day": "2026-11-26"}
    await bot.deliver()
    # The workers read the day as the resident picked it, not as it is stored.
    assert day_label(t, "2026-11-26") == "11-26 (" + t("Thu") + ")"
    card = _card(bot, LEGAL_GROUP).params["text"]
    assert day_label(t, "2026-11-26") in card and "2026-11-26" not in card


async def _enterprise(bot: BotEnv, name: str, code: str, *contacts: User) -> int:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    async with bot.runtime.uow() as uow:
        enterprise = Enterprise(name=name, credit_code=code, industry="manufacturing",
                                invite_code=code[-8:], created_by=contacts[0].id,
                                consent_at=now, created_at=now, updated_at=now)
        uow.session.add(enterprise)
        await uow.session.flush()
        for user in contacts:
            uow.session.add(EnterpriseContact(enterprise_id=enterprise.id, user_id=user.id,
                                              name=user.first_name, phone="13800000000",
                                              role="owner", added_at=now))
        await uow.commit()
        return enterprise.id


async def test_an_enterprise_matter_goes_to_the_enterprise_desk_with_the_enterprise(
        bot: BotEnv) -> None:
    await _bind(bot)
    first = await _enterprise(bot, "东湖<精密>制造有限公司", "91310000MA1FL0000A", BOSS)
    await _enterprise(bot, "Second Ltd", "91310000MA1FL0001B", BOSS)
    others = await _enterprise(bot, "Other Co", "91310000MA1FL0002C", STRANGER)
    await bot.send(bot.updates.command(BOSS, "/matter"))
    # Two enterprises: which one? Another's enterprise cannot be chosen by forged data.
    message = bot.fake.last("sendMessage").result
    await bot.send(bot.updates.callback(BOSS, f"rp:ent:{others}", message))
    assert alert(bot)
    await press(bot, BOSS, f"rp:ent:{first}")
    await bot.send(bot.updates.private_text(BOSS, "A supplier has not paid for three months."))
    await press(bot, BOSS, "rp:skip:media")
    await press(bot, BOSS, "rp:skip:contact")
    await press(bot, BOSS, "rp:submit")
    ticket = await _ticket(bot, BOSS)
    assert (ticket.kind, ticket.enterprise_id) == ("enterprise_dispute", first)
    await bot.deliver()
    text = _card(bot, ENTERPRISE_GROUP).params["text"]
    assert "东湖&lt;精密&gt;制造有限公司" in text and "three months" in text


async def test_someone_without_an_enterprise_is_told_to_register(bot: BotEnv) -> None:
    await bot.send(bot.updates.command(STRANGER, "/matter"))
    assert "/enterprise" in bot.last_text(STRANGER.id)
    async with bot.runtime.uow() as uow:
        assert await uow.drafts.any_of(STRANGER.id) is None
