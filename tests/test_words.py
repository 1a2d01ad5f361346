"""What the bot says, as words a person reads: durations in the person's language, Traditional
Chinese as it is written, buttons and commands that a text names actually being there."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from telegram.ext import CommandHandler

from bot.config import load_config
from bot.i18n import Catalogs, format_duration, format_names
from bot.sandbox.apispec import html_visible_text
from bot.views import menu
from bot.views.cards import topic_names
from locales import tools
from tests import test_booking as booking
from tests import test_consultation as consultation
from tests import test_deadlines as deadlines
from tests import test_survey as survey
from tests.harness import ADMIN, BotEnv
from tests.telegram_fake import Chat, User
from tests.test_consultation import QUESTION
from tests.test_report_flow import INSIDE, OTHER, TEXT, press

RESIDENT = User(870_001, "居民", language_code="zh-hans")
EN_RESIDENT = User(870_002, "Resident", language_code="en")
GROUP = Chat(-1008700000001, "supergroup", title="东湖一社区第1网格")


@pytest.mark.parametrize(("value", "approximate", "words"), [
    (timedelta(hours=1, minutes=30), False,
     ("1小时30分钟", "1 小時 30 分鐘", "1 hour, 30 minutes")),
    (timedelta(minutes=15), False, ("15分钟", "15 分鐘", "15 minutes")),
    (timedelta(days=1), False, ("1天", "1 天", "1 day")),
    (timedelta(hours=12), False, ("12小时", "12 小時", "12 hours")),
    # Measured times: the two largest units, whole minutes once past a minute.
    (timedelta(minutes=1, seconds=1), True, ("1分钟", "1 分鐘", "1 minute")),
    (timedelta(seconds=45), True, ("45秒钟", "45 秒", "45 seconds")),
    (timedelta(hours=9, minutes=40, seconds=20), True, ("9小时40分钟", "9 小時 40 分鐘",
                                                         "9 hours, 40 minutes")),
    (timedelta(days=2, hours=3, minutes=50), True, ("2天4小时", "2 天 4 小時", "2 days, 4 hours")),
    (timedelta(seconds=-3), True, ("0秒钟", "0 秒", "0 seconds")),
])
def test_durations_are_words_of_the_persons_language(value, approximate, words) -> None:
    catalogs = Catalogs.load()
    assert tuple(format_duration(value, language, approximate=approximate)
                 for language in ("zh_Hans", "zh_Hant", "en")) == words
    assert tuple(catalogs[language].duration(value, approximate=approximate)
                 for language in ("zh_Hans", "zh_Hant", "en")) == words


# -- texts that name a button name one the person has ------------------------------------------

# "点击“跳过”", "按「略過」", "press “Skip”", "choose Skip": the name a text tells people to press.
_PRESS = re.compile(r"(?:点击|点|按|选择|點擊|點|選擇|press|choose|tap)\s*"
                    r"(?:[“「\"]([^”」\"{}]+)[”」\"]|\b([A-Z]\w+))")


def _bare(label: str) -> str:
    """A button's words without its emoji: "✅ 提交" -> "提交"."""
    return re.sub(r"^\W+", "", label).strip()


def _named(text: str) -> list[str]:
    return [quoted or plain for quoted, plain in _PRESS.findall(text)]


def _labels(call) -> set[str]:
    markup = call.params.get("reply_markup") or {}
    rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
    return {_bare(b["text"] if isinstance(b, dict) else b) for row in rows for b in row}


def _to(bot: BotEnv, chat_id: int) -> list:
    return [c for c in bot.fake.calls if c.method in ("sendMessage", "editMessageText")
            and c.params.get("chat_id") == chat_id]


async def _act(bot: BotEnv, user: User, update) -> None:
    """Send ``update``; every button a reply names is on that reply's keyboards or on the
    question it answers (the last two messages before it)."""
    before = _to(bot, user.id)
    await bot.send(update)
    batch = _to(bot, user.id)[len(before):]
    on_screen = set().union(*map(_labels, before[-2:] + batch))
    for call in batch:
        for name in _named(call.params.get("text", "")):
            assert any(label.startswith(name) for label in on_screen), (
                f"{call.params['text']!r} names {name!r}; the buttons are {sorted(on_screen)}")


async def test_a_call_back_consultation_is_never_told_to_press_skip(bot: BotEnv) -> None:
    for user in (RESIDENT, EN_RESIDENT):
        await _act(bot, user, bot.updates.command(user, "/consult"))
        await press(bot, user, "rp:cat:legal_labour")
        await _act(bot, user, bot.updates.private_text(user, QUESTION))
        await press(bot, user, "rp:way:call")
        await _act(bot, user, bot.updates.private_text(user, "not a document"))
        await _act(bot, user, bot.updates.document(user))
        # At the phone number step of a call-back there is no Skip: wrong answers say so.
        await _act(bot, user, bot.updates.private_text(user, "13900000000"))
        await _act(bot, user, bot.updates.contact(user, "+86 139 0000 0000", user_id=OTHER.id))
        await _act(bot, user, bot.updates.contact(user, "+86 139 0000 1234", user_id=user.id))
        assert "rp:submit" in str(bot.fake.last("sendMessage").params.get("reply_markup"))


async def test_media_step_names_the_button_it_shows(bot: BotEnv) -> None:
    for user in (RESIDENT, EN_RESIDENT):
        await _act(bot, user, bot.updates.command(user, "/report"))
        await press(bot, user, "rp:cat:sanitation")
        await _act(bot, user, bot.updates.private_text(user, TEXT))
        await _act(bot, user, bot.updates.sticker(user))  # the first button is Skip
        await _act(bot, user, bot.updates.photo(user))
        # Back at the photos, with one sent: the first button now keeps it.
        await _act(bot, user, bot.updates.callback(user, "rp:back:place",
                                                   bot.fake.last("sendMessage").result))
        await _act(bot, user, bot.updates.sticker(user))
        await _act(bot, user, bot.updates.location(user, *INSIDE))
        await _act(bot, user, bot.updates.private_text(user, "13900000000"))  # Skip is there


def _catalog(language: str):
    return tools.read(tools.po_path(language), tools.LANGUAGES[language])


@pytest.mark.parametrize("language", ["zh_Hans", "zh_Hant", "en"])
def test_button_names_quoted_in_texts_are_the_buttons_own_words(language) -> None:
    """Where a text quotes a button, the words are that button's translation: a text saying
    点击“跳过” beside a button 略過 sends people looking for something that is not there."""
    strings = [s or m.id for m in _catalog(language) if m.id
               for s in (m.string if isinstance(m.string, tuple) else (m.string,))]
    labels = {_bare(s) for s in strings if isinstance(s, str) and len(_bare(s)) <= 40}
    wrong = [(name, text) for text in strings if isinstance(text, str)
             for name in _named(text) if not any(label.startswith(name) for label in labels)]
    assert wrong == []


# -- Traditional Chinese as it is written, not as a converter leaves it -------------------------

# What a character-by-character Simplified -> Traditional conversion leaves behind, beside what a
# Taiwan or Hong Kong reader expects.
CONVERSION_ARTEFACTS = {
    "程式碼": "代碼 (代码 is a code, not program source)",
    "不透過": "未通過 / 不通過 (通过 is to pass, not to go through)",
    "回複": "回覆",
    "回復": "回覆 (回復 is to restore)",
    "服務檯": "服務台 / 櫃檯",
    "賬號": "帳號",
    "併為": "並為",
    "專案": "項目 (a topic, not a project)",
    "登出登記": "註銷登記",
    "信息": "資訊 / 資料",
    "軟件": "軟體",
    "數據": "資料",
    "視頻": "影片",
    "默認": "預設",
    "菜單": "選單",
    "用戶": "使用者",
    "網絡": "網路",
    "短信": "簡訊",
    "知識產權": "智慧財產權",
    "“": "「",
    "”": "」",
}


def _artefacts(texts) -> list[tuple[str, str]]:
    return [(text, found) for text in texts for found in CONVERSION_ARTEFACTS if found in text]


def test_traditional_chinese_texts_have_no_conversion_artefacts() -> None:
    texts = [s for m in _catalog("zh_Hant") if m.id
             for s in (m.string if isinstance(m.string, tuple) else (m.string,))]
    assert _artefacts(texts) == []


def test_the_example_configurations_traditional_names_have_no_conversion_artefacts() -> None:
    config = load_config(tools.ROOT / "bot" / "data" / "gridgate.example.toml", environ={})
    entries = [*config.desks, *config.categories, *config.checkup_topics, *config.industries]
    assert all(entry.names.zh_Hant and entry.names.en for entry in entries)
    assert _artefacts(entry.names.zh_Hant for entry in entries) == []


# -- texts reused across kinds of tickets say what this one is ----------------------------------

async def test_a_consultation_is_called_a_consultation_and_a_desk_is_not_a_grid(
        bot: BotEnv) -> None:
    t = bot.runtime.translator("zh_Hans")
    await consultation._bind(bot)
    await bot.send(bot.updates.command(RESIDENT, "/consult"))
    await press(bot, RESIDENT, "rp:cat:legal_family")
    await bot.send(bot.updates.private_text(RESIDENT, "离婚后孩子的抚养权怎么判？"))
    await press(bot, RESIDENT, "rp:way:chat")
    await press(bot, RESIDENT, "rp:skip:media")
    await bot.send(bot.updates.contact(RESIDENT, "+86 139 0000 1234", user_id=RESIDENT.id))
    await press(bot, RESIDENT, "rp:submit")
    await bot.deliver()
    ticket = await consultation._ticket(bot, RESIDENT)

    # Unclaimed for half an hour: the legal desk's group is not told about "this grid".
    bot.clock.advance(timedelta(minutes=30))
    assert await bot.tick() == 1
    await bot.deliver()
    reminder = bot.last_text(consultation.LEGAL_GROUP.id)
    assert reminder == html_visible_text(t(
        "⏰ <b>No. {number}</b> has waited {waited} and nobody has claimed it yet. Please "
        "claim it, or transfer it if it is not for this desk.", number=ticket.number,
        waited="30分钟"))
    assert "网格" not in reminder

    card = consultation._card(bot, consultation.LEGAL_GROUP)
    await bot.send(bot.updates.callback(consultation.LAWYER, f"tk:claim:{ticket.id}",
                                        card.result))
    await bot.deliver()
    told = bot.last_text(RESIDENT.id)
    assert t("{role} {name} has taken on {request}.", role="公共法律服务",
             name=consultation.LAWYER.first_name, request="您的咨询") in told
    assert "报事" not in told and "反映" not in told


# -- commands people can find ------------------------------------------------------------------

def _answered_commands(bot: BotEnv) -> set[str]:
    return {command for handlers in bot.app.handlers.values() for handler in handlers
            if isinstance(handler, CommandHandler) for command in handler.commands}


async def test_every_command_the_bot_answers_is_in_a_menu_in_help_and_in_the_readme(
        bot: BotEnv) -> None:
    private = {name for name, _ in menu.PRIVATE_COMMANDS}
    group = {name for name, _ in menu.GROUP_COMMANDS}
    assert _answered_commands(bot) == private | group
    assert {"consult", "matter"} <= private and "slots" in group

    await bot.send(bot.updates.command(EN_RESIDENT, "/help"))
    shown = bot.last_text(EN_RESIDENT.id)
    assert all(re.search(rf"^/{name}\b", shown, re.M) for name in private), shown
    await bot.send(bot.updates.command(GROUP, "/help", user=ADMIN))
    shown = bot.last_text(GROUP.id)
    assert all(re.search(rf"^/{name}\b", shown, re.M) for name in group), shown
    assert "/bind CODE — " in shown

    readme = (tools.ROOT / "README.md").read_text("utf-8")
    assert [name for name in sorted(private | group) if f"`/{name}" not in readme] == []


def test_several_names_are_joined_as_the_language_joins_them() -> None:
    names = ["A", "B", "C"]
    assert [format_names(names, language) for language in ("zh_Hans", "zh_Hant", "en")] == [
        "A、B和C", "A、B和C", "A, B, C"]
    config = load_config(tools.ROOT / "bot" / "data" / "gridgate.example.toml", environ={})
    assert topic_names(config, ["labour_employment", "contracts"], "en") == (
        "Labour and employment, Contracts")


@pytest.mark.parametrize("language", ["zh_Hans", "zh_Hant"])
def test_a_button_a_text_names_is_quoted_in_its_own_translation(language) -> None:
    """"Press Register to finish" names the button ✅ Register: its translation quotes that
    button's translation (点“登记”), not another word for it."""
    template = [m for m in tools.read(tools.template_path()) if isinstance(m.id, str) and m.id]
    labels = [m.id for m in template if len(_bare(m.id)) <= 40]
    catalog = _catalog(language)

    def translated(msgid: str) -> str:
        return catalog.get(msgid).string or msgid

    wrong = []
    for message in template:
        for name in _named(message.id):
            buttons = [_bare(translated(label)) for label in labels
                       if _bare(label).startswith(name)]
            quoted = _named(translated(message.id))
            if not any(button.startswith(q) for button in buttons for q in quoted):
                wrong.append((name, translated(message.id)))
    assert wrong == []


# -- who asked, and what: the words of the history, the survey and its news -------------------

def _newest(bot: BotEnv, chat_id: int, *, with_data: str = "", force_reply: bool = False):
    """The bot's newest message in the chat with a button whose data contains ``with_data``
    (or that asks for a reply)."""
    for call in reversed(bot.fake.calls_to("sendMessage")):
        markup = call.params.get("reply_markup") or {}
        if call.params["chat_id"] != chat_id:
            continue
        if force_reply and markup.get("force_reply"):
            return call
        if with_data and with_data in str(markup):
            return call
    raise AssertionError(f"no such message in {chat_id}")


async def _history(bot: BotEnv, user: User, chat: Chat, ticket_id: int) -> str:
    """The ticket's history as its group reads it (the card's Details button)."""
    card = _newest(bot, chat.id, with_data=f"tk:details:{ticket_id}")
    await bot.send(bot.updates.callback(user, f"tk:details:{ticket_id}", card.result))
    return bot.last_text(chat.id)


async def test_an_enterprise_matter_is_told_to_the_workers_as_its_contacts(bot: BotEnv) -> None:
    """The enterprise's contact made the request: the group's history and its confirmation
    of a resolution say so, not "the resident"."""
    boss, lawyer, group = consultation.BOSS, consultation.LAWYER, consultation.ENTERPRISE_GROUP
    await consultation._bind(bot)
    await consultation._enterprise(bot, "东湖制造有限公司", "91310000MA1FL0000A", boss)
    bot.fake.set_member(group.id, lawyer.id, "member")
    await bot.send(bot.updates.command(boss, "/matter"))
    await bot.send(bot.updates.private_text(boss, "A supplier has not paid for three months."))
    await press(bot, boss, "rp:skip:media")
    await press(bot, boss, "rp:skip:contact")
    await press(bot, boss, "rp:submit")
    ticket = await consultation._ticket(bot, boss)
    assert ticket.kind == "enterprise_dispute"
    await bot.deliver()
    card = consultation._card(bot, group)
    await bot.send(bot.updates.callback(lawyer, f"tk:claim:{ticket.id}", card.result))
    await bot.send(bot.updates.group_text(group, lawyer, "请提供合同", reply_to=card.result))
    await bot.deliver()
    relayed = [c for c in bot.fake.calls_to("sendMessage")
               if c.params["chat_id"] == boss.id][-1]
    await bot.send(bot.updates.private_text(boss, "The contract <follows>",
                                            reply_to=relayed.result))
    await bot.deliver()
    await bot.send(bot.updates.callback(lawyer, f"tk:resolve:{ticket.id}", card.result))
    prompt = _newest(bot, group.id, force_reply=True)
    await bot.send(bot.updates.group_text(group, lawyer, "已协调供应商付款",
                                          reply_to=prompt.result))
    t = bot.runtime.translator("zh_Hans")
    assert t("✅ No. {number} is resolved. The enterprise contact has been told.",
             number=ticket.number) in bot.texts(group.id)
    history = await _history(bot, lawyer, group, ticket.id)
    assert t("Reported by the enterprise contact") in history
    assert t("The enterprise contact: {message}", message="The contract <follows>") in history
    assert "居民" not in history


async def test_a_check_up_that_did_not_help_is_told_in_the_words_of_its_question(
        bot: BotEnv) -> None:
    """The check-up's follow-up asks whether it helped: the answer is "did not help" for the
    contact and the desk alike (not "not solved"), the news of the reopening names the
    booking, and the desk's history names the enterprise contact."""
    owner, lawyer, desk = booking.OWNER_A, booking.LAWYER, booking.DESK_GROUP
    await booking._setup(bot)
    await booking._slots(bot, "add", "2026-11-25", "09:00-11:00", "60m", "1")
    first, _ = await booking._all_slots(bot)
    await booking._book(bot, owner, first.id, day="20261125")
    await booking._press(bot, owner, "ck:ok")
    await bot.deliver()
    card = booking._with_button(bot, desk.id, "bk:cf:")
    ticket_id = int(booking._buttons(card)[0].rsplit(":", 1)[1])
    await booking._press(bot, lawyer, f"bk:cf:{ticket_id}", desk.id)
    await booking._press(bot, lawyer, f"bk:as:{ticket_id}", desk.id)
    await booking._run_until(bot, booking.local("2026-11-25 11:00"))
    await booking._press(bot, lawyer, f"bk:dn:{ticket_id}", desk.id)
    prompt = bot.fake.last("sendMessage").result
    await bot.send(bot.updates.group_text(desk, lawyer, "劳动合同需补充竞业限制条款",
                                          reply_to=prompt))
    await booking._run_until(bot, booking.local("2026-11-25 13:00"))
    survey = booking._with_button(bot, owner.id, "sv:")
    no = next(data for data in booking._buttons(survey) if data.endswith(":n"))
    await bot.send(bot.updates.callback(owner, no, survey))
    await bot.deliver()

    en, zh = bot.runtime.translator("en"), bot.runtime.translator("zh_Hans")
    thanks = [c for c in bot.fake.calls_to("editMessageText")
              if c.params["chat_id"] == owner.id][-1].params["text"]
    assert en("Thank you. Your answer: {answer}.", answer=en("Did not help")) in thanks
    assert "your check-up booking has been reopened" in thanks
    assert "solved" not in thanks and "report" not in thanks
    assert zh("Reopened by an enterprise contact ({answer}): please take it on again.",
              answer=zh("Did not help")) in bot.texts(desk.id)[-1]
    history = await _history(bot, lawyer, desk, ticket_id)
    assert zh("Check-up booked by the enterprise contact") in history
    assert zh("Rated by an enterprise contact: {answer}", answer=zh("Did not help")) in history
    assert "居民" not in history and zh("Not solved") not in history


async def test_a_ticket_reopened_where_it_was_is_not_said_to_pass_from_there_to_there(
        bot: BotEnv) -> None:
    ticket_id = await survey._resolved(bot)
    await bot.send(bot.updates.command(survey.COMMUNITY_GROUP, "/unbind", user=ADMIN))
    await survey._at(bot, survey.local("2026-11-23 11:00"))
    message = survey._survey_message(bot, survey.RESIDENT)
    t = bot.runtime.translator("zh_Hans")
    await survey._press(bot, survey.RESIDENT, message,
                        survey._buttons(message)[t("❌ Not solved")])
    async with bot.runtime.uow() as uow:
        reopened = (await uow.tickets.events(ticket_id))[-1].data
        node = await uow.nodes.by_code(reopened["to_node"])
    assert reopened["from_node"] == reopened["to_node"]  # nothing above with a group
    place = node.display_name("zh_Hans")
    history = await _history(bot, survey.WORKER, survey.GRID_GROUP, ticket_id)
    assert t("Reopened by the resident at {place}", place=place) in history
    assert t("Reopened by the resident and passed from {source} to {target}", source=place,
             target=place) not in history
    # The resident's own history says the same.
    await bot.send(bot.updates.command(survey.RESIDENT, "/mytickets"))
    listing = bot.fake.last("sendMessage").result
    await bot.send(bot.updates.callback(survey.RESIDENT, f"my:t:{ticket_id}", listing))
    detail = bot.fake.last("editMessageText").params["text"]
    assert t("Reopened at {place}.", place=place) in detail
    assert t("Reopened and passed to {place}.", place=place) not in detail


async def test_a_ticket_passed_up_for_being_late_says_so_in_words(bot: BotEnv) -> None:
    """The system's reason is a code in the log; the resident and the workers read words."""
    ticket_id = await deadlines._open(bot)
    await deadlines._claim(bot, ticket_id)
    await deadlines._run_until(bot, deadlines.local("2026-11-27 09:00"))  # passed up
    async with bot.runtime.uow() as uow:
        assert (await uow.tickets.events(ticket_id))[-1].data["reason"] == "overdue"
    t = bot.runtime.translator("zh_Hans")
    reason = t("it was not resolved by its deadline")
    await bot.send(bot.updates.command(deadlines.RESIDENT, "/mytickets"))
    listing = bot.fake.last("sendMessage").result
    await bot.send(bot.updates.callback(deadlines.RESIDENT, f"my:t:{ticket_id}", listing))
    detail = bot.fake.last("editMessageText").params["text"]
    assert reason in detail
    assert "overdue" not in detail
    bot.fake.set_member(deadlines.COMMUNITY_GROUP.id, deadlines.WORKER.id, "member")
    history = await _history(bot, deadlines.WORKER, deadlines.COMMUNITY_GROUP, ticket_id)
    assert reason in history and "overdue" not in history
