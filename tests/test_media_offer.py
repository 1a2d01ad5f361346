"""Photos, videos, voice messages and places a resident sends outside any conversation, through
the real Application on SQLite and PostgreSQL: offered like typed words (kept in a draft by
file id, so a button still works after a restart) as the start of a report or as a message
for the staff of an open ticket; an album is one offer; a sticker gets a way on."""

from __future__ import annotations

from tests.harness import BotEnv, start_bot, stop_bot
from tests.test_freetext import _buttons, _draft, _last_to, _press
from tests.test_relay import (
    GRID,
    GROUP,
    NEIGHBOUR,
    RESIDENT,
    attachments,
    bind,
    events,
    open_ticket,
    ticket_of,
    to_chat,
)
from tests.test_report_flow import FAR_AWAY, INSIDE, PHONE

CAPTION = "小区门口的路灯坏了一个星期，晚上很黑"
NOT_UNDERSTOOD = "I did not understand that. Please choose from the menu below."


def _photo_id(update) -> str:
    return update.message.photo[-1].file_id


async def _tickets(bot: BotEnv, user):
    async with bot.runtime.uow() as uow:
        return await uow.tickets.of_resident(user.id, offset=0, limit=5)


async def test_a_photo_with_a_caption_becomes_a_report_after_a_restart(db, catalogs) -> None:
    first = await start_bot(db, catalogs)
    await bind(first, GROUP)
    t = first.runtime.translator("zh_Hans")
    photo = first.updates.photo(RESIDENT, caption=CAPTION)
    await first.send(photo)
    offer = _last_to(first, RESIDENT)
    assert offer.params["text"] == t(
        "Shall I report this as a problem? Your photos or videos are attached to it (and a "
        "caption of {min} characters or more becomes its description); you then choose what "
        "it is about and where it is.", min=10)
    buttons = _buttons(offer)
    assert buttons[0].startswith("ft:r:") and buttons[-1].startswith("ft:x:")
    assert not any(b.startswith("ft:s:") for b in buttons)  # no open tickets
    # Only the file id is kept: nothing was downloaded.
    assert first.fake.calls_to("getFile") == []
    await stop_bot(first)
    assert first.errors == []

    second = await start_bot(db, catalogs, fake=first.fake, first_update_id=1000)
    await _press(second, RESIDENT, "ft:r:", offer)
    question = _last_to(second, RESIDENT)
    assert CAPTION in question.params["text"]
    assert t("Your photos or videos are attached to it ({count}).", count=1) in \
        question.params["text"]
    # Neither the description nor the photos are asked for: category, place, contact.
    assert t("Step {step} of {total}", step=1, total=3) in question.params["text"]
    await _press(second, RESIDENT, "rp:cat:sanitation")
    report = await _draft(second, RESIDENT, "report")
    assert report.step == "place"
    assert report.data["media"] == [["photo", _photo_id(photo)]]
    await second.send(second.updates.location(RESIDENT, *INSIDE))
    await second.send(second.updates.contact(RESIDENT, PHONE))
    await _press(second, RESIDENT, "rp:submit")
    [ticket] = await _tickets(second, RESIDENT)
    assert ticket.description == CAPTION
    assert [(a.kind, a.file_id) for a in await attachments(second, ticket.id)] == [
        ("photo", _photo_id(photo))]
    await second.deliver()
    sent = [c for c in second.fake.calls if c.params.get("chat_id") == GROUP.id
            and c.method in ("sendPhoto", "sendMediaGroup")]
    assert _photo_id(photo) in str([c.params for c in sent])
    await stop_bot(second)
    second.fake.assert_no_violations()
    assert second.errors == []


async def test_an_album_gets_one_offer(bot: BotEnv) -> None:
    album = bot.updates.media_group(RESIDENT, 3)
    before = len(bot.fake.calls_to("sendMessage"))
    for update in album:
        await bot.send(update)
    [offer] = bot.fake.calls_to("sendMessage")[before:]
    assert (await _draft(bot, RESIDENT, "freetext")).data["media"] == [
        ["photo", _photo_id(update)] for update in album]
    await _press(bot, RESIDENT, "ft:r:", offer)
    await _press(bot, RESIDENT, "rp:cat:sanitation")
    report = await _draft(bot, RESIDENT, "report")
    # No caption: the description is asked; the photos are not.
    assert report.step == "description" and len(report.data["media"]) == 3
    await bot.send(bot.updates.private_text(RESIDENT, CAPTION))
    assert (await _draft(bot, RESIDENT, "report")).step == "place"


async def test_a_voice_message_is_a_description_or_goes_to_the_staff(bot: BotEnv) -> None:
    await bind(bot, GROUP)
    ticket_id = await open_ticket(bot)
    ticket = await ticket_of(bot, ticket_id)
    t = bot.runtime.translator("zh_Hans")
    voice = bot.updates.voice(RESIDENT)
    await bot.send(voice)
    offer = _last_to(bot, RESIDENT)
    assert offer.params["text"] == t(
        "What shall I do with what you sent? I can report it as a new problem, or pass it on "
        "to the staff handling one of your open requests.")
    await _press(bot, RESIDENT, "ft:s:", offer)
    assert bot.last_text(RESIDENT.id) == t("Sent to the staff handling No. {number}.",
                                           number=ticket.number)
    await bot.deliver()
    [relayed] = to_chat(bot, "sendVoice", GROUP.id)
    assert relayed.params["voice"] == voice.message.voice.file_id
    assert ticket.number in relayed.params["caption"]
    assert relayed.params["reply_parameters"]["message_id"] == ticket.card_message_id
    assert len(await events(bot, ticket_id, "resident_message")) == 1
    assert ("voice", voice.message.voice.file_id) in [
        (a.kind, a.file_id) for a in await attachments(bot, ticket_id)]
    assert await _draft(bot, RESIDENT, "freetext") is None

    # Someone with no ticket: the voice message is the report's description.
    voice = bot.updates.voice(NEIGHBOUR)
    await bot.send(voice)
    await _press(bot, NEIGHBOUR, "ft:r:")
    await _press(bot, NEIGHBOUR, "rp:cat:sanitation")
    report = await _draft(bot, NEIGHBOUR, "report")
    assert report.step == "media"
    assert report.data["spoken"] == ["voice", voice.message.voice.file_id]


async def test_a_location_begins_a_report_at_that_place(bot: BotEnv) -> None:
    await bind(bot, GROUP)
    await open_ticket(bot)
    t = bot.runtime.translator("zh_Hans")
    await bot.send(bot.updates.location(RESIDENT, *INSIDE))
    offer = _last_to(bot, RESIDENT)
    assert offer.params["text"] == t(
        "Shall I report a problem at this place? You then choose what it is about and "
        "describe it.")
    # A place is no message for the staff of the open ticket.
    assert not any(b.startswith("ft:s:") for b in _buttons(offer))
    await _press(bot, RESIDENT, "ft:r:", offer)
    assert t("The location you shared is where it is.") in _last_to(bot, RESIDENT).params["text"]
    await _press(bot, RESIDENT, "rp:cat:sanitation")
    await bot.send(bot.updates.private_text(RESIDENT, CAPTION))
    await _press(bot, RESIDENT, "rp:skip:media")
    report = await _draft(bot, RESIDENT, "report")
    assert report.step == "contact"  # the place is not asked for
    async with bot.runtime.uow() as uow:
        grid = await uow.nodes.by_code(GRID)
    assert report.data["grid_id"] == grid.id
    assert (report.data["latitude"], report.data["longitude"]) == INSIDE


async def test_a_sticker_gets_a_way_on(bot: BotEnv) -> None:
    t = bot.runtime.translator("zh_Hans")
    await bot.send(bot.updates.sticker(RESIDENT))
    answer = _last_to(bot, RESIDENT)
    assert answer.params["text"] == t(
        "Thanks! I cannot do anything with this kind of message. To report a problem, "
        "describe it in words, or send a photo, a voice message or the location; or choose "
        "from the menu below.")
    assert answer.params["text"] != t(NOT_UNDERSTOOD)
    assert "rp:new" in _buttons(answer)
    assert await _draft(bot, RESIDENT, "freetext") is None


async def test_a_file_too_large_is_refused_and_a_cry_for_help_is_answered_first(
        bot: BotEnv) -> None:
    t = bot.runtime.translator("zh_Hans")
    limit = bot.runtime.config.limits.max_file_bytes
    await bot.send(bot.updates.photo(RESIDENT, file_size=limit + 1024 * 1024))
    mb = 1024 * 1024
    assert bot.last_text(RESIDENT.id) == t(
        "That file is too large ({size} MB). Bots can receive files of up to {limit} MB; "
        "please send a smaller one.", size=f"{(limit + mb) / mb:.1f}", limit=f"{limit / mb:.0f}")
    assert await _draft(bot, RESIDENT, "freetext") is None

    # Words of danger in a caption: the emergency numbers at once, before the offer.
    sent = len(bot.fake.calls_to("sendMessage"))
    await bot.send(bot.updates.photo(RESIDENT, caption="三楼楼道里起火了，浓烟很大，快来人帮忙"))
    [offer] = bot.fake.calls_to("sendMessage")[sent:]  # the guidance above the offer
    guidance = offer.params["text"].split("\n\n")[0]
    assert "110" in guidance and "120" in offer.params["text"]
    assert _buttons(offer)[0].startswith("ft:r:")


async def test_a_location_outside_every_grid_still_begins_a_report(bot: BotEnv) -> None:
    t = bot.runtime.translator("zh_Hans")
    await bot.send(bot.updates.location(RESIDENT, *FAR_AWAY))
    await _press(bot, RESIDENT, "ft:r:")
    assert t("The location you shared is outside every grid we serve; you will be asked to "
             "choose the grid.") in _last_to(bot, RESIDENT).params["text"]
    await _press(bot, RESIDENT, "rp:cat:sanitation")
    await bot.send(bot.updates.private_text(RESIDENT, CAPTION))
    await _press(bot, RESIDENT, "rp:skip:media")
    report = await _draft(bot, RESIDENT, "report")
    # Asked where it is, the location kept all the same (the boundaries may be rough).
    assert report.step == "place" and "grid_id" not in report.data
    assert (report.data["latitude"], report.data["longitude"]) == FAR_AWAY
