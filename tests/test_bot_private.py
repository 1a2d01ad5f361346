"""Private chats through the real Application: menus, languages, bad input, errors."""

from __future__ import annotations

import logging

from sqlalchemy import select
from telegram.error import BadRequest

from bot.i18n import Catalogs
from bot.views.menu import welcome_text as welcome
from storage.models import User as UserRow
from tests.harness import BotEnv, start_bot, stop_bot
from tests.telegram_fake import Chat, User

ZH = User(100_001, "张<i>三</i>", language_code="zh-hans")
HK = User(100_002, "陳大文", language_code="zh-HK")
EN = User(100_003, "Ann & <Bob>", language_code="en-GB")
NOLANG = User(100_004, "无语言", language_code=None)


def _buttons(call) -> list[str]:
    markup = call.params.get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row
            if "callback_data" in b]


async def test_start_answers_in_the_language_telegram_reports(bot: BotEnv) -> None:
    for user, language in ((ZH, "zh_Hans"), (HK, "zh_Hant"), (EN, "en"), (NOLANG, "zh_Hans")):
        await bot.send(bot.updates.command(user, "/start"))
        call = bot.fake.last("sendMessage")
        assert call.params["chat_id"] == user.id
        assert call.params["text"] == welcome(bot.runtime.translator(language))
        # Only flows that exist are offered.
        assert _buttons(call) == ["rp:new", "rp:new:consultation", "rp:new:enterprise_dispute",
                                  "my:list", "en:menu", "ck:new", "menu:lang",
                                  "menu:help"]
    assert "网格通" in bot.last_text(ZH.id)
    assert "網格通" in bot.last_text(HK.id)
    assert "Gridgate" in bot.last_text(EN.id)


async def test_language_choice_is_stored_and_wins_over_telegram(bot: BotEnv, db) -> None:
    await bot.send(bot.updates.command(ZH, "/language"))
    menu = bot.fake.last("sendMessage")
    assert _buttons(menu) == ["lang:zh_Hans", "lang:zh_Hant", "lang:en"]
    await bot.send(bot.updates.callback(ZH, "lang:en", menu.result))
    edit = bot.fake.last("editMessageText")
    assert edit.params["text"] == bot.runtime.translator("en")(
        "The language is now {language}.", language="English")
    # The person's own command menu follows the choice (Telegram cannot tell zh variants apart).
    menu_call = bot.fake.last("setMyCommands")
    assert menu_call.params["scope"] == {"type": "chat", "chat_id": ZH.id}
    assert menu_call.params["commands"][0]["description"] == "Main menu"

    await bot.send(bot.updates.command(ZH, "/help"))
    assert "How to use Gridgate" in bot.last_text(ZH.id)
    async with db.sessions() as session:
        row = await session.scalar(select(UserRow).where(UserRow.id == ZH.id))
        assert row.language == "en" and row.telegram_language_code == "zh-hans"


async def test_language_survives_a_restart(db, catalogs: Catalogs) -> None:
    first = await start_bot(db, catalogs)
    await first.send(first.updates.command(HK, "/language"))
    await first.send(first.updates.callback(HK, "lang:en", first.fake.last("sendMessage").result))
    await stop_bot(first)
    second = await start_bot(db, catalogs, first_update_id=1000)
    await second.send(second.updates.command(HK, "/start"))
    assert "Gridgate" in second.last_text(HK.id)
    await stop_bot(second)
    assert first.errors == second.errors == []


async def test_forged_and_stale_buttons_get_a_clear_answer(bot: BotEnv, db) -> None:
    await bot.send(bot.updates.command(ZH, "/start"))
    message = bot.fake.last("sendMessage").result
    t = bot.runtime.translator("zh_Hans")
    for data in ("lang:xx", "bind:move:1", "nonsense", "lang:" + "x" * 59):
        await bot.send(bot.updates.callback(ZH, data, message))
        answer = bot.fake.last("answerCallbackQuery")
        assert answer.params.get("show_alert") is True
        assert answer.params["text"] in (t("This button is no longer valid."),
                                         t("Only a Gridgate administrator can bind a group."))
    async with db.sessions() as session:
        row = await session.scalar(select(UserRow).where(UserRow.id == ZH.id))
        assert row.language is None


async def test_stickers_photos_and_edits_get_an_explanation(bot: BotEnv) -> None:
    t = bot.runtime.translator("en")
    await bot.send(bot.updates.sticker(EN))
    assert bot.last_text(EN.id) == t(
        "Thanks! I cannot do anything with this kind of message. To report a problem, "
        "describe it in words, or send a photo, a voice message or the location; or choose "
        "from the menu below.")
    # A photo may begin a report (tests/test_media_offer.py); its caption stays text.
    await bot.send(bot.updates.photo(EN, caption="<script>"))
    assert bot.last_text(EN.id) == t(
        "Shall I report this as a problem? Your photos or videos are attached to it (and a "
        "caption of {min} characters or more becomes its description); you then choose what "
        "it is about and where it is.", min=10)
    original = bot.updates.private_text(EN, "hello")
    await bot.send(original)
    await bot.send(bot.updates.edited_message(original, "hello again"))
    assert "edited" in bot.last_text(EN.id)
    # An edited /start is not a new /start.
    command = bot.updates.command(EN, "/start")
    await bot.send(command)
    count = len(bot.texts(EN.id))
    await bot.send(bot.updates.edited_message(command, "/start"))
    assert len(bot.texts(EN.id)) == count + 1
    assert "edited" in bot.last_text(EN.id)


async def test_huge_text_and_channel_posts(bot: BotEnv) -> None:
    await bot.send(bot.updates.private_text(EN, "x" * 4096))
    assert bot.last_text(EN.id).startswith("That is longer than a report can be")
    before = len(bot.fake.calls)
    await bot.send(bot.updates.channel_post(Chat(-1009999, "channel", title="news"), "/start"))
    assert len(bot.fake.calls) == before


async def test_the_same_update_delivered_twice_is_handled_once(bot: BotEnv) -> None:
    update = bot.updates.command(EN, "/start")
    await bot.send(update)
    await bot.send(update)
    assert len(bot.texts(EN.id)) == 1


async def test_an_error_is_logged_without_personal_data_and_the_user_is_told(
        bot: BotEnv, caplog) -> None:
    bot.fake.fail("sendMessage", error_code=400, description="Bad Request: chat not found")
    secret = "my phone is 13812345678"
    with caplog.at_level(logging.INFO):
        await bot.send(bot.updates.private_text(EN, secret))
    assert len(bot.errors) == 1 and isinstance(bot.errors[0], BadRequest)
    bot.errors.clear()
    assert bot.last_text(EN.id) == bot.runtime.translator("en")(
        "Sorry, something went wrong on our side. Please try again in a moment.")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "error while handling update" in logged
    assert secret not in caplog.text and EN.first_name not in caplog.text
    assert "13812345678" not in caplog.text


async def test_command_menus_are_published_per_language(bot: BotEnv) -> None:
    await bot.app.post_init(bot.app)
    calls = bot.fake.calls_to("setMyCommands")
    seen = {(c.params["scope"]["type"], c.params.get("language_code")) for c in calls}
    assert seen == {(scope, code) for scope in ("all_private_chats", "all_group_chats")
                    for code in (None, "zh", "en")}
    english = next(c for c in calls if c.params["scope"]["type"] == "all_private_chats"
                   and c.params.get("language_code") == "en")
    assert [c["command"] for c in english.params["commands"]] == [
        "start", "report", "consult", "matter", "mytickets", "enterprise", "checkup", "cancel",
        "help", "language", "mydata", "deletemydata"]
    chinese = next(c for c in calls if c.params["scope"]["type"] == "all_private_chats"
                   and c.params.get("language_code") == "zh")
    assert chinese.params["commands"][0]["description"] != "Main menu"


async def test_main_menu_buttons_open_help_and_languages(bot: BotEnv) -> None:
    await bot.send(bot.updates.command(EN, "/start"))
    menu = bot.fake.last("sendMessage").result
    await bot.send(bot.updates.callback(EN, "menu:help", menu))
    assert bot.last_text(EN.id).startswith("How to use Gridgate")
    # Each command said once: the data commands are in the list, not again below it.
    assert bot.last_text(EN.id).count("/mydata") == 1
    assert bot.last_text(EN.id).count("/deletemydata") == 1
    assert bot.fake.last("answerCallbackQuery").params.get("text") is None
    await bot.send(bot.updates.callback(EN, "menu:lang", menu))
    assert _buttons(bot.fake.last("sendMessage")) == ["lang:zh_Hans", "lang:zh_Hant", "lang:en"]
