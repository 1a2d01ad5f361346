"""Enterprise registration through the real Application, on SQLite and PostgreSQL: the whole
form, wrong codes and phones with their specific messages, a code registered by someone else,
joining with an invitation code and the limit on wrong ones, forged buttons, several
enterprises per person, and leaving."""

from __future__ import annotations

import html
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.services import enterprises
from bot.services.credit_code import check_character
from storage.models import Draft, Enterprise, EnterpriseContact
from storage.uow import UnitOfWork
from tests.harness import BotEnv
from tests.telegram_fake import Chat, User

OWNER = User(500_001, "Zhang <b>San</b>", language_code="zh-hans")
COLLEAGUE = User(500_002, "Li Si", language_code="zh-hans")
STRANGER = User(500_003, "Wang Wu", language_code="en")
GROUP = Chat(-1001000000555, "supergroup", title="some group")

CODE = "91310115MA1K4T2K0" + check_character("91310115MA1K4T2K0")
OTHER_CODE = "91440300708461136T"
NAME = "东湖<b>精密</b>机械有限公司 & Co"
PHONE = "13812345678"


def _t(bot: BotEnv, language: str = "zh_Hans"):
    return bot.runtime.translator(language)


def _data(call) -> list[str]:
    markup = call.params.get("reply_markup") or {}
    return [b.get("callback_data") for row in markup.get("inline_keyboard", []) for b in row]


def _find(bot: BotEnv, user: User, data: str):
    for call in reversed(bot.fake.calls):
        if call.method in ("sendMessage", "editMessageText") and \
                call.params.get("chat_id") == user.id and data in _data(call):
            return call
    raise AssertionError(f"no message to {user.id} has a {data!r} button")


async def press(bot: BotEnv, user: User, data: str, *, on: str | None = None) -> None:
    """Press the button `data`, on the newest message that has it (or that has `on`)."""
    call = _find(bot, user, on or data)
    await bot.send(bot.updates.callback(user, data, call.result))


def alerted(bot: BotEnv, language: str = "zh_Hans") -> bool:
    answer = bot.fake.last("answerCallbackQuery")
    return answer.params.get("show_alert") is True and answer.params.get("text") == _t(
        bot, language)("This button is no longer valid.")


def shown(t, msgid: str, name: str = NAME, **values: str) -> str:
    """What the person sees of an HTML message naming `name`."""
    text = t(msgid, name="\0", **values)
    for tag in ("<b>", "</b>", "<code>", "</code>"):
        text = text.replace(tag, "")
    return text.replace("\0", name)


async def say(bot: BotEnv, user: User, text: str) -> None:
    await bot.send(bot.updates.private_text(user, text))


async def draft(bot: BotEnv, user: User) -> Draft | None:
    async with UnitOfWork(bot.runtime.db) as uow:
        return await uow.drafts.any_of(user.id)


async def node_id(bot: BotEnv, code: str) -> int:
    async with UnitOfWork(bot.runtime.db) as uow:
        return (await uow.nodes.by_code(code)).id


async def all_enterprises(bot: BotEnv) -> list[Enterprise]:
    async with bot.runtime.db.sessions() as session:
        return list((await session.scalars(select(Enterprise).order_by(Enterprise.id))).all())


async def contacts(bot: BotEnv, enterprise_id: int) -> dict[int, tuple[str, str, str]]:
    async with bot.runtime.db.sessions() as session:
        rows = (await session.scalars(select(EnterpriseContact).where(
            EnterpriseContact.enterprise_id == enterprise_id))).all()
    return {c.user_id: (c.role, c.name, c.phone) for c in rows}


async def register(bot: BotEnv, user: User, *, name: str = NAME, code: str = CODE,
                   contact: str = "张三", phone: str = PHONE, street: str = "SFQ-DH",
                   same_contact: bool = False) -> Enterprise:
    await bot.send(bot.updates.command(user, "/enterprise"))
    await press(bot, user, "en:reg")
    await say(bot, user, name)
    await say(bot, user, code)
    if same_contact:
        await press(bot, user, "en:same")
    else:
        await say(bot, user, contact)
        await say(bot, user, phone)
    await press(bot, user, "en:ind:manufacturing")
    await press(bot, user, f"en:place:{await node_id(bot, street)}")
    await press(bot, user, "en:agree")
    await press(bot, user, "en:confirm")
    return next(e for e in await all_enterprises(bot) if e.credit_code == code)


async def join(bot: BotEnv, user: User, invite: str, *, contact: str = "李四",
               phone: str = "13900001111") -> None:
    await bot.send(bot.updates.command(user, "/enterprise"))
    await press(bot, user, "en:join")
    await say(bot, user, invite)
    await say(bot, user, contact)
    await say(bot, user, phone)
    await press(bot, user, "en:agree")


# -- registering ----------------------------------------------------------------------------------

async def test_a_whole_registration(bot: BotEnv) -> None:
    t = _t(bot)
    await bot.send(bot.updates.command(OWNER, "/enterprise"))
    assert _data(bot.fake.last("sendMessage")) == ["en:reg", "en:join"]
    await press(bot, OWNER, "en:reg")
    assert (await draft(bot, OWNER)).flow == "enterprise"
    assert _data(bot.fake.last("sendMessage")) == ["en:cancel"]  # no Back at the first step

    await say(bot, OWNER, NAME)
    assert t("Unified social credit code") in bot.last_text(OWNER.id) or \
        "统一社会信用代码" in bot.last_text(OWNER.id)
    await say(bot, OWNER, " " + CODE[:8].lower() + " " + CODE[8:] + " ")  # as people type it
    await say(bot, OWNER, "张<i>三</i>")
    phone_question, buttons = bot.fake.calls_to("sendMessage")[-2:]
    assert phone_question.params["reply_markup"]["keyboard"][0][0]["request_contact"] is True
    assert _data(buttons) == ["en:back:phone", "en:cancel"]

    await say(bot, OWNER, "+86 138-1234-5678")
    removal, industries = bot.fake.calls_to("sendMessage")[-2:]
    assert removal.params["reply_markup"] == {"remove_keyboard": True}
    assert "en:ind:manufacturing" in _data(industries)
    assert len([d for d in _data(industries) if d.startswith("en:ind:")]) == 15

    await press(bot, OWNER, "en:ind:information_technology")
    places = bot.fake.last("sendMessage")
    street, south = await node_id(bot, "SFQ-DH"), await node_id(bot, "SFQ-NY")
    assert [d for d in _data(places) if d.startswith("en:place:")] == [
        f"en:place:{street}", f"en:place:{south}"]  # streets only: no communities, grids, desks
    await press(bot, OWNER, f"en:place:{street}")
    assert "en:agree" in _data(bot.fake.last("sendMessage"))
    await press(bot, OWNER, "en:agree")

    summary = bot.fake.last("sendMessage")
    text = summary.params["text"]
    assert "东湖&lt;b&gt;精密&lt;/b&gt;机械有限公司 &amp; Co" in text
    assert "张&lt;i&gt;三&lt;/i&gt;" in text and PHONE in text and CODE in text
    assert "信息传输、软件和信息技术服务业" in text and "东湖街道" in text
    assert "en:confirm" in _data(summary)
    # The button that changes the contact person is called what the summary calls it (the
    # name and then the number; 联系方式 would promise the number alone).
    labels = {b["callback_data"]: b["text"] for row in summary.params["reply_markup"][
        "inline_keyboard"] for b in row}
    assert labels["en:edit:contact"] == "✏️ 联系人"
    assert t("Contact: {name}, {phone}", name="", phone="").startswith("联系人")

    await press(bot, OWNER, "en:confirm")
    [enterprise] = await all_enterprises(bot)
    assert (enterprise.name, enterprise.credit_code) == ("东湖<b>精密</b>机械有限公司 & Co", CODE)
    assert (enterprise.industry, enterprise.node_id) == ("information_technology", street)
    assert enterprise.created_by == OWNER.id and enterprise.consent_at is not None
    assert len(enterprise.invite_code) == enterprises.INVITE_LENGTH
    assert set(enterprise.invite_code) <= set(enterprises.INVITE_ALPHABET)
    assert await contacts(bot, enterprise.id) == {OWNER.id: ("owner", "张<i>三</i>", PHONE)}
    done = bot.last_text(OWNER.id)
    assert enterprise.invite_code in done and NAME in done
    assert await draft(bot, OWNER) is None

    # The overview: masked code, industry, place, contacts, the invitation code.
    await bot.send(bot.updates.command(OWNER, "/enterprise"))
    overview = bot.fake.last("sendMessage")
    assert CODE not in overview.params["text"] and CODE[:6] + "********" + CODE[-4:] in (
        overview.params["text"])
    assert enterprise.invite_code in overview.params["text"]
    assert t("Contacts: {count} · you are the {role}", count=1, role=t("owner")) in (
        overview.params["text"])
    assert _data(overview) == ["en:reg", "en:join", f"en:leave:{enterprise.id}"]

    # The main menu has the entry, and it opens the same overview.
    await bot.send(bot.updates.command(OWNER, "/start"))
    assert "en:menu" in _data(bot.fake.last("sendMessage"))
    await press(bot, OWNER, "en:menu")
    assert bot.fake.last("sendMessage").params["text"] == overview.params["text"]

    # The old buttons of the finished form do nothing.
    await press(bot, OWNER, "en:confirm")
    assert alerted(bot)
    assert len(await all_enterprises(bot)) == 1


@pytest.mark.parametrize(("typed", "expected"), [
    ("9131011", ("A unified social credit code has 18 characters; this one has {count}.",
                 {"count": 7})),
    (CODE[:10] + "O" + CODE[11:], ("Character {position}, “{character}”, is not used in "
                                   "credit codes: they have digits and capital letters, but "
                                   "no I, O, Z, S or V.", {"position": 11, "character": "O"})),
    ("9131A115MA1K4T2K0" + check_character("9131A115MA1K4T2K0"),
     ("Characters 3 to 8 are the area code and are digits only, but character {position} is "
      "“{character}”.", {"position": 5, "character": "A"})),
    (CODE[:-1] + ("X" if CODE[-1] != "X" else "Y"),
     ("The code does not add up: for the first 17 characters the last one should be "
      "“{expected}”, not “{character}”. Please compare it with the business licence; one "
      "character is probably mistyped.",
      {"expected": CODE[-1], "character": "X" if CODE[-1] != "X" else "Y"})),
])
async def test_a_wrong_code_says_what_is_wrong_and_asks_again(bot: BotEnv, typed: str,
                                                               expected) -> None:
    t = _t(bot)
    await bot.send(bot.updates.command(OWNER, "/enterprise"))
    await press(bot, OWNER, "en:reg")
    await say(bot, OWNER, NAME)
    question = bot.last_text(OWNER.id).split("\n\n", 1)[1]  # after "✅ Noted."
    await say(bot, OWNER, typed)
    answer = bot.last_text(OWNER.id)
    msgid, values = expected
    assert answer.startswith(t(msgid, **values))
    assert answer.endswith(question)  # the same question again
    assert (await draft(bot, OWNER)).step == "code"
    await say(bot, OWNER, CODE)
    assert (await draft(bot, OWNER)).step == "contact"


async def test_wrong_phones_and_someone_elses_contact_card(bot: BotEnv) -> None:
    t = _t(bot, "en")
    await bot.send(bot.updates.command(STRANGER, "/enterprise"))
    await press(bot, STRANGER, "en:reg")
    for answer in (NAME, CODE, "Wang Wu"):
        await say(bot, STRANGER, answer)
    for wrong in ("12345", "021 6123 4567", "+852 6123 4567", "12812345678"):
        await say(bot, STRANGER, wrong)
        # One message: the share button is still under the input field.
        assert _data(bot.fake.last("sendMessage")) == ["en:back:phone", "en:cancel"]
        assert bot.fake.last("sendMessage").params["text"].startswith(t(
            "That is not a mainland China mobile number: it has 11 digits and starts with "
            "13 to 19, such as 138 1234 5678."))
        assert (await draft(bot, STRANGER)).step == "phone"
    # A shared number that will not do: the share button under the input field went with
    # the press, so it comes again with the question (then the other choices).
    await bot.send(bot.updates.contact(STRANGER, "+852 6123 4567"))
    question, other_choices = bot.fake.calls_to("sendMessage")[-2:]
    assert question.params["text"].startswith(t(
        "That is not a mainland China mobile number: it has 11 digits and starts with "
        "13 to 19, such as 138 1234 5678."))
    assert question.params["reply_markup"]["keyboard"][0][0]["request_contact"] is True
    assert _data(other_choices) == ["en:back:phone", "en:cancel"]
    await bot.send(bot.updates.contact(STRANGER, "+8613900002222", user_id=OWNER.id))
    question = bot.fake.calls_to("sendMessage")[-2]
    assert question.params["text"].startswith(t(
        "That is someone else's contact. Please type your own mobile number, or share it with "
        "the button below."))
    assert question.params["reply_markup"]["keyboard"][0][0]["request_contact"] is True
    await bot.send(bot.updates.contact(STRANGER, "+86 139 0000 2222"))  # their own, shared
    d = await draft(bot, STRANGER)
    assert (d.step, d.data["phone"]) == ("industry", "13900002222")


async def test_bad_input_gets_an_answer_and_the_same_question(bot: BotEnv) -> None:
    t = _t(bot)
    await bot.send(bot.updates.command(OWNER, "/enterprise"))
    await press(bot, OWNER, "en:reg")
    question = bot.last_text(OWNER.id)
    await bot.send(bot.updates.sticker(OWNER))
    assert bot.last_text(OWNER.id) == t("Please type the answer as text.") + "\n\n" + question
    await say(bot, OWNER, "A")
    assert bot.last_text(OWNER.id).startswith(t(
        "That is too short: please write at least {min} characters.", min=2))
    await say(bot, OWNER, "厂" * 101)
    assert bot.last_text(OWNER.id).startswith(t(
        "That is too long: please keep it within {max} characters (this was {count}).",
        max=100, count=101))
    await say(bot, OWNER, "  Multi\nline\x07  name  ")
    assert (await draft(bot, OWNER)).data["name"] == "Multi line name"

    # An edit of an answer is not taken; the fallback says to send it again.
    sent = bot.fake.calls_to("sendMessage")[-1]
    await bot.send(bot.updates.edited_message(bot.fake.last("sendMessage").result, "x"))
    assert bot.last_text(OWNER.id) == t(
        "I noticed you edited a message. Edits are not picked up; please send the correction "
        "as a new message.")
    assert bot.fake.calls_to("sendMessage")[-2] is sent

    # Back returns to the previous question; text where buttons answer gets the buttons.
    await say(bot, OWNER, CODE)
    await press(bot, OWNER, "en:back:contact")
    assert (await draft(bot, OWNER)).step == "code"
    await say(bot, OWNER, CODE)
    await say(bot, OWNER, "张三")
    await say(bot, OWNER, PHONE)
    await say(bot, OWNER, "制造业")
    assert bot.last_text(OWNER.id).startswith(t("Please use the buttons below."))
    assert "en:ind:manufacturing" in _data(bot.fake.last("sendMessage"))
    # A button of an earlier step, or a forged industry, changes nothing.
    await press(bot, OWNER, "en:back:contact", on="en:back:phone")
    assert alerted(bot)
    await press(bot, OWNER, "en:ind:nuclear", on="en:ind:manufacturing")
    assert alerted(bot)
    await press(bot, OWNER, f"en:place:{await node_id(bot, 'SFQ-DH-01-G1')}",
                on="en:ind:manufacturing")
    assert alerted(bot)
    assert (await draft(bot, OWNER)).step == "industry"

    # Editing from the summary comes back to the summary.
    await press(bot, OWNER, "en:ind:manufacturing")
    await press(bot, OWNER, f"en:place:{await node_id(bot, 'SFQ-NY')}")
    await press(bot, OWNER, "en:agree")
    await press(bot, OWNER, "en:edit:name")
    await say(bot, OWNER, "南苑食品有限公司")
    d = await draft(bot, OWNER)
    assert (d.step, d.data["name"]) == ("summary", "南苑食品有限公司")

    # /cancel ends it; the next message is no longer an answer.
    await bot.send(bot.updates.command(OWNER, "/cancel"))
    assert bot.last_text(OWNER.id) == t("Cancelled. Nothing was registered.")
    assert await draft(bot, OWNER) is None
    await say(bot, OWNER, "hello")
    assert bot.last_text(OWNER.id) == t(
        "Hello! To report a problem, describe it in a sentence or two (at least {min} "
        "characters) and I will offer to send it, or choose from the menu.", min=10)
    assert await all_enterprises(bot) == []


async def test_a_code_registered_by_someone_else_is_not_taken_over(bot: BotEnv) -> None:
    enterprise = await register(bot, OWNER)
    t = _t(bot, "en")
    await bot.send(bot.updates.command(STRANGER, "/enterprise"))
    await press(bot, STRANGER, "en:reg")
    await say(bot, STRANGER, "Another name Ltd")
    await say(bot, STRANGER, CODE)
    refusal = bot.fake.last("sendMessage")
    assert refusal.params["text"].startswith(t("This credit code is already registered"))
    for secret in ("张三", PHONE, "138****5678", "Zhang", NAME, enterprise.invite_code):
        assert secret not in refusal.params["text"], secret
    assert _data(refusal) == ["en:join", "en:cancel"]
    assert (await draft(bot, STRANGER)).step == "code"
    assert await contacts(bot, enterprise.id) == {OWNER.id: ("owner", "张三", PHONE)}

    # The person who registered it is told they already manage it; nothing is added.
    await bot.send(bot.updates.command(OWNER, "/enterprise"))
    await press(bot, OWNER, "en:reg")
    await say(bot, OWNER, "Whatever Ltd")
    await say(bot, OWNER, CODE)
    assert bot.last_text(OWNER.id) == shown(_t(bot), (
        "You already manage <b>{name}</b>, which has this credit code. /enterprise shows it."))
    assert await draft(bot, OWNER) is None
    assert len(await all_enterprises(bot)) == 1


async def test_registered_meanwhile_is_refused_at_the_end(bot: BotEnv) -> None:
    """Two people fill in the same code at once: the second Register is refused."""
    await bot.send(bot.updates.command(STRANGER, "/enterprise"))
    await press(bot, STRANGER, "en:reg")
    for answer in ("Late Ltd", CODE, "Wang Wu", PHONE):
        await say(bot, STRANGER, answer)
    await press(bot, STRANGER, "en:ind:finance")
    await press(bot, STRANGER, f"en:place:{await node_id(bot, 'SFQ-DH')}")
    await press(bot, STRANGER, "en:agree")
    await register(bot, OWNER)
    await press(bot, STRANGER, "en:confirm")
    assert bot.last_text(STRANGER.id).startswith(_t(bot, "en")(
        "This credit code is already registered"))
    assert (await draft(bot, STRANGER)).step == "code"
    [enterprise] = await all_enterprises(bot)
    assert set(await contacts(bot, enterprise.id)) == {OWNER.id}


# -- joining --------------------------------------------------------------------------------------

async def test_joining_with_the_invitation_code(bot: BotEnv) -> None:
    enterprise = await register(bot, OWNER)
    t = _t(bot)
    await bot.send(bot.updates.command(COLLEAGUE, "/enterprise"))
    await press(bot, COLLEAGUE, "en:join")
    invite = enterprise.invite_code
    await say(bot, COLLEAGUE, f" {invite[:4].lower()} {invite[4:]} ")
    assert bot.last_text(COLLEAGUE.id).startswith(shown(
        t, "Invitation code accepted: <b>{name}</b>."))
    await say(bot, COLLEAGUE, "李四")
    await say(bot, COLLEAGUE, "139 0000 1111")
    await press(bot, COLLEAGUE, "en:agree")
    assert await contacts(bot, enterprise.id) == {
        OWNER.id: ("owner", "张三", PHONE), COLLEAGUE.id: ("contact", "李四", "13900001111")}
    assert await draft(bot, COLLEAGUE) is None
    async with UnitOfWork(bot.runtime.db) as uow:
        assert [e.id for e in await uow.enterprises.of_user(COLLEAGUE.id)] == [enterprise.id]
        assert await enterprises.may_act_for(uow, COLLEAGUE.id, enterprise.id)
        assert not await enterprises.may_act_for(uow, STRANGER.id, enterprise.id)

    # Both see it, with two contacts; joining again is pointed out.
    await bot.send(bot.updates.command(COLLEAGUE, "/enterprise"))
    assert t("Contacts: {count} · you are the {role}", count=2, role=t("contact")) in (
        bot.last_text(COLLEAGUE.id))
    assert invite in bot.last_text(COLLEAGUE.id)
    await press(bot, COLLEAGUE, "en:join")
    await say(bot, COLLEAGUE, invite)
    assert "李四" not in bot.last_text(COLLEAGUE.id)
    assert await draft(bot, COLLEAGUE) is None
    assert len(await contacts(bot, enterprise.id)) == 2


async def test_wrong_invitation_codes_are_limited(bot: BotEnv) -> None:
    enterprise = await register(bot, OWNER)
    t = _t(bot, "en")
    await bot.send(bot.updates.command(STRANGER, "/enterprise"))
    await press(bot, STRANGER, "en:join")
    for left in range(enterprises.JOIN_GUESSES - 1, 0, -1):
        await say(bot, STRANGER, "WRONG234")
        assert bot.last_text(STRANGER.id).startswith(t(
            "No enterprise has this invitation code. Please check it with your colleague "
            "(tries left this hour: {left}).", left=left))
    await say(bot, STRANGER, "WRONG234")
    assert bot.last_text(STRANGER.id).startswith(t(
        "No enterprise has this invitation code. That was the last try for now"))

    # Now even the right code waits, also after starting the join again.
    await say(bot, STRANGER, enterprise.invite_code)
    assert bot.last_text(STRANGER.id).startswith(t(
        "Too many wrong invitation codes. Please try again after"))
    await press(bot, STRANGER, "en:join")  # a fresh join form
    assert (await draft(bot, STRANGER)).step == "invite"
    await say(bot, STRANGER, enterprise.invite_code)
    assert bot.last_text(STRANGER.id).startswith(t("Too many wrong invitation codes."))
    assert set(await contacts(bot, enterprise.id)) == {OWNER.id}

    # An hour after the first wrong code, a try is free again.
    bot.clock.advance(timedelta(hours=1, seconds=1))
    await say(bot, STRANGER, enterprise.invite_code)
    assert (await draft(bot, STRANGER)).step == "contact"


async def test_the_limit_on_wrong_invitation_codes_outlasts_the_form(bot: BotEnv) -> None:
    """Cancelling, joining again, or a consultation in between give no fresh tries: the
    wrong codes are counted per person, not in the form."""
    enterprise = await register(bot, OWNER)
    t = _t(bot, "en")
    await bot.send(bot.updates.command(STRANGER, "/enterprise"))
    await press(bot, STRANGER, "en:join")
    await say(bot, STRANGER, "WRONG234")
    await bot.send(bot.updates.command(STRANGER, "/cancel"))
    await press(bot, STRANGER, "en:join")
    await say(bot, STRANGER, "WRONG234")
    assert bot.last_text(STRANGER.id).startswith(t(
        "No enterprise has this invitation code. Please check it with your colleague "
        "(tries left this hour: {left}).", left=enterprises.JOIN_GUESSES - 2))
    for _ in range(enterprises.JOIN_GUESSES - 2):
        await say(bot, STRANGER, "WRONG234")
    assert bot.last_text(STRANGER.id).startswith(t(
        "No enterprise has this invitation code. That was the last try for now"))

    # Cancelled and started again: the person is told at once, and the right code waits.
    await bot.send(bot.updates.command(STRANGER, "/cancel"))
    await bot.send(bot.updates.command(STRANGER, "/enterprise"))
    await press(bot, STRANGER, "en:join")
    assert bot.last_text(STRANGER.id).startswith(t("Too many wrong invitation codes."))
    await say(bot, STRANGER, enterprise.invite_code)
    assert bot.last_text(STRANGER.id).startswith(t("Too many wrong invitation codes."))

    # Another conversation in between changes nothing either.
    await bot.send(bot.updates.command(STRANGER, "/consult"))
    assert (await draft(bot, STRANGER)).flow != enterprises.JOIN_FLOW
    await bot.send(bot.updates.command(STRANGER, "/enterprise"))
    await press(bot, STRANGER, "en:join")
    await say(bot, STRANGER, enterprise.invite_code)
    assert bot.last_text(STRANGER.id).startswith(t("Too many wrong invitation codes."))
    assert set(await contacts(bot, enterprise.id)) == {OWNER.id}

    # The first two wrong codes leave the window: two tries again, and the right code works.
    bot.clock.advance(timedelta(hours=1, seconds=1))
    await say(bot, STRANGER, enterprise.invite_code)
    assert (await draft(bot, STRANGER)).step == "contact"


# -- acting for the right enterprise --------------------------------------------------------------

async def test_several_enterprises_and_forged_buttons(bot: BotEnv) -> None:
    first = await register(bot, OWNER)
    second = await register(bot, OWNER, name="南苑食品有限公司", code=OTHER_CODE,
                            street="SFQ-NY", same_contact=True)
    assert await contacts(bot, second.id) == {OWNER.id: ("owner", "张三", PHONE)}
    await bot.send(bot.updates.command(OWNER, "/enterprise"))
    overview = bot.fake.last("sendMessage")
    assert first.invite_code in overview.params["text"]
    assert second.invite_code in overview.params["text"]
    assert "南苑街道" in overview.params["text"]
    assert _data(overview)[-2:] == [f"en:leave:{first.id}", f"en:leave:{second.id}"]

    await join(bot, COLLEAGUE, first.invite_code)
    await bot.send(bot.updates.command(COLLEAGUE, "/enterprise"))
    mine = bot.fake.last("sendMessage")
    assert second.invite_code not in mine.params["text"]  # shown to its contacts only
    assert "南苑食品" not in mine.params["text"]

    # A contact of the first trying to act for the second through forged data.
    for forged in (f"en:leave:{second.id}", f"en:bye:{second.id}", "en:bye:99999",
                   "en:leave:x", "en:place:1", "en:confirm", "en:agree", "en:nonsense"):
        await bot.send(bot.updates.callback(COLLEAGUE, forged, mine.result))
        assert alerted(bot), forged
    assert set(await contacts(bot, second.id)) == {OWNER.id}

    # Buttons pressed in a group never act.
    message = bot.fake.last("sendMessage").result
    group_message = {**message, "chat": {"id": GROUP.id, "type": "supergroup",
                                                    "title": GROUP.title}}
    await bot.send(bot.updates.callback(OWNER, f"en:bye:{first.id}", group_message))
    assert alerted(bot)
    assert OWNER.id in await contacts(bot, first.id)


async def test_leaving(bot: BotEnv) -> None:
    t = _t(bot)
    enterprise = await register(bot, OWNER)
    # The only contact cannot leave: nobody would be left.
    await bot.send(bot.updates.command(OWNER, "/enterprise"))
    await press(bot, OWNER, f"en:leave:{enterprise.id}")
    code = enterprise.invite_code
    assert bot.last_text(OWNER.id) == shown(t, (
        "You are the only contact of <b>{name}</b>, so you cannot leave: nobody would be "
        "left to act for it. Invite a colleague with the code <code>{code}</code> first, "
        "then leave. To end the registration itself, ask the enterprise service desk."),
        code=code)
    # Even a forged confirmation does not let the last contact go.
    await press(bot, OWNER, f"en:bye:{enterprise.id}", on=f"en:leave:{enterprise.id}")
    assert bot.fake.last("editMessageText").params["text"] == t(
        "You are the only contact of <b>{name}</b>, so you cannot leave: nobody would be "
        "left to act for it. Invite a colleague with the code <code>{code}</code> first, "
        "then leave. To end the registration itself, ask the enterprise service desk.",
        name=html.escape(NAME), code=code)
    assert enterprise.invite_code in bot.last_text(OWNER.id)
    assert set(await contacts(bot, enterprise.id)) == {OWNER.id}

    # With a colleague, the owner may go, and the colleague becomes the owner.
    await join(bot, COLLEAGUE, enterprise.invite_code)
    await bot.send(bot.updates.command(OWNER, "/enterprise"))
    await press(bot, OWNER, f"en:leave:{enterprise.id}")
    await press(bot, OWNER, "en:stay")
    assert bot.fake.last("editMessageText").params["text"] == t(
        "You stay a contact; nothing changed.")
    assert len(await contacts(bot, enterprise.id)) == 2
    await press(bot, OWNER, f"en:leave:{enterprise.id}")
    await press(bot, OWNER, f"en:bye:{enterprise.id}")
    assert bot.fake.last("editMessageText").params["text"] == t(
        "You no longer act for <b>{name}</b>.", name=html.escape(NAME))
    assert await contacts(bot, enterprise.id) == {
        COLLEAGUE.id: ("owner", "李四", "13900001111")}
    # The confirmation pressed again, or the owner's old buttons, do nothing now.
    await press(bot, OWNER, f"en:bye:{enterprise.id}", on=f"en:leave:{enterprise.id}")
    assert alerted(bot)
    async with bot.runtime.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Enterprise)) == 1


async def test_the_form_does_not_take_other_flows_messages(bot: BotEnv) -> None:
    """Starting a report drops the form; the form drops an unfinished report."""
    await bot.send(bot.updates.command(OWNER, "/enterprise"))
    await press(bot, OWNER, "en:reg")
    await bot.send(bot.updates.command(OWNER, "/report"))
    assert (await draft(bot, OWNER)).flow == "report"
    await bot.send(bot.updates.command(OWNER, "/enterprise"))
    assert (await draft(bot, OWNER)).flow == "report"  # only the overview; nothing dropped
    await press(bot, OWNER, "en:reg")
    assert (await draft(bot, OWNER)).flow == "enterprise"
    # /enterprise in the middle of the form continues it.
    await say(bot, OWNER, NAME)
    await bot.send(bot.updates.command(OWNER, "/enterprise"))
    assert bot.last_text(OWNER.id).startswith(_t(bot)(
        "You have an unfinished form; here is where you stopped. Send /cancel to drop it."))
    assert (await draft(bot, OWNER)).step == "code"
