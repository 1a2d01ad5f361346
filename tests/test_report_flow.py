"""The resident's report flow through the real Application, on SQLite and PostgreSQL."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.actions import report
from bot.sandbox.apispec import html_visible_text
from bot.services import tickets
from bot.views import report as report_views
from bot.views.cards import STATUS_LABELS, category_name
from storage.models import Draft, OutboxMessage, Ticket, TicketAttachment, TicketReporter
from storage.uow import UnitOfWork
from tests.harness import ADMIN, BotEnv, make_config, start_bot, stop_bot
from tests.telegram_fake import Chat, User

GRID = "SFQ-DH-01-G1"
INSIDE = (31.23, 121.42)        # in GRID
NEARBY = (31.231, 121.421)      # about 145 m from INSIDE, also in GRID
FAR_AWAY = (39.9, 116.4)        # Beijing: outside every grid of the demo district
SOUTH = (31.1885, 121.41916)    # in SFQ-NY-01-G1, some 4.5 km south
GROUP = Chat(-1001000000101, "supergroup", title="东湖一社区第1网格")
ZH = User(300_001, "张<i>三</i>", last_name="& \x07李", language_code="zh-hans")
EN = User(300_002, "Ann <b>&amp;", language_code="en")
OTHER = User(300_003, "王五", language_code="zh-hans")
TEXT = "楼道里堆满了垃圾，已经一周没人清理了"
PHONE = "+86 138 1234 5678"


@pytest.fixture
async def rbot(bot: BotEnv) -> BotEnv:
    return bot


@asynccontextmanager
async def custom_bot(db, catalogs, **config):
    env = await start_bot(db, catalogs, config=make_config(**config))
    try:
        yield env
    finally:
        await stop_bot(env)
    env.fake.assert_no_violations()
    assert env.errors == []


def _data(call) -> list[str]:
    markup = call.params.get("reply_markup") or {}
    return [b.get("callback_data") for row in markup.get("inline_keyboard", []) for b in row]


def _find(env: BotEnv, user: User, data: str):
    """The newest message to `user` with a button whose data starts with `data`."""
    for call in reversed(env.fake.calls):
        if call.method in ("sendMessage", "editMessageText") and \
                call.params.get("chat_id") == user.id and \
                any(d and d.startswith(data) for d in _data(call)):
            return call
    raise AssertionError(f"no message to {user.id} has a {data!r} button")


async def press(env: BotEnv, user: User, data: str) -> None:
    call = _find(env, user, data)
    full = next(d for d in _data(call) if d.startswith(data))
    await env.send(env.updates.callback(user, full, call.result))


def alert(env: BotEnv) -> str | None:
    answer = env.fake.last("answerCallbackQuery")
    return answer.params.get("text") if answer.params.get("show_alert") else None


async def draft(db, user: User) -> Draft | None:
    async with UnitOfWork(db) as uow:
        return await uow.drafts.get(user.id, "report")


async def tickets_of(db, user: User) -> list[Ticket]:
    async with db.sessions() as session:
        return list((await session.scalars(
            select(Ticket).where(Ticket.reporter_id == user.id).order_by(Ticket.id))).all())


async def node_id(db, code: str) -> int:
    async with UnitOfWork(db) as uow:
        return (await uow.nodes.by_code(code)).id


async def bind_group(env: BotEnv) -> None:
    await env.send(env.updates.command(GROUP, "/bind", GRID, user=ADMIN))


async def deliver(env: BotEnv) -> None:
    """Push outbox rows to the fake Telegram once the sender exists (spec-checks them too)."""
    if hasattr(env, "deliver"):
        await env.deliver()


async def to_place(env: BotEnv, user: User, *, category: str = "sanitation",
                   text: str = TEXT) -> None:
    await env.send(env.updates.command(user, "/report"))
    await press(env, user, f"rp:cat:{category}")
    await env.send(env.updates.private_text(user, text))
    await press(env, user, "rp:skip:media")


async def to_summary(env: BotEnv, user: User, at: tuple[float, float] = INSIDE, **kw) -> None:
    await to_place(env, user, **kw)
    await env.send(env.updates.location(user, *at))
    await env.send(env.updates.contact(user, PHONE))


async def test_a_complete_report_with_an_album_and_a_location(rbot: BotEnv, db) -> None:
    bot = rbot
    t = bot.runtime.translator("zh_Hans")
    await bind_group(bot)
    await bot.send(bot.updates.command(ZH, "/report"))
    assert "rp:cat:sanitation" in _data(bot.fake.last("sendMessage"))
    assert "rp:cat:legal_family" not in _data(bot.fake.last("sendMessage"))
    await press(bot, ZH, "rp:cat:sanitation")
    await bot.send(bot.updates.private_text(ZH, TEXT))
    assert (await draft(db, ZH)).step == "media"

    # An album arrives as one update per photo: the first answers the step, once.
    sent = len(bot.texts(ZH.id))
    for update in bot.updates.media_group(ZH, 3):
        await bot.send(update)
    place_question = bot.texts(ZH.id)[sent:]
    assert len(place_question) == 2  # the location button, and the inline choices
    assert place_question[0].startswith(t("✅ Received."))
    location_keyboard = bot.fake.calls_to("sendMessage")[-2].params["reply_markup"]
    assert location_keyboard["keyboard"][0][0]["request_location"] is True
    assert len((await draft(db, ZH)).data["media"]) == 3

    await bot.send(bot.updates.location(ZH, *INSIDE))
    contact_question = bot.fake.calls_to("sendMessage")[-2]
    assert "东湖一社区第1网格" in contact_question.params["text"]
    assert contact_question.params["reply_markup"]["keyboard"][0][0]["request_contact"] is True
    assert "rp:anon" not in _data(bot.fake.last("sendMessage"))  # not for sanitation

    await bot.send(bot.updates.contact(ZH, PHONE))
    removal, summary = bot.fake.calls_to("sendMessage")[-2:]
    assert removal.params["reply_markup"] == {"remove_keyboard": True}
    assert t("Photos and videos: {count}", count=3) in summary.params["text"]
    assert PHONE in summary.params["text"]

    await press(bot, ZH, "rp:submit")
    [ticket] = await tickets_of(db, ZH)
    assert ticket.grid_id == await node_id(db, GRID) == ticket.node_id
    assert (ticket.latitude, ticket.longitude) == INSIDE
    assert ticket.description == TEXT and ticket.reporter_phone == PHONE
    assert ticket.reporter_name == "张<i>三</i> & 李"  # control characters dropped
    assert ticket.language == "zh_Hans" and not ticket.urgent
    assert t("✅ <b>Your report is registered as No. {number}.</b>",
             number=ticket.number) in bot.fake.last("sendMessage").params["text"]
    assert "东湖一社区第1网格" in bot.last_text(ZH.id)
    assert await draft(db, ZH) is None
    async with db.sessions() as session:
        files = (await session.scalars(select(TicketAttachment).where(
            TicketAttachment.ticket_id == ticket.id))).all()
        assert [f.kind for f in files] == ["photo"] * 3
        rows = (await session.scalars(select(OutboxMessage).where(
            OutboxMessage.ticket_id == ticket.id).order_by(OutboxMessage.id))).all()
    card = next(r for r in rows if r.purpose == "card")
    assert card.chat_id == GROUP.id
    assert "138****5678" in card.params["text"] and PHONE not in card.params["text"]
    assert "张&lt;i&gt;三&lt;/i&gt; &amp; 李" in card.params["text"]
    assert {r.method for r in rows} >= {"sendMessage", "sendMediaGroup", "sendLocation"}
    await deliver(bot)

    # The old buttons of the finished draft do nothing.
    await press(bot, ZH, "rp:submit")
    assert alert(bot) == t("That report was already sent or cancelled; this summary is out "
                           "of date.")
    assert len(await tickets_of(db, ZH)) == 1


async def test_menus_and_a_typed_address(rbot: BotEnv, db) -> None:
    bot = rbot
    t = bot.runtime.translator("en")
    await to_place(bot, EN)
    address = "12 East Lake Rd <Block 3> & Co"
    await bot.send(bot.updates.private_text(EN, address))
    assert bot.last_text(EN.id).startswith(t("Address noted: {address}", address=address))
    assert (await draft(db, EN)).data["address"] == address

    street, community = await node_id(db, "SFQ-DH"), await node_id(db, "SFQ-DH-01")
    grid = await node_id(db, "SFQ-DH-01-G2")
    await press(bot, EN, f"rp:node:{street}")
    menu = bot.fake.last("editMessageText")
    assert f"rp:node:{community}" in _data(menu) and _data(menu)[-1] == "rp:list"
    await press(bot, EN, f"rp:node:{community}")
    assert _data(bot.fake.last("editMessageText"))[-1] == f"rp:node:{street}"
    # Back up, level by level, to the first choices, and down again.
    await press(bot, EN, f"rp:node:{street}")
    await press(bot, EN, "rp:list")
    assert _data(bot.fake.last("editMessageText"))[-1] == "rp:place"
    await press(bot, EN, "rp:place")
    assert _data(bot.fake.last("editMessageText")) == ["rp:list", "rp:back:place"]
    await press(bot, EN, "rp:list")
    await press(bot, EN, f"rp:node:{street}")
    await press(bot, EN, f"rp:node:{community}")
    await press(bot, EN, f"rp:node:{grid}")
    assert (await draft(db, EN)).step == "contact"
    await press(bot, EN, "rp:skip:contact")
    assert t("Contact: not shared") in bot.last_text(EN.id)
    await press(bot, EN, "rp:submit")
    [ticket] = await tickets_of(db, EN)
    assert (ticket.grid_id, ticket.address, ticket.latitude) == (grid, address, None)
    assert ticket.reporter_phone is None and not ticket.anonymous
    # No group anywhere up the tree: registered all the same.
    assert t("The staff will take it up; you will be told here when it is taken on, how it "
             "progresses and when it is resolved.") in bot.last_text(EN.id)

    # The next report offers the same grid first.
    await to_place(bot, EN)
    options = bot.fake.last("sendMessage")
    assert _data(options)[0] == "rp:last"
    await press(bot, EN, "rp:last")
    assert (await draft(db, EN)).data["grid_id"] == grid


async def test_a_location_outside_every_grid_offers_the_list(rbot: BotEnv, db) -> None:
    bot = rbot
    t = bot.runtime.translator("en")
    await to_place(bot, EN)
    await bot.send(bot.updates.location(EN, *FAR_AWAY))
    assert bot.last_text(EN.id).startswith(t(
        "That location is outside every grid we serve. Please choose the grid from the list."))
    assert f"rp:node:{await node_id(db, 'SFQ-DH')}" in _data(bot.fake.last("sendMessage"))
    assert (await draft(db, EN)).step == "place"
    await bot.send(bot.updates.sticker(EN))
    assert bot.last_text(EN.id).startswith(t(
        "Please share a location, choose from the list, or type the address."))
    await bot.send(bot.updates.private_text(EN, "x" * 201))
    assert bot.last_text(EN.id).startswith(t(
        "Please keep the address within {max} characters (this was {count}).",
        max=200, count=201))


async def test_emergency_words_and_categories_show_110_119_120(rbot: BotEnv, db) -> None:
    bot = rbot
    t = bot.runtime.translator("zh_Hans")
    guidance = t("🚨 <b>If anyone is in danger, call now:</b>\n"
                 "110 — police\n119 — fire\n120 — ambulance\n\n"
                 "Your report will be marked urgent, but it does not replace an emergency call.")
    await bind_group(bot)
    await bot.send(bot.updates.command(ZH, "/report"))
    await press(bot, ZH, "rp:cat:sanitation")
    sent = len(bot.fake.calls_to("sendMessage"))
    await bot.send(bot.updates.private_text(ZH, "三楼楼道起火了，冒烟很大，有人受伤"))
    [question] = bot.fake.calls_to("sendMessage")[sent:]
    # At once, above the next question in the same message.
    assert question.params["text"].startswith(guidance + "\n\n")
    assert "rp:skip:media" in _data(question)
    assert (await draft(db, ZH)).data["urgent"] is True
    await press(bot, ZH, "rp:skip:media")
    await bot.send(bot.updates.location(ZH, *INSIDE))
    await press(bot, ZH, "rp:skip:contact")
    assert t("🚨 Urgent") in bot.last_text(ZH.id)
    await press(bot, ZH, "rp:submit")
    [ticket] = await tickets_of(db, ZH)
    assert ticket.urgent
    assert t("🚨 It is marked urgent.") in bot.last_text(ZH.id)

    # An emergency category warns as soon as it is chosen, and only once.
    await bot.send(bot.updates.command(OTHER, "/report"))
    await press(bot, OTHER, "rp:cat:safety_hazard")
    assert bot.texts(OTHER.id)[-1].startswith(html_visible_text(guidance) + "\n\n")
    assert "rp:back:description" in _data(bot.fake.last("sendMessage"))  # the question below
    await bot.send(bot.updates.private_text(OTHER, "小区门口的燃气管道有异味"))
    assert "110" not in bot.last_text(OTHER.id)
    assert "rp:skip:media" in _data(bot.fake.last("sendMessage"))


# Words that only look like danger: a word inside another word ("fired", "begun"), a place
# ("fire exit"), a hazard to report (火灾隐患), a help line (打人工客服), a hot-pot shop (一起火锅).
NOT_EMERGENCIES = [
    "My employer fired me and has not paid my wages",
    "Work has begun on the road outside without any notice",
    "The company may collapse and nobody pays us",
    "The fire exit is blocked by bicycles",
    "打人工客服电话一直没人接",
    "楼道堆满杂物，有火灾隐患",
    "楼下一起火锅店油烟太大",
    "打人工客服電話一直沒人接",
    "樓道堆滿雜物，有火災隱患",
    "我要打人工客服",
    "打人工服務的電話打不通",
]
EMERGENCIES = [
    "There is a fire in the stairwell",
    "A man with a GUN is shouting at the gate",
    "Gas leak in block 3, it smells everywhere",
    "The ceiling collapsed on the third floor",
    "楼道起火了",
    "火锅店起火了",
    "有人持刀砍人",
    "樓道起火了，有人受傷了",
    # "打人" followed by "工作人员": a help line's phrase must not hide it.
    "他在打人工作人员都不敢管",
]


@pytest.mark.parametrize("text", NOT_EMERGENCIES)
def test_words_that_only_look_like_danger_are_no_emergency(text: str) -> None:
    config = make_config()
    assert not tickets.is_emergency(config, config.category("sanitation"), text)


@pytest.mark.parametrize("text", EMERGENCIES)
def test_real_emergencies_still_match(text: str) -> None:
    config = make_config()
    assert tickets.is_emergency(config, config.category("sanitation"), text)


async def test_a_fire_exit_is_not_an_emergency(rbot: BotEnv, db) -> None:
    bot = rbot
    await bot.send(bot.updates.command(EN, "/report"))
    await press(bot, EN, "rp:cat:sanitation")
    await bot.send(bot.updates.private_text(EN, "The fire exit is blocked by bicycles"))
    assert not any("110" in text for text in bot.texts(EN.id))
    assert (await draft(db, EN)).data["urgent"] is False


async def test_wrong_input_gets_an_explanation_and_the_same_question(rbot: BotEnv,
                                                                     db) -> None:
    bot = rbot
    t = bot.runtime.translator("en")
    await bot.send(bot.updates.command(EN, "/report"))
    await bot.send(bot.updates.private_text(EN, "my street is dirty"))
    assert bot.last_text(EN.id).startswith(t("Please use the buttons below."))
    assert "rp:cat:sanitation" in _data(bot.fake.last("sendMessage"))
    await press(bot, EN, "rp:cat:sanitation")

    await bot.send(bot.updates.private_text(EN, "  dirty  "))
    assert bot.last_text(EN.id).startswith(t(
        "That is too short: please write at least {min} characters (this was {count}).",
        min=10, count=5))
    await bot.send(bot.updates.private_text(EN, "x" * 2001))
    assert bot.last_text(EN.id).startswith(t(
        "That is too long: please keep it within {max} characters (this was {count}).",
        max=2000, count=2001))
    # Characters as a person counts them: five emoji (ten UTF-16 units, one with a skin
    # tone and a family of five code points) are no description at all.
    await bot.send(bot.updates.private_text(EN, "😡😡👍🏽👨‍👩‍👧🔥"))
    assert bot.last_text(EN.id).startswith(t(
        "Please write it in words: emoji and symbols alone do not say what is wrong."))
    await bot.send(bot.updates.private_text(EN, "bins 👨‍👩‍👧👍🏽"))
    assert bot.last_text(EN.id).startswith(t(
        "That is too short: please write at least {min} characters (this was {count}).",
        min=10, count=7))
    assert (await draft(db, EN)).step == "description"
    # 511 characters, but as long in a message as 2040 (the summary must fit Telegram's limit).
    await bot.send(bot.updates.private_text(EN, "a" + "👨‍👩‍👧" * 510))
    assert bot.last_text(EN.id).startswith(t(
        "That is too long: please keep it within {max} characters (this was {count}).",
        max=2000, count=2040))
    await bot.send(bot.updates.sticker(EN))
    assert bot.last_text(EN.id).startswith(t(
        "Please describe the problem in words, or send a voice message or a video note. "
        "Stickers, photos and files do not work here (photos come next)."))
    # An album sent too early is explained once, not once per photo.
    sent = len(bot.texts(EN.id))
    for update in bot.updates.media_group(EN, 3):
        await bot.send(update)
    assert len(bot.texts(EN.id)) == sent + 1
    assert (await draft(db, EN)).step == "description"
    assert "rp:back:description" in _data(bot.fake.last("sendMessage"))

    # A voice message answers the step.
    await bot.send(bot.updates.voice(EN))
    assert (await draft(db, EN)).data["spoken"][0] == "voice"

    await bot.send(bot.updates.private_text(EN, "here is a photo"))
    assert bot.last_text(EN.id).startswith(t(
        "Please send photos or videos (up to {max}), or press “{button}”.", max=6,
        button=t("Skip")))
    await bot.send(bot.updates.photo(EN, file_size=25 * 1024 * 1024))
    assert bot.last_text(EN.id).startswith(t(
        "That file is too large ({size} MB). Bots can receive files of up to {limit} MB; "
        "please send a smaller one.", size="25.0", limit="20"))
    assert (await draft(db, EN)).step == "media"
    await bot.send(bot.updates.photo(EN))
    assert (await draft(db, EN)).step == "place"

    # Edits are not picked up, and say so; the draft stays where it was.
    original = bot.updates.private_text(EN, "Somewhere")
    await bot.send(bot.updates.edited_message(original, "Elsewhere"))
    assert "edited" in bot.last_text(EN.id)
    assert (await draft(db, EN)).step == "place"
    assert "address" not in (await draft(db, EN)).data


async def test_back_and_cancel(rbot: BotEnv, db) -> None:
    bot = rbot
    t = bot.runtime.translator("en")
    await to_place(bot, EN)
    await press(bot, EN, "rp:back:place")
    removal, question = bot.fake.calls_to("sendMessage")[-2:]
    assert removal.params["reply_markup"] == {"remove_keyboard": True}
    assert "rp:skip:media" in _data(question)
    assert (await draft(db, EN)).step == "media"
    await press(bot, EN, "rp:back:media")
    await press(bot, EN, "rp:back:description")
    assert "rp:cat:sanitation" in _data(bot.fake.last("sendMessage"))
    assert (await draft(db, EN)).data["description"] == TEXT  # kept for the way forward
    # A back button of a step the draft has left is stale.
    await press(bot, EN, "rp:back:place")
    assert alert(bot) == t("This button is no longer valid.")

    await bot.send(bot.updates.command(EN, "/cancel"))
    assert bot.last_text(EN.id) == t("Your report was cancelled; nothing was sent.")
    assert bot.fake.last("sendMessage").params["reply_markup"] == {"remove_keyboard": True}
    assert await draft(db, EN) is None
    await bot.send(bot.updates.command(EN, "/cancel"))
    assert bot.last_text(EN.id) == t("There is nothing to cancel.")
    await press(bot, EN, "rp:cat:sanitation")
    assert alert(bot) == t("This button is no longer valid.")
    # Outside the flow, words are offered to be reported (handlers.freetext).
    await bot.send(bot.updates.private_text(EN, "hello"))
    assert bot.last_text(EN.id) == t(
        "Hello! To report a problem, describe it in a sentence or two (at least {min} "
        "characters) and I will offer to send it, or choose from the menu.", min=10)


async def test_edit_from_the_summary_returns_to_the_summary(rbot: BotEnv, db) -> None:
    bot = rbot
    await to_summary(bot, EN)
    await press(bot, EN, "rp:edit:description")
    await bot.send(bot.updates.private_text(EN, "The bins at gate 2 overflow every day"))
    assert (await draft(db, EN)).step == "summary"
    assert "The bins at gate 2" in bot.last_text(EN.id)
    await press(bot, EN, "rp:edit:place")
    await press(bot, EN, "rp:back:place")  # never mind: back to the summary
    assert (await draft(db, EN)).step == "summary"
    await press(bot, EN, "rp:edit:contact")
    await press(bot, EN, "rp:skip:contact")
    assert (await draft(db, EN)).step == "summary"
    assert "phone" not in (await draft(db, EN)).data


async def test_anonymous_only_where_the_category_allows_it(rbot: BotEnv, db) -> None:
    bot = rbot
    t = bot.runtime.translator("zh_Hans")
    await bind_group(bot)
    await to_place(bot, ZH, category="neighbour_dispute")
    await bot.send(bot.updates.location(ZH, *INSIDE))
    assert "rp:anon" not in _data(bot.fake.last("sendMessage"))
    await bot.send(bot.updates.callback(ZH, "rp:anon", bot.fake.last("sendMessage").result))
    assert alert(bot) == t("This button is no longer valid.")
    assert (await draft(db, ZH)).step == "contact"
    await bot.send(bot.updates.command(ZH, "/cancel"))

    await to_place(bot, ZH, category="safety_hazard")
    await bot.send(bot.updates.location(ZH, *INSIDE))
    await press(bot, ZH, "rp:anon")
    assert t("Contact: anonymous (the workers see neither your name nor your number)") in (
        bot.last_text(ZH.id))
    await press(bot, ZH, "rp:submit")
    [ticket] = await tickets_of(db, ZH)
    assert ticket.anonymous and ticket.reporter_name is None and ticket.reporter_phone is None
    async with db.sessions() as session:
        card = await session.scalar(select(OutboxMessage).where(
            OutboxMessage.ticket_id == ticket.id, OutboxMessage.purpose == "card"))
    assert "张" not in card.params["text"]


async def test_someone_elses_contact_is_refused(rbot: BotEnv, db) -> None:
    bot = rbot
    t = bot.runtime.translator("en")
    await to_place(bot, EN)
    await bot.send(bot.updates.location(EN, *INSIDE))
    await bot.send(bot.updates.contact(EN, "+86 139 0000 0000", user_id=OTHER.id,
                                       first_name="Mum"))
    assert bot.last_text(EN.id).startswith(t(
        "That is someone else's contact. Please share your own number with the button below, "
        "or press “{button}”.", button=t("Skip")))
    await bot.send(bot.updates.contact(EN, "+86 139 0000 0001", first_name="No account"))
    assert (await draft(db, EN)).step == "contact"
    await bot.send(bot.updates.private_text(EN, "13900000000"))
    assert bot.last_text(EN.id).startswith(t(
        "Please share your phone number with the button below, or press “{button}”.",
        button=t("Skip")))
    await bot.send(bot.updates.contact(EN, PHONE))
    assert (await draft(db, EN)).data["phone"] == PHONE


async def test_a_nearby_open_ticket_is_offered_and_joined(rbot: BotEnv, db) -> None:
    bot = rbot
    t = bot.runtime.translator("zh_Hans")
    await bind_group(bot)
    await to_summary(bot, ZH)
    await press(bot, ZH, "rp:submit")
    [first] = await tickets_of(db, ZH)

    await to_summary(bot, OTHER, at=NEARBY, text="垃圾堆在楼道里很多天了，味道很大")
    await press(bot, OTHER, "rp:submit")
    offer = bot.fake.last("sendMessage")
    assert _data(offer)[:2] == [f"rp:join:{first.id}", "rp:new_anyway"]
    # Someone else's report: its number, kind, distance and status — nothing they wrote.
    sanitation = category_name(bot.runtime.config, "sanitation", "zh_Hans")
    assert t("An open report of the same kind was made about {distance} m away: "
             "<b>No. {number}</b> · {category} · {status}.", distance=150,
             number=first.number, category=sanitation, status=t(STATUS_LABELS["open"])
             ).replace("<b>", "").replace("</b>", "") in bot.last_text(OTHER.id)
    for private in (TEXT, "张", "李", "138", first.reporter_phone):
        assert private not in offer.params["text"], private
    assert (await draft(db, OTHER)).step == "duplicate"
    await bot.send(bot.updates.callback(OTHER, "rp:join:999999", offer.result))
    assert alert(bot) == t("This button is no longer valid.")

    await press(bot, OTHER, f"rp:join:{first.id}")
    assert t("You are now following <b>No. {number}</b>: you will get the same updates as "
             "the person who reported it. To follow it, send /start and open “My tickets”.",
             number=first.number).replace("<b>", "").replace("</b>", "") == \
        bot.last_text(OTHER.id)
    assert await tickets_of(db, OTHER) == [] and await draft(db, OTHER) is None
    async with db.sessions() as session:
        co = (await session.scalars(select(TicketReporter))).all()
        assert [(r.ticket_id, r.user_id) for r in co] == [(first.id, OTHER.id)]
        note = (await session.scalars(select(OutboxMessage).where(
            OutboxMessage.ticket_id == first.id, OutboxMessage.chat_id == GROUP.id,
            OutboxMessage.purpose == "relay", OutboxMessage.method == "sendMessage"))).all()
    assert any("Another resident" in row.params["text"] or "居民" in row.params["text"]
               for row in note)

    # "Submit as a new report" opens a ticket of its own.
    await to_summary(bot, EN, at=NEARBY)
    await press(bot, EN, "rp:submit")
    await press(bot, EN, "rp:new_anyway")
    assert len(await tickets_of(db, EN)) == 1


async def test_the_hourly_limit_keeps_the_draft(db, catalogs) -> None:
    async with custom_bot(db, catalogs, limits={"tickets_per_hour": 1}) as bot:
        t = bot.runtime.translator("en")
        await to_summary(bot, EN)
        await press(bot, EN, "rp:submit")
        await to_summary(bot, EN, at=SOUTH)  # far from the first: no duplicate offered
        await press(bot, EN, "rp:submit")
        assert bot.last_text(EN.id) == t(
            "You have already sent {limit} reports within the last hour, the most we accept. "
            "Your report is kept: press Submit again later.", limit=1)
        assert len(await tickets_of(db, EN)) == 1
        assert (await draft(db, EN)).step == "summary"
        bot.clock.advance(timedelta(hours=1, minutes=1))
        await press(bot, EN, "rp:submit")
        assert len(await tickets_of(db, EN)) == 2


async def test_a_restart_mid_flow_continues_the_draft(db, catalogs) -> None:
    first = await start_bot(db, catalogs)
    await first.send(first.updates.command(EN, "/report"))
    await press(first, EN, "rp:cat:infrastructure")
    await first.send(first.updates.private_text(EN, "The street light at gate 3 is out"))
    await stop_bot(first)
    assert first.errors == []

    second = await start_bot(db, catalogs, first_update_id=1000)
    for update in second.updates.media_group(EN, 2):
        await second.send(update)
    assert (await draft(db, EN)).step == "place"
    await second.send(second.updates.location(EN, *INSIDE))
    await second.send(second.updates.contact(EN, PHONE))
    await press(second, EN, "rp:submit")
    [ticket] = await tickets_of(db, EN)
    assert ticket.description == "The street light at gate 3 is out"
    assert ticket.category == "infrastructure"
    await stop_bot(second)
    second.fake.assert_no_violations()
    assert second.errors == []


async def test_the_same_update_twice_is_answered_once(rbot: BotEnv, db) -> None:
    bot = rbot
    await bot.send(bot.updates.command(EN, "/report"))
    await press(bot, EN, "rp:cat:sanitation")
    update = bot.updates.private_text(EN, TEXT)
    sent = len(bot.texts(EN.id))
    await bot.send(update)
    await bot.send(update)
    assert len(bot.texts(EN.id)) == sent + 1
    assert (await draft(db, EN)).step == "media"


async def test_forged_callback_data_changes_nothing(rbot: BotEnv, db) -> None:
    bot = rbot
    t = bot.runtime.translator("en")
    await bot.send(bot.updates.command(EN, "/report"))
    message = bot.fake.last("sendMessage").result
    for data in ("rp:cat:legal_family", "rp:cat:nope", "rp:node:1", "rp:node:abc",
                 "rp:join:1", "rp:edit:category", "rp:submit", "rp:skip:place",
                 "rp:back:category", "rp:zzz", "rp:cancel:x", "rp:" + "x" * 61,
                 "rp:way:chat", "rp:day:2026-11-24", "rp:ent:1", "rp:new:bogus"):
        await bot.send(bot.updates.callback(EN, data, message))
        assert alert(bot) == t("This button is no longer valid."), data
    row = await draft(db, EN)
    assert (row.step, row.data) == ("category", {"kind": "report", "token": row.data["token"]})

    await press(bot, EN, "rp:cat:sanitation")
    await bot.send(bot.updates.private_text(EN, TEXT))
    await press(bot, EN, "rp:skip:media")
    desk = await node_id(db, "legal")
    for data in (f"rp:node:{desk}", "rp:node:999999", "rp:last", f"rp:node:{2**70}"):
        await bot.send(bot.updates.callback(EN, data, message))
        assert alert(bot) == t("This button is no longer valid."), data
    assert (await draft(db, EN)).step == "place"


async def test_unfinished_drafts_are_offered_again(rbot: BotEnv, db) -> None:
    bot = rbot
    t = bot.runtime.translator("en")
    await bot.send(bot.updates.command(EN, "/report"))
    await press(bot, EN, "rp:cat:sanitation")
    await bot.send(bot.updates.command(EN, "/report"))
    assert _data(bot.fake.last("sendMessage")) == ["rp:resume", "rp:restart", "rp:cancel"]
    await press(bot, EN, "rp:resume")
    assert "rp:back:description" in _data(bot.fake.last("sendMessage"))
    await bot.send(bot.updates.command(EN, "/report"))
    await press(bot, EN, "rp:restart")
    row = await draft(db, EN)
    assert (row.step, row.data.get("category")) == ("category", None)
    # What /start asks inside its unit of work, and the offer it then shows.
    async with UnitOfWork(db) as uow:
        unfinished = await report.unfinished_report(uow, EN.id)
    assert unfinished is not None and unfinished.step == "category"
    await bot.send(bot.updates.command(EN, "/start"))
    assert "unfinished report" in bot.last_text(EN.id)
    assert _data(bot.fake.last("sendMessage")) == ["rp:resume", "rp:restart", "rp:cancel"]
    assert report_views.unfinished_text(bot.runtime.config, t, unfinished) in \
        bot.last_text(EN.id)
    async with UnitOfWork(db) as uow:
        assert await report.unfinished_report(uow, OTHER.id) is None


async def test_continue_makes_the_report_the_only_conversation(rbot: BotEnv, db) -> None:
    """"Continue" saves the draft (it is the person's conversation again); a stale
    "Continue" of a report that was discarded meanwhile starts a new one."""
    bot = rbot
    t = bot.runtime.translator("en")
    await bot.send(bot.updates.command(EN, "/report"))
    await press(bot, EN, "rp:cat:sanitation")
    await bot.send(bot.updates.command(EN, "/report"))  # the offer: continue or start over
    bot.clock.advance(timedelta(minutes=5))
    # A draft of another private flow left over from before the one-conversation rule, and
    # a question the same person answers as a worker in a group.
    async with UnitOfWork(db) as uow:
        uow.session.add(Draft(user_id=EN.id, flow="addinfo", step="wait",
                              data={"ticket_id": 1}, created_at=bot.clock.now(),
                              updated_at=bot.clock.now()))
        uow.session.add(Draft(user_id=EN.id, flow="resolve", step="note",
                              data={"ticket_id": 1}, created_at=bot.clock.now(),
                              updated_at=bot.clock.now()))
        await uow.commit()
    bot.clock.advance(timedelta(minutes=5))
    await press(bot, EN, "rp:resume")
    row = await draft(db, EN)
    assert row.updated_at == bot.clock.now()
    async with UnitOfWork(db) as uow:
        assert (await uow.drafts.any_of(EN.id)).flow == "report"
        assert await uow.drafts.get(EN.id, "addinfo") is None
        assert await uow.drafts.get(EN.id, "resolve") is not None  # not a private one
    await bot.send(bot.updates.private_text(EN, TEXT))
    assert (await draft(db, EN)).data["description"] == TEXT

    # Cancelled meanwhile: the old "Continue" begins a new report.
    await bot.send(bot.updates.command(EN, "/cancel"))
    assert await draft(db, EN) is None
    await press(bot, EN, "rp:resume")
    # Said above the new report's first question, in the same message.
    assert bot.texts(EN.id)[-1].startswith(t("That unfinished report is no longer kept. "
                                             "Please start again.") + "\n\n")
    assert "rp:cat:sanitation" in _data(bot.fake.last("sendMessage"))
    assert (await draft(db, EN)).step == "category"


async def test_html_and_control_characters_are_escaped(rbot: BotEnv, db) -> None:
    bot = rbot
    await bind_group(bot)
    text = "Leaking pipe <b>&amp; <script>x</script> \x01\x1f in hall 3 & 4"
    await to_place(bot, EN, text=text)
    await bot.send(bot.updates.private_text(EN, "<i>Block</i> 3 & \x02 <4>"))
    await press(bot, EN, f"rp:node:{await node_id(db, 'SFQ-DH')}")
    await press(bot, EN, f"rp:node:{await node_id(db, 'SFQ-DH-01')}")
    await press(bot, EN, f"rp:node:{await node_id(db, GRID)}")
    await press(bot, EN, "rp:skip:contact")
    summary = bot.last_text(EN.id)
    assert "Leaking pipe <b>&amp; <script>x</script>  in hall 3 & 4" in summary
    assert "<i>Block</i> 3 &  <4>" in summary
    await press(bot, EN, "rp:submit")
    [ticket] = await tickets_of(db, EN)
    assert "\x01" not in ticket.description and ticket.reporter_name == "Ann <b>&amp;"
    async with db.sessions() as session:
        card = await session.scalar(select(OutboxMessage).where(
            OutboxMessage.ticket_id == ticket.id, OutboxMessage.purpose == "card"))
    assert "&lt;script&gt;" in card.params["text"]
    assert "Ann &lt;b&gt;&amp;amp;" in card.params["text"]
    await deliver(bot)


async def test_a_name_cannot_turn_the_card_around(rbot: BotEnv, db) -> None:
    """A right-to-left override in a name would reverse the masked phone after it on the
    card; names and texts from people keep to their own place on the line."""
    bot = rbot
    await bind_group(bot)
    tricky = User(300_010, "Bob\u202e & Lee", language_code="en")
    hebrew = User(300_011, "שרה", last_name="כהן", language_code="en")
    for user, text, category in (
            (tricky, "Broken lamp \u2067at the gate\u2069 since Monday", "sanitation"),
            (hebrew, "The neighbours have blocked the corridor again", "neighbour_dispute")):
        await to_summary(bot, user, text=text, category=category)
        assert "\u2067" not in bot.last_text(user.id)
        await press(bot, user, "rp:submit")
    async with db.sessions() as session:
        cards = (await session.scalars(select(OutboxMessage).where(
            OutboxMessage.purpose == "card").order_by(OutboxMessage.id))).all()
    first, second = (card.params["text"] for card in cards)
    assert "👤 Bob &amp; Lee · 138****5678" in first
    assert not {"\u202e", "\u2067", "\u2069"} & set(first)
    # Text in a right-to-left script is isolated: shown right to left inside, and the phone
    # after it stays as it is.
    assert "👤 \u2068שרה כהן\u2069 · 138****5678" in second
    await deliver(bot)


async def test_an_old_summary_cannot_act_on_the_next_report(rbot: BotEnv, db) -> None:
    bot = rbot
    t = bot.runtime.translator("en")
    await to_summary(bot, EN)
    old_summary = _find(bot, EN, "rp:submit")
    await press(bot, EN, "rp:submit")
    [first] = await tickets_of(db, EN)
    # Sent: the summary's buttons go.
    removed = bot.fake.last("editMessageReplyMarkup")
    assert removed.params["message_id"] == old_summary.result["message_id"]
    assert "reply_markup" not in removed.params or not removed.params["reply_markup"].get(
        "inline_keyboard")

    # The next report reaches its own summary; the old summary's buttons (still on a client
    # that missed the edit) neither send nor change it.
    await to_summary(bot, EN, category="infrastructure",
                     text="The street light at gate 3 has been out for a week")
    for data in _data(old_summary):
        await bot.send(bot.updates.callback(EN, data, old_summary.result))
        assert alert(bot) == t("That report was already sent or cancelled; this summary is "
                               "out of date.")
    current = await draft(db, EN)
    assert current.step == "summary" and "editing" not in current.data
    assert [ticket.id for ticket in await tickets_of(db, EN)] == [first.id]
    # Its own summary works.
    await press(bot, EN, "rp:submit")
    assert len(await tickets_of(db, EN)) == 2


async def test_each_question_says_which_step_it_is(rbot: BotEnv, db) -> None:
    bot = rbot
    t = bot.runtime.translator("zh_Hans")
    await bot.send(bot.updates.command(ZH, "/report"))
    assert bot.last_text(ZH.id).startswith(t("Step {step} of {total}", step=1, total=5))
    await press(bot, ZH, "rp:cat:sanitation")
    assert t("Step {step} of {total}", step=2, total=5) in bot.last_text(ZH.id)
    await bot.send(bot.updates.private_text(ZH, TEXT))
    assert t("Step {step} of {total}", step=3, total=5) in bot.last_text(ZH.id)
    await press(bot, ZH, "rp:skip:media")
    assert t("Step {step} of {total}", step=4, total=5) in bot.texts(ZH.id)[-2]
    await bot.send(bot.updates.location(ZH, *INSIDE))
    assert t("Step {step} of {total}", step=5, total=5) in bot.texts(ZH.id)[-2]
    await bot.send(bot.updates.contact(ZH, PHONE))
    summary = bot.last_text(ZH.id)  # no question: no number
    assert t("Step {step} of {total}", step=5, total=5) not in summary
    assert t("Step {step} of {total}", step=6, total=6) not in summary
    # A consultation counts its own questions.
    await bot.send(bot.updates.command(EN, "/consult"))
    en = bot.runtime.translator("en")
    assert en("Step {step} of {total}", step=1, total=5) in bot.last_text(EN.id)
