"""A real PTB bot and Application driven through FakeTelegram and the update factories."""

from __future__ import annotations

import datetime as dtm
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from telegram import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    EndPointNotFound,
    Forbidden,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes, ExtBot

from tests.telegram_fake import (
    BOT_ID,
    BOT_USERNAME,
    SPEC_PATH,
    ApiSpecViolation,
    Chat,
    FakeTelegram,
    UpdateFactory,
    User,
    load_spec,
)
from tests.telegram_fake.transport import ApiError, spec_path

ANN = User(1001, "<b>Ann</b> & \x07Co", last_name="Li", username="ann_li")
BO = User(1002, "Bo", language_code="en")
GROUP = Chat(-4012345, "group", title="网格 7 组")
SUPERGROUP = Chat(-1001234567890, "supergroup", title="街道 <工作群>", is_forum=True)
KEYBOARD = InlineKeyboardMarkup([[InlineKeyboardButton("受理", callback_data="ticket:1:accept")]])


@pytest.fixture
def fake() -> FakeTelegram:
    return FakeTelegram()


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[ExtBot[None]]:
    bot = fake.bot()
    await bot.initialize()
    yield bot
    await bot.shutdown()


@pytest.fixture
def updates(bot: ExtBot[None], fake: FakeTelegram) -> UpdateFactory:
    return UpdateFactory(bot, fake)


# PTB 22 warns that int time periods (retry_after, duration) will become timedeltas.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


def seconds(value: int | dtm.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dtm.timedelta) else value


# -- the spec file -------------------------------------------------------------------------------
def test_spec_is_the_repository_s_own_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRIDGATE_BOT_API_SPEC", raising=False)
    project_root = Path(__file__).resolve().parents[1]
    kept = project_root / "bot" / "sandbox" / "apispec" / "spec" / "bot-api-10.0.json"
    assert spec_path() == kept
    assert SPEC_PATH.is_file()
    assert load_spec().version == "Bot API 10.0"


def test_the_kept_spec_is_byte_identical_to_the_published_one() -> None:
    """The copy is the published file, unchanged; where the shared original sits beside the
    project (the developers' machines and CI), they must be the same bytes."""
    project_root = Path(__file__).resolve().parents[1]
    published = project_root.parent / "shared" / "telegram" / "bot-api-10.0.json"
    if not published.is_file():
        pytest.skip("no shared/ beside this clone to compare with")
    assert spec_path().read_bytes() == published.read_bytes()


def test_a_missing_spec_fails_loudly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GRIDGATE_BOT_API_SPEC", str(tmp_path / "nope.json"))
    with pytest.raises(FileNotFoundError, match="GRIDGATE_BOT_API_SPEC"):
        FakeTelegram()


# -- basics ------------------------------------------------------------------------------------
async def test_initialize_calls_get_me(bot: ExtBot[None], fake: FakeTelegram) -> None:
    assert [c.method for c in fake.calls] == ["getMe"]
    assert (bot.id, bot.username, bot.bot.is_bot) == (BOT_ID, BOT_USERNAME, True)
    assert bot.bot.can_join_groups is True


async def test_send_message_is_recorded_and_answered_like_telegram(
    bot: ExtBot[None], fake: FakeTelegram
) -> None:
    sent = await bot.send_message(
        ANN.id,
        "<b>工单 #1</b> 已提交 &amp; 待受理",
        parse_mode=ParseMode.HTML,
        reply_markup=KEYBOARD,
    )
    call = fake.last("sendMessage")
    assert call.params["text"] == "<b>工单 #1</b> 已提交 &amp; 待受理"
    assert call.params["parse_mode"] == "HTML"  # the StringEnum arrives as a plain string
    assert call.params["reply_markup"] == {
        "inline_keyboard": [[{"text": "受理", "callback_data": "ticket:1:accept"}]]
    }
    assert call.violations == [] and fake.violations == []
    # What came back: the visible text, the keyboard, the bot as sender, a private chat.
    assert sent.text == "工单 #1 已提交 & 待受理"
    assert sent.reply_markup == KEYBOARD
    assert sent.from_user.id == BOT_ID and sent.chat.type == "private"
    assert fake.sent_texts(ANN.id) == ["工单 #1 已提交 & 待受理"]
    assert fake.sent_texts(ANN.id, raw=True) == ["<b>工单 #1</b> 已提交 &amp; 待受理"]
    second = await bot.send_message(ANN.id, "再一条")
    assert second.message_id == sent.message_id + 1
    assert [m["message_id"] for m in fake.messages_in(ANN.id)] == [
        sent.message_id,
        second.message_id,
    ]


async def test_every_answer_conforms_to_the_spec(bot: ExtBot[None], fake: FakeTelegram) -> None:
    fake.add_chat(SUPERGROUP.id, "supergroup", title=SUPERGROUP.title, is_forum=True)
    fake.set_member(SUPERGROUP.id, BO.id, "administrator")
    first = await bot.send_message(ANN.id, "x", reply_markup=KEYBOARD)
    await bot.send_photo(ANN.id, b"\x89PNG fake", caption="现场照片")
    await bot.send_document(ANN.id, "BQACAgIAAxkB", caption="报告")
    await bot.send_location(ANN.id, 31.2304, 121.4737)
    await bot.send_venue(ANN.id, 31.2304, 121.4737, "社区服务中心", "人民路 1 号")
    await bot.send_contact(ANN.id, "+8613800000000", "网格员")
    await bot.send_voice(ANN.id, "AwACAgIAAxkB")
    albums = await bot.send_media_group(SUPERGROUP.id, [InputMediaPhoto("a"), InputMediaPhoto("b")])
    await bot.copy_message(SUPERGROUP.id, ANN.id, first.message_id)
    await bot.forward_message(SUPERGROUP.id, ANN.id, first.message_id)
    await bot.get_chat(SUPERGROUP.id)
    await bot.get_chat_member(SUPERGROUP.id, BO.id)
    await bot.create_forum_topic(SUPERGROUP.id, "工单 #1")
    await bot.get_file("BQACAgIAAxkB")
    await bot.get_webhook_info()
    spec = load_spec()
    for call in fake.calls:
        assert spec.validate_value(spec.returns[call.method], call.result) == [], call.method
    assert {m.media_group_id for m in albums} != {None} and len(albums) == 2
    assert albums[0].chat.type == "supergroup" and albums[0].chat.title == SUPERGROUP.title


async def test_linked_request_shares_the_record(fake: FakeTelegram, updates: UpdateFactory) -> None:
    bot = fake.bot()
    fake.queue_update(updates.private_text(ANN, "polling"))
    delivered = await bot.get_updates(timeout=0)
    assert [u.message.text for u in delivered] == ["polling"]
    assert fake.last().method == "getUpdates"
    await bot.get_updates(offset=delivered[-1].update_id + 1, timeout=0)
    assert fake.last("getUpdates").result == []


# -- violations fail the test ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("x" * 4097, "4097 characters"),
        ("温度 < 5°C", 'stray "<"'),
        ("<b>未闭合", "unclosed tag <b>"),
        ("<div>块</div>", "unsupported tag <div>"),
    ],
)
async def test_a_violation_raises_and_is_recorded(
    bot: ExtBot[None], fake: FakeTelegram, text: str, fragment: str
) -> None:
    with pytest.raises(ApiSpecViolation, match=fragment) as caught:
        await bot.send_message(ANN.id, text, parse_mode=ParseMode.HTML)
    # An AssertionError for pytest, a TelegramError so PTB doesn't wrap it into NetworkError.
    assert isinstance(caught.value, AssertionError) and isinstance(caught.value, TelegramError)
    assert len(fake.violations) == 1 and fragment in fake.violations[0]
    assert fake.sent_texts() == []
    with pytest.raises(AssertionError, match="Bot API violations"):
        fake.assert_no_violations()


async def test_unknown_method_and_parameters(bot: ExtBot[None], fake: FakeTelegram) -> None:
    with pytest.raises(ApiSpecViolation, match="unknown method 'sendMesage'"):
        await bot.do_api_request("sendMesage", api_kwargs={"chat_id": 1, "text": "x"})
    with pytest.raises(ApiSpecViolation, match="unknown parameter 'colour'"):
        await bot.send_message(ANN.id, "x", api_kwargs={"colour": "red"})
    assert len(fake.violations) == 2


async def test_lenient_mode_answers_like_telegram() -> None:
    fake = FakeTelegram(strict=False)
    bot = fake.bot()
    await bot.initialize()
    # Telegram's own words, with what the spec checker found.
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities: html: stray \"<\""):
        await bot.send_message(ANN.id, "a < b", parse_mode=ParseMode.HTML)
    # Telegram answers 404 "Not Found" for unknown methods; PTB's HTTP layer reports 404 as
    # InvalidToken, which do_api_request turns into EndPointNotFound once the bot is initialized.
    with pytest.raises(EndPointNotFound, match="sendMesage"):
        await bot.do_api_request("sendMesage", api_kwargs={"chat_id": 1, "text": "x"})
    assert len(fake.violations) == 2


# -- injected failures -----------------------------------------------------------------------------
async def test_blocked_user_is_forbidden(bot: ExtBot[None], fake: FakeTelegram) -> None:
    fake.fail("sendMessage")
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(ANN.id, "x")
    await bot.send_message(ANN.id, "only the next call failed")
    fake.block(BO.id)
    for _ in range(2):
        with pytest.raises(Forbidden):
            await bot.send_message(BO.id, "x")
    await bot.send_message(ANN.id, "other chats are fine")
    assert fake.calls_to("sendMessage")[0].error == {
        "ok": False,
        "error_code": 403,
        "description": "Forbidden: bot was blocked by the user",
    }


async def test_flood_control_is_retry_after(bot: ExtBot[None], fake: FakeTelegram) -> None:
    fake.fail("sendMessage", retry_after=5, times=2)
    for _ in range(2):
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(ANN.id, "x")
        assert seconds(caught.value.retry_after) == 5
    await bot.send_message(ANN.id, "x")
    assert fake.last("sendMessage").error is None


async def test_group_upgraded_to_supergroup(bot: ExtBot[None], fake: FakeTelegram) -> None:
    fake.migrate_chat(GROUP.id, SUPERGROUP.id)
    with pytest.raises(ChatMigrated) as caught:
        await bot.send_message(GROUP.id, "x")
    assert caught.value.new_chat_id == SUPERGROUP.id
    moved = await bot.send_message(SUPERGROUP.id, "x")
    assert moved.chat.type == "supergroup"


async def test_custom_error_and_timeouts(bot: ExtBot[None], fake: FakeTelegram) -> None:
    fake.fail("sendMessage", error_code=400, description="Bad Request: chat not found", chat_id=9)
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(9, "x")
    fake.fail("sendMessage", timeout=True)
    with pytest.raises(TimedOut):
        await bot.send_message(ANN.id, "lost")
    fake.fail("sendMessage", timeout=True, delivered=True)
    with pytest.raises(TimedOut):
        await bot.send_message(ANN.id, "arrived anyway")
    assert fake.sent_texts(ANN.id) == ["arrived anyway"]


# -- editing and deleting --------------------------------------------------------------------------
async def test_edit_message(bot: ExtBot[None], fake: FakeTelegram) -> None:
    sent = await bot.send_message(ANN.id, "<b>待受理</b>", parse_mode="HTML", reply_markup=KEYBOARD)
    with pytest.raises(BadRequest, match="Message is not modified: specified new message content"):
        await bot.edit_message_text(
            "<b>待受理</b>", ANN.id, sent.message_id, parse_mode="HTML", reply_markup=KEYBOARD
        )
    # Same text, other formatting: a change for Telegram.
    edited = await bot.edit_message_text(
        "<i>待受理</i>", ANN.id, sent.message_id, parse_mode="HTML", reply_markup=KEYBOARD
    )
    assert edited.edit_date is not None and edited.reply_markup == KEYBOARD
    # No reply_markup in an edit removes the inline keyboard.
    plain = await bot.edit_message_text("已受理", ANN.id, sent.message_id)
    assert plain.reply_markup is None
    assert fake.messages_in(ANN.id)[-1]["text"] == "已受理"
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_reply_markup(ANN.id, sent.message_id)
    await bot.edit_message_reply_markup(ANN.id, sent.message_id, reply_markup=KEYBOARD)
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", ANN.id, 999)
    assert await bot.edit_message_text("x", inline_message_id="AAAA") is True


async def test_edit_caption_and_user_messages(
    bot: ExtBot[None], fake: FakeTelegram, updates: UpdateFactory
) -> None:
    photo = await bot.send_photo(ANN.id, "AgACAgIAAxkB", caption="旧")
    with pytest.raises(BadRequest, match="There is no text in the message to edit"):
        await bot.edit_message_text("x", ANN.id, photo.message_id)
    assert (await bot.edit_message_caption(ANN.id, photo.message_id, caption="新")).caption == "新"
    incoming = updates.private_text(ANN, "用户的话")
    with pytest.raises(BadRequest, match="Message can't be edited"):
        await bot.edit_message_text("x", ANN.id, incoming.message.message_id)


async def test_delete_message(bot: ExtBot[None], fake: FakeTelegram) -> None:
    sent = await bot.send_message(ANN.id, "x")
    assert await bot.delete_message(ANN.id, sent.message_id) is True
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(ANN.id, sent.message_id)
    assert fake.messages_in(ANN.id) == [] and fake.sent_texts(ANN.id) == ["x"]


# -- the rest of the world ---------------------------------------------------------------------
async def test_chats_members_commands_topics_files(bot: ExtBot[None], fake: FakeTelegram) -> None:
    assert (await bot.get_chat(GROUP.id)).type == "group"
    assert (await bot.get_chat(SUPERGROUP.id)).type == "supergroup"
    fake.add_chat(SUPERGROUP.id, "supergroup", title=SUPERGROUP.title, is_forum=True)
    info = await bot.get_chat(SUPERGROUP.id)
    assert (info.title, info.is_forum) == (SUPERGROUP.title, True)

    assert (await bot.get_chat_member(GROUP.id, BO.id)).status == "member"
    fake.set_member(GROUP.id, BO.id, "administrator", can_delete_messages=False)
    admin = await bot.get_chat_member(GROUP.id, BO.id)
    assert admin.status == "administrator" and admin.can_restrict_members
    assert not admin.can_delete_messages
    fake.set_member(GROUP.id, ANN.id, "kicked")
    assert (await bot.get_chat_member(GROUP.id, ANN.id)).status == "kicked"

    commands = [BotCommand("start", "开始"), BotCommand("help", "帮助")]
    scope = BotCommandScopeAllPrivateChats()
    assert await bot.set_my_commands(commands, scope=scope, language_code="zh")
    assert await bot.get_my_commands(scope=scope, language_code="zh") == tuple(commands)
    assert await bot.get_my_commands() == ()
    assert await bot.delete_my_commands(scope=scope, language_code="zh")
    assert await bot.get_my_commands(scope=scope, language_code="zh") == ()

    topic = await bot.create_forum_topic(SUPERGROUP.id, "工单 #7")
    assert topic.name == "工单 #7" and topic.message_thread_id > 0
    fake.add_chat(GROUP.id, "supergroup", title="not a forum")
    with pytest.raises(BadRequest, match="The chat is not a forum"):
        await bot.create_forum_topic(GROUP.id, "x")

    fake.add_file("BQACAgIAAxkB", b"%PDF-1.7", file_path="documents/file_7.pdf")
    file = await bot.get_file("BQACAgIAAxkB")
    assert file.file_path.endswith("documents/file_7.pdf")
    assert await file.download_as_bytearray() == bytearray(b"%PDF-1.7")

    for method in ("answerCallbackQuery", "sendChatAction", "leaveChat", "setChatMenuButton"):
        assert method not in {c.method for c in fake.calls}
    assert await bot.answer_callback_query("1", "好的")
    assert await bot.send_chat_action(ANN.id, "typing")
    assert await bot.set_chat_menu_button(ANN.id)
    assert await bot.leave_chat(GROUP.id)
    assert await bot.delete_webhook()


async def test_uploads_are_recorded(bot: ExtBot[None], fake: FakeTelegram) -> None:
    await bot.send_media_group(
        ANN.id, [InputMediaPhoto(b"\x89PNG one", caption="一"), InputMediaPhoto(b"\x89PNG two")]
    )
    call = fake.last("sendMediaGroup")
    assert [m["media"].startswith("attach://") for m in call.params["media"]] == [True, True]
    assert sorted(u.content for u in call.files.values()) == [b"\x89PNG one", b"\x89PNG two"]
    assert fake.sent_texts(ANN.id) == ["一"]


# -- factories ---------------------------------------------------------------------------------
async def test_private_text_and_commands(updates: UpdateFactory) -> None:
    text = updates.private_text(ANN, "你好")
    assert text.effective_chat.type == "private" and text.effective_chat.id == ANN.id
    assert text.effective_user.first_name == "<b>Ann</b> & \x07Co"  # never escaped
    assert (
        text.effective_message.text == "你好"
        and text.effective_message.from_user.username == "ann_li"
    )

    start = updates.command(ANN, "/start", "ref_42")
    assert start.update_id == text.update_id + 1
    assert start.message.message_id == text.message.message_id + 1
    assert start.message.text == "/start ref_42"
    assert start.message.parse_entities() == {start.message.entities[0]: "/start"}

    in_group = updates.command(GROUP, "help", user=BO)
    assert in_group.message.text == f"/help@{BOT_USERNAME}"
    assert list(in_group.message.parse_entities().values()) == [f"/help@{BOT_USERNAME}"]
    assert in_group.effective_chat.type == "group" and in_group.effective_user.id == BO.id
    with pytest.raises(TypeError):
        updates.command(GROUP, "help")


async def test_group_text_reply_and_topic(updates: UpdateFactory, fake: FakeTelegram) -> None:
    first = updates.group_text(SUPERGROUP, ANN, "问题")
    reply = updates.group_text(SUPERGROUP, BO, "收到", reply_to=first, message_thread_id=5)
    assert reply.message.reply_to_message.message_id == first.message.message_id
    assert reply.message.message_thread_id == 5 and reply.message.is_topic_message
    assert reply.effective_chat.is_forum and reply.effective_chat.title == SUPERGROUP.title
    assert [m["text"] for m in fake.messages_in(SUPERGROUP.id, include_incoming=True)] == [
        "问题",
        "收到",
    ]


async def test_callback_on_a_message_the_bot_sent(
    bot: ExtBot[None], fake: FakeTelegram, updates: UpdateFactory
) -> None:
    await bot.send_message(ANN.id, "请确认", reply_markup=KEYBOARD)
    press = updates.callback(ANN, "ticket:1:accept", fake.last("sendMessage").result)
    query = press.callback_query
    assert query.data == "ticket:1:accept" and query.chat_instance and query.id
    assert (
        press.effective_message.text == "请确认" and press.effective_message.from_user.id == BOT_ID
    )
    assert press.effective_chat.id == ANN.id and press.effective_user.id == ANN.id
    assert query.message.reply_markup == KEYBOARD


async def test_media_and_service_updates(updates: UpdateFactory) -> None:
    location = updates.location(ANN, 31.2304, 121.4737)
    assert location.message.location.latitude == 31.2304
    venue = updates.venue(ANN, 31.2, 121.4, "社区服务中心", "人民路 1 号")
    assert venue.message.venue.title == "社区服务中心" and venue.message.location is not None
    contact = updates.contact(ANN, "+8613800000000")
    assert (contact.message.contact.user_id, contact.message.contact.first_name) == (
        ANN.id,
        ANN.first_name,
    )
    someone_else = updates.contact(ANN, "+8613900000000", first_name="王五")
    assert someone_else.message.contact.user_id is None

    photo = updates.photo(ANN, caption="漏水", file_size=250_000)
    assert photo.message.caption == "漏水" and photo.message.photo[-1].file_size == 250_000
    album = updates.media_group(ANN, 3, caption="三张")
    assert len({u.message.media_group_id for u in album}) == 1
    assert [u.message.caption for u in album] == ["三张", None, None]
    assert updates.document(ANN, "报告.pdf").message.document.file_name == "报告.pdf"
    assert seconds(updates.voice(ANN, duration=7).message.voice.duration) == 7
    assert updates.video_note(ANN).message.video_note.length == 240
    assert updates.sticker(ANN, "👍").message.sticker.emoji == "👍"

    edited = updates.edited_message(photo, caption="漏水（已修好）")
    assert edited.edited_message.message_id == photo.message.message_id
    assert (
        edited.edited_message.edit_date is not None
        and edited.effective_message.caption.endswith("）")
    )

    channel = Chat(-1009876543210, "channel", title="通知")
    post = updates.channel_post(channel, "停水通知")
    assert post.channel_post.sender_chat.id == channel.id and post.effective_user is None


async def test_membership_and_migration(
    bot: ExtBot[None], fake: FakeTelegram, updates: UpdateFactory
) -> None:
    added = updates.my_chat_member(GROUP, "left", "administrator", ANN)
    change = added.my_chat_member
    assert (change.old_chat_member.status, change.new_chat_member.status) == (
        "left",
        "administrator",
    )
    assert change.new_chat_member.user.id == BOT_ID and change.from_user.id == ANN.id
    assert (await bot.get_chat_member(GROUP.id, BOT_ID)).status == "administrator"

    to_new, from_old = updates.migrate(GROUP, SUPERGROUP.id, user=ANN)
    assert (
        to_new.effective_chat.id == GROUP.id and to_new.message.migrate_to_chat_id == SUPERGROUP.id
    )
    assert from_old.effective_chat.type == "supergroup"
    assert from_old.message.migrate_from_chat_id == GROUP.id
    with pytest.raises(ChatMigrated):
        await bot.send_message(GROUP.id, "x")


async def test_through_a_real_application(fake: FakeTelegram) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.effective_message.reply_html(
            f"欢迎 <b>{context.args[0]}</b>", reply_markup=KEYBOARD
        )

    async def accept(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.callback_query.answer("已受理")
        await update.callback_query.edit_message_text("✅ 已受理")

    app = fake.application_builder().updater(None).build()
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(accept, pattern=r"^ticket:"))
    async with app:
        updates = UpdateFactory(app.bot, fake)
        await app.process_update(updates.command(ANN, "/start", "网格"))
        await app.process_update(updates.command(GROUP, "start", "群", user=BO))
        await app.process_update(
            updates.command(GROUP, "/start@other_bot", "x", user=BO, mention_bot=False)
        )
        welcome = fake.last("sendMessage").result
        await app.process_update(updates.callback(BO, "ticket:1:accept", welcome))
    assert fake.sent_texts(ANN.id) == ["欢迎 网格"]
    assert fake.sent_texts(GROUP.id) == ["欢迎 群"]
    assert fake.messages_in(GROUP.id)[-1]["text"] == "✅ 已受理"
    assert fake.last("answerCallbackQuery").params["text"] == "已受理"
    fake.assert_no_violations()


# -- review findings ---------------------------------------------------------------------------
def test_spec_path_follows_the_environment_when_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import tests.telegram_fake as package
    import tests.telegram_fake.transport as transport

    monkeypatch.setenv("GRIDGATE_BOT_API_SPEC", str(tmp_path / "spec.json"))
    assert package.SPEC_PATH == transport.SPEC_PATH == tmp_path / "spec.json"
    monkeypatch.delenv("GRIDGATE_BOT_API_SPEC")
    assert package.SPEC_PATH == spec_path() and package.SPEC_PATH.is_file()


async def test_an_edit_naming_no_message_is_a_violation(
    bot: ExtBot[None], fake: FakeTelegram
) -> None:
    with pytest.raises(
        ApiSpecViolation, match="needs chat_id and message_id, or inline_message_id"
    ):
        await bot.edit_message_text(text="x")
    with pytest.raises(ApiSpecViolation, match="'message_id' \\(required if inline_message_id"):
        await bot.edit_message_reply_markup(chat_id=ANN.id)


async def test_lenient_mode_answers_a_missing_parameter_with_bad_request() -> None:
    fake = FakeTelegram(strict=False)
    bot = fake.bot()
    await bot.initialize()
    with pytest.raises(BadRequest, match="needs chat_id and message_id"):
        await bot.edit_message_text(text="x")
    assert fake.last("editMessageText").error["error_code"] == 400


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("editMessageText", {"text": "x"}),
        ("editMessageCaption", {"chat_id": ANN.id}),
        ("editMessageReplyMarkup", {}),
        ("deleteMessage", {"chat_id": ANN.id}),
        ("sendMessage", {"text": "x"}),
        ("getChatMember", {"chat_id": ANN.id}),
    ],
)
async def test_handlers_never_raise_key_error(
    fake: FakeTelegram, method: str, params: dict[str, object]
) -> None:
    # Past the checker (e.g. a gap in it), a missing parameter is still Telegram's 400.
    with pytest.raises(ApiError) as caught:
        await fake.server.answer(method, params)
    assert caught.value.body["error_code"] == 400 and "is empty" in caught.value.body["description"]


async def test_edits_are_routed_without_dedicated_handlers(fake: FakeTelegram) -> None:
    for method in ("editMessageText", "editMessageCaption", "editMessageReplyMarkup"):
        assert not hasattr(fake.server, f"api_{method}")
        assert await fake.server.answer(method, {"inline_message_id": "AA", "text": "x"}) is True


async def test_set_member_rejects_an_unknown_status(bot: ExtBot[None], fake: FakeTelegram) -> None:
    with pytest.raises(ValueError, match=r"'admin'.*administrator.*kicked"):
        fake.set_member(-5, 9, "admin")
    assert (await bot.get_chat_member(-5, 9)).status == "member"
    fake.set_member(-5, 9, "owner")
    assert (await bot.get_chat_member(-5, 9)).status == "creator"
    fake.set_member(-5, 9, "banned")
    assert (await bot.get_chat_member(-5, 9)).status == "kicked"


@pytest.mark.parametrize("times", [0, -1])
def test_fail_needs_at_least_one_time(fake: FakeTelegram, times: int) -> None:
    with pytest.raises(ValueError, match="times must be at least 1"):
        fake.fail("sendMessage", times=times)
    assert fake.server.failures == []


def test_update_factory_rejects_what_telegram_would_never_send(updates: UpdateFactory) -> None:
    with pytest.raises(ValueError, match=r"message\.chat\.type: must be one of"):
        updates.group_text(Chat(-5, "grup", title="x"), ANN, "hi")
    with pytest.raises(ValueError, match="unknown field 'mesage'"):
        updates._update(mesage={})
    with pytest.raises(ValueError, match="at most one"):
        updates._update(
            message=updates.private_text(ANN, "a").message.to_dict(),
            edited_message=updates.private_text(ANN, "b").message.to_dict(),
        )
