"""Relay both ways through the real Application, on SQLite and PostgreSQL: workers' replies
reach the residents (role and display name, never the account), residents' replies reach the
group as replies to the card; files are copied; closed tickets pass nothing on."""

from __future__ import annotations

import html
from typing import Any

from sqlalchemy import func, select

from bot.actions import relay
from bot.actions.notifier import Notifier
from bot.sandbox.apispec import html_visible_text
from bot.services import tickets
from bot.services.tickets import NewReport
from storage.models import GroupChat, OutboxMessage, TicketAttachment, TicketEvent
from tests.harness import BotEnv
from tests.telegram_fake import Chat, User

GRID = "SFQ-DH-01-G1"
GROUP = Chat(-1001000000301, "supergroup", title="东湖 <第1网格> & 志愿者")
FORUM = Chat(-1001000000302, "supergroup", title="Forum <grid>", is_forum=True)
WORKER = User(200_301, "小<b>王</b>", last_name="&\x07\u202e", username="wang_account",
              language_code="zh-hans")
OTHER_WORKER = User(200_302, "老李", username="li_account")
RESIDENT = User(100_301, "张<i>三</i>", username="zhang_account", language_code="zh-hans")
NEIGHBOUR = User(100_302, "Ann & <Bob>", language_code="en")
STRANGER = User(100_303, "路人", language_code="zh-hans")
DESCRIPTION = "楼道里堆满了垃圾 <script>&，已经一周没人清理"


# -- shared with test_my_tickets ---------------------------------------------------------------

async def deliver(bot: BotEnv) -> None:
    """Push the outbox to the fake Telegram, recording what was sent for each ticket."""
    await bot.deliver()


async def bind(bot: BotEnv, chat: Chat, code: str = GRID, language: str = "zh_Hans") -> None:
    bot.fake.add_chat(chat.id, chat.type, title=chat.title, is_forum=chat.is_forum)
    now = bot.clock.now()
    async with bot.runtime.uow() as uow:
        node = await uow.nodes.by_code(code)
        uow.groups.add(GroupChat(chat_id=chat.id, title=chat.title, chat_type=chat.type,
                                 is_forum=chat.is_forum, active=True, node_id=node.id,
                                 language=language, created_at=now, updated_at=now))
        await uow.commit()


async def open_ticket(bot: BotEnv, reporter: User = RESIDENT, *, anonymous: bool = False,
                      co_reporters: tuple[User, ...] = (), category: str = "sanitation",
                      description: str = DESCRIPTION, name: str | None = None) -> int:
    """A ticket reported by `reporter`, its card delivered to the group of its grid."""
    rt = bot.runtime
    async with rt.uow() as uow:
        grid = await uow.nodes.by_code(GRID)
        ticket = await tickets.create(uow, rt.clock, rt.config, NewReport(
            category=rt.config.category(category), description=description,
            reporter_id=reporter.id, language="zh_Hans", grid_id=grid.id, anonymous=anonymous,
            reporter_name=name or reporter.first_name, reporter_phone="13812345678",
            attachments=[("photo", "AgAD-report-photo")]))
        for user in co_reporters:
            await tickets.add_co_reporter(uow, rt.clock, ticket, user.id)
        await Notifier(rt, uow).post_card(ticket)
        await uow.commit()
        ticket_id = ticket.id
    await deliver(bot)
    return ticket_id


async def ticket_of(bot: BotEnv, ticket_id: int):
    async with bot.runtime.uow() as uow:
        return await uow.tickets.get(ticket_id)


async def card_of(bot: BotEnv, ticket_id: int) -> dict[str, Any]:
    """The card as the group sees it (what a worker replies to)."""
    ticket = await ticket_of(bot, ticket_id)
    return bot.fake.server.messages[(ticket.group_chat_id, ticket.card_message_id)]


def media(bot: BotEnv, chat: Chat, user: User, kind: str, *, reply_to: Any = None,
          caption: str | None = None, file_size: int = 52_000, thread: int | None = None):
    """A photo, document or location message, optionally a reply (the factory's media
    builders take no reply_to)."""
    f = bot.updates
    if kind == "photo":
        content = {"photo": [{**f._file("photo"), "width": 1280, "height": 960,
                              "file_size": file_size}]}
    elif kind == "document":
        content = {"document": {**f._file("document"), "file_name": "plan <v2>.pdf",
                                "mime_type": "application/pdf", "file_size": file_size}}
    elif kind == "location":
        content = {"location": {"latitude": 31.23, "longitude": 121.42}}
    else:
        raise ValueError(kind)
    if thread is not None:
        content.update(message_thread_id=thread, is_topic_message=True)
    message = f._message(chat, user, reply_to=reply_to, caption=caption, **content)
    return f._update(message=message)


def private(bot: BotEnv, user: User) -> Chat:
    return Chat.private(user)


def to_chat(bot: BotEnv, method: str, chat_id: int) -> list:
    return [c for c in bot.fake.calls_to(method) if c.params.get("chat_id") == chat_id]


def raw_texts(bot: BotEnv, chat_id: int) -> list[str]:
    return bot.fake.sent_texts(chat_id, raw=True)


async def pending_rows(bot: BotEnv) -> int:
    async with bot.runtime.db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.status == "pending"))


async def events(bot: BotEnv, ticket_id: int, kind: str) -> list[TicketEvent]:
    async with bot.runtime.uow() as uow:
        return [e for e in await uow.tickets.events(ticket_id) if e.kind == kind]


async def attachments(bot: BotEnv, ticket_id: int) -> list[TicketAttachment]:
    async with bot.runtime.uow() as uow:
        return list(await uow.tickets.attachments(ticket_id))


def header(bot: BotEnv, language: str, number: str, name: str) -> str:
    t = bot.runtime.translator(language)
    return t("<b>No. {number}</b> · {role} {name}:", number=number, role=t("Grid worker"),
             name=html.escape(name))


# -- group → residents -------------------------------------------------------------------------

async def test_a_worker_reply_to_the_card_reaches_the_reporter_only(bot: BotEnv) -> None:
    """The conversation is the reporter's: co-reporters get status notices, not this."""
    await bind(bot, GROUP)
    await bot.send(bot.updates.command(NEIGHBOUR, "/start"))  # known to speak English
    ticket_id = await open_ticket(bot, co_reporters=(NEIGHBOUR,))
    ticket = await ticket_of(bot, ticket_id)
    card = await card_of(bot, ticket_id)
    bot.fake.clear()

    await bot.send(bot.updates.group_text(GROUP, WORKER, "明天上午 <b>9点</b> & 上门处理",
                                          reply_to=card))
    assert bot.fake.calls == []  # quiet in the group: nothing but the outbox
    await deliver(bot)

    name = "小<b>王</b> &"  # control characters dropped, markup escaped
    [call] = to_chat(bot, "sendMessage", RESIDENT.id)
    text = call.params["text"]
    assert text == (header(bot, "zh_Hans", ticket.number, name)
                    + "\n明天上午 &lt;b&gt;9点&lt;/b&gt; &amp; 上门处理")
    assert "wang_account" not in text and str(WORKER.id) not in text
    assert to_chat(bot, "sendMessage", NEIGHBOUR.id) == []
    assert to_chat(bot, "sendMessage", GROUP.id) == []
    [logged] = await events(bot, ticket_id, "worker_message")
    assert logged.actor_id == WORKER.id and logged.data["text"].startswith("明天上午")


async def test_the_group_learns_once_that_a_resident_who_blocked_the_bot_is_out_of_reach(
        bot: BotEnv) -> None:
    await bind(bot, GROUP)
    ticket_id = await open_ticket(bot, co_reporters=(NEIGHBOUR,))
    ticket = await ticket_of(bot, ticket_id)
    card = await card_of(bot, ticket_id)
    bot.fake.block(RESIDENT.id)
    bot.fake.clear()

    await bot.send(bot.updates.group_text(GROUP, WORKER, "明天上午上门", reply_to=card))
    await deliver(bot)
    assert [c.error["error_code"] for c in to_chat(bot, "sendMessage", RESIDENT.id)] == [403]
    t = bot.runtime.translator("zh_Hans")
    [note] = to_chat(bot, "sendMessage", GROUP.id)
    assert note.params["text"] == t(
        "⚠️ <b>No. {number}</b>: the resident has blocked the bot and cannot be reached on "
        "this ticket. Messages to them are not delivered.", number=ticket.number)
    assert note.params["reply_parameters"]["message_id"] == card["message_id"]
    assert len(await events(bot, ticket_id, "resident_unreachable")) == 1
    await bot.send(bot.updates.callback(WORKER, f"tk:details:{ticket_id}", card))
    assert t("The resident blocked the bot and can no longer be reached") in bot.last_text(
        GROUP.id)

    # Once: later replies fail too, and the group is not told again.
    def notes() -> int:
        return sum(1 for c in to_chat(bot, "sendMessage", GROUP.id)
                   if c.params["text"] == note.params["text"])

    await bot.send(bot.updates.group_text(GROUP, OTHER_WORKER, "还在吗？", reply_to=card))
    await deliver(bot)
    assert len(to_chat(bot, "sendMessage", RESIDENT.id)) == 2 and notes() == 1
    # A co-reporter who blocked the bot misses status notices; that is not the conversation.
    bot.fake.block(NEIGHBOUR.id)
    async with bot.runtime.uow() as uow:
        await Notifier(bot.runtime, uow).tell_residents(ticket, "Closed")
        await uow.commit()
    await deliver(bot)
    assert len(to_chat(bot, "sendMessage", NEIGHBOUR.id)) == 1 and notes() == 1


async def test_the_group_sees_when_the_resident_got_the_reply(bot: BotEnv) -> None:
    """A 👌 on the worker's message once the resident has it; nothing while they do not."""
    await bind(bot, GROUP)
    ticket_id = await open_ticket(bot)
    card = await card_of(bot, ticket_id)
    said = len(to_chat(bot, "sendMessage", GROUP.id))
    reply = bot.updates.group_text(GROUP, WORKER, "明天上午上门", reply_to=card)
    await bot.send(reply)
    assert bot.fake.calls_to("setMessageReaction") == []  # not before it is delivered
    await deliver(bot)
    [reaction] = bot.fake.calls_to("setMessageReaction")
    assert reaction.params["chat_id"] == GROUP.id
    assert reaction.params["message_id"] == reply.message.message_id
    assert reaction.params["reaction"] == [{"type": "emoji", "emoji": "👌"}]
    assert len(to_chat(bot, "sendMessage", GROUP.id)) == said  # no message: stays quiet

    # A resident who blocked the bot did not get it: no reaction says they did.
    bot.fake.block(RESIDENT.id)
    await bot.send(bot.updates.group_text(GROUP, WORKER, "还在吗？", reply_to=card))
    await deliver(bot)
    assert len(bot.fake.calls_to("setMessageReaction")) == 1


async def test_a_worker_reply_to_any_ticket_message_is_relayed(bot: BotEnv) -> None:
    """The photo album under the card is the ticket's too; so is a resident's relayed reply."""
    await bind(bot, GROUP)
    ticket_id = await open_ticket(bot)
    ticket = await ticket_of(bot, ticket_id)
    photo_under_card = to_chat(bot, "sendPhoto", GROUP.id)[0].result
    await bot.send(bot.updates.group_text(GROUP, OTHER_WORKER, "收到", reply_to=photo_under_card))
    await deliver(bot)
    assert bot.fake.sent_texts(RESIDENT.id)[-1].endswith("收到")
    assert "li_account" not in raw_texts(bot, RESIDENT.id)[-1]
    assert ticket.number in raw_texts(bot, RESIDENT.id)[-1]


async def test_worker_photos_and_documents_are_copied_with_the_header(bot: BotEnv) -> None:
    await bind(bot, GROUP)
    ticket_id = await open_ticket(bot, co_reporters=(NEIGHBOUR,))
    ticket = await ticket_of(bot, ticket_id)
    card = await card_of(bot, ticket_id)

    photo = media(bot, GROUP, WORKER, "photo", reply_to=card, caption="处理后 <现场>")
    await bot.send(photo)
    await bot.send(media(bot, GROUP, WORKER, "document", reply_to=card, caption="x" * 2000))
    await deliver(bot)

    copies = to_chat(bot, "copyMessage", RESIDENT.id)
    assert [c.params["from_chat_id"] for c in copies] == [GROUP.id, GROUP.id]
    assert copies[0].params["message_id"] == photo.message.message_id
    assert copies[0].params["caption"] == (header(bot, "zh_Hans", ticket.number, "小<b>王</b> &")
                                           + "\n处理后 &lt;现场&gt;")
    assert copies[0].params["parse_mode"] == "HTML"
    long_caption = bot.fake.sent_texts(RESIDENT.id)[-1]
    assert len(long_caption) <= 1024 and long_caption.endswith("…")
    assert to_chat(bot, "copyMessage", NEIGHBOUR.id) == []
    kinds = [a.kind for a in await attachments(bot, ticket_id) if a.added_by_role == "worker"]
    assert kinds == ["photo", "document"]


async def test_group_messages_that_are_not_about_a_ticket_are_left_alone(bot: BotEnv) -> None:
    await bind(bot, GROUP)
    ticket_id = await open_ticket(bot)
    card = await card_of(bot, ticket_id)
    bot.fake.clear()
    before = await pending_rows(bot)

    chatter = bot.updates.group_text(GROUP, WORKER, "大家好")
    await bot.send(chatter)
    await bot.send(bot.updates.group_text(GROUP, OTHER_WORKER, "你好", reply_to=chatter))
    robot = User(200_399, "SomeBot", username="some_bot", is_bot=True)
    await bot.send(bot.updates.group_text(GROUP, robot, "ping", reply_to=card))
    # An anonymous admin writes as the group itself.
    f = bot.updates
    anonymous = f._message(GROUP, User(1087968824, "Group", username="GroupAnonymousBot",
                                       is_bot=True), reply_to=card, text="匿名管理员")
    anonymous["sender_chat"] = GROUP.to_dict()
    await bot.send(f._update(message=anonymous))
    await bot.send(bot.updates.command(GROUP, "/help", user=WORKER))  # commands keep working

    assert await pending_rows(bot) == before
    assert [c.method for c in bot.fake.calls] == ["sendMessage"]  # only the /help answer
    assert await events(bot, ticket_id, "worker_message") == []


async def test_nothing_reaches_the_resident_once_the_ticket_is_resolved(bot: BotEnv) -> None:
    await bind(bot, GROUP)
    ticket_id = await open_ticket(bot)
    card = await card_of(bot, ticket_id)
    rt = bot.runtime
    async with rt.uow() as uow:
        await tickets.claim(uow, rt.clock, ticket_id, WORKER.id, "小王")
        ticket = await tickets.resolve(uow, rt.clock, ticket_id, WORKER.id, "已清理")
        await uow.commit()
    bot.fake.clear()
    before = await pending_rows(bot)

    await bot.send(bot.updates.group_text(GROUP, WORKER, "还有一点", reply_to=card))
    t = rt.translator("zh_Hans")
    status = t("Resolved")
    assert bot.last_text(GROUP.id) == html_visible_text(t(
        "<b>No. {number}</b> is no longer open ({status}); nothing was sent to the resident.",
        number=ticket.number, status=status))
    assert await pending_rows(bot) == before
    await deliver(bot)
    assert to_chat(bot, "sendMessage", RESIDENT.id) == []


async def test_a_reply_to_a_prompt_belongs_to_its_flow(bot: BotEnv) -> None:
    """Resolve and transfer ask with a prompt; the answer is not a message for the resident."""
    await bind(bot, GROUP)
    ticket_id = await open_ticket(bot)
    prompt = bot.updates._message(GROUP, User(1, "bot", is_bot=True), text="备注？")
    async with bot.runtime.uow() as uow:
        await uow.tickets.remember_message(GROUP.id, prompt["message_id"], ticket_id,
                                           "resolve_prompt")
        await uow.commit()
    before = await pending_rows(bot)
    await bot.send(bot.updates.group_text(GROUP, WORKER, "已经清理完毕", reply_to=prompt))
    assert await pending_rows(bot) == before
    assert await events(bot, ticket_id, "worker_message") == []


async def test_messages_in_the_tickets_forum_topic_are_relayed(bot: BotEnv) -> None:
    await bind(bot, FORUM)
    ticket_id = await open_ticket(bot)
    ticket = await ticket_of(bot, ticket_id)
    assert ticket.topic_id is not None and ticket.group_chat_id == FORUM.id

    # In a forum, a plain message of a topic replies to the topic's first message.
    topic_root = {"message_id": ticket.topic_id, "date": 0, "chat": FORUM.to_dict(),
                  "forum_topic_created": {"name": ticket.number, "icon_color": 7322096}}
    await bot.send(bot.updates.group_text(FORUM, WORKER, "我们在跟进", reply_to=topic_root,
                                          message_thread_id=ticket.topic_id))
    await bot.send(media(bot, FORUM, WORKER, "photo", thread=ticket.topic_id))
    # The general topic is not the ticket's.
    await bot.send(bot.updates.group_text(FORUM, WORKER, "闲聊"))
    await deliver(bot)
    assert bot.fake.sent_texts(RESIDENT.id)[-2].endswith("我们在跟进")
    assert len(to_chat(bot, "copyMessage", RESIDENT.id)) == 1
    assert not any(text.endswith("闲聊") for text in bot.fake.sent_texts(RESIDENT.id))

    # The resident's answer goes back into the topic, under the card.
    relayed = to_chat(bot, "sendMessage", RESIDENT.id)[-1].result
    await bot.send(bot.updates.private_text(RESIDENT, "谢谢", reply_to=relayed))
    await deliver(bot)
    call = to_chat(bot, "sendMessage", FORUM.id)[-1]
    assert call.params["message_thread_id"] == ticket.topic_id
    assert call.params["reply_parameters"]["message_id"] == ticket.card_message_id


# -- resident → group --------------------------------------------------------------------------

async def test_a_residents_reply_reaches_the_group_as_a_reply_to_the_card(bot: BotEnv) -> None:
    await bind(bot, GROUP)
    ticket_id = await open_ticket(bot, name="张<i>三</i>\n")
    ticket = await ticket_of(bot, ticket_id)
    card = await card_of(bot, ticket_id)
    await bot.send(bot.updates.group_text(GROUP, WORKER, "请问具体几号楼？", reply_to=card))
    await deliver(bot)
    relayed = to_chat(bot, "sendMessage", RESIDENT.id)[-1].result
    bot.fake.clear()

    await bot.send(bot.updates.private_text(RESIDENT, "3号楼 <2单元> & 楼下", reply_to=relayed))
    t = bot.runtime.translator("zh_Hans")
    assert bot.last_text(RESIDENT.id) == t("Sent to the staff handling No. {number}.",
                                           number=ticket.number)
    await bot.send(media(bot, private(bot, RESIDENT), RESIDENT, "photo", reply_to=relayed,
                         caption="现场 <照片>"))
    await deliver(bot)

    text_call = to_chat(bot, "sendMessage", GROUP.id)[-1]
    assert text_call.params["text"] == (
        t("<b>No. {number}</b> · resident {name}:", number=ticket.number,
          name="张&lt;i&gt;三&lt;/i&gt;") + "\n3号楼 &lt;2单元&gt; &amp; 楼下")
    assert text_call.params["reply_parameters"]["message_id"] == card["message_id"]
    [copy] = to_chat(bot, "copyMessage", GROUP.id)
    assert copy.params["from_chat_id"] == RESIDENT.id
    assert copy.params["reply_parameters"]["message_id"] == card["message_id"]
    assert copy.params["caption"].endswith("\n现场 &lt;照片&gt;")
    assert "zhang_account" not in str(copy.params) + text_call.params["text"]

    logged = await events(bot, ticket_id, "resident_message")
    assert [e.data["file"] for e in logged] == [None, "photo"]
    assert [a.added_by_role for a in await attachments(bot, ticket_id)] == ["resident",
                                                                             "resident"]

    # The workers can answer the relayed photo in turn.
    copied = bot.fake.server.messages[(GROUP.id, copy.result["message_id"])]
    await bot.send(bot.updates.group_text(GROUP, WORKER, "看到了", reply_to=copied))
    await deliver(bot)
    assert bot.fake.sent_texts(RESIDENT.id)[-1].endswith("看到了")


async def test_an_anonymous_residents_name_never_reaches_the_group(bot: BotEnv) -> None:
    await bind(bot, GROUP)
    ticket_id = await open_ticket(bot, anonymous=True, category="safety_hazard")
    ticket = await ticket_of(bot, ticket_id)
    card = await card_of(bot, ticket_id)
    await bot.send(bot.updates.group_text(GROUP, WORKER, "请问位置？", reply_to=card))
    await deliver(bot)
    relayed = to_chat(bot, "sendMessage", RESIDENT.id)[-1].result
    await bot.send(bot.updates.private_text(RESIDENT, "在3号楼", reply_to=relayed))
    await bot.send(media(bot, private(bot, RESIDENT), RESIDENT, "document", reply_to=relayed))
    await deliver(bot)
    t = bot.runtime.translator("zh_Hans")
    anonymous = t("<b>No. {number}</b> · anonymous resident:", number=ticket.number)
    assert to_chat(bot, "sendMessage", GROUP.id)[-1].params["text"] == anonymous + "\n在3号楼"
    assert to_chat(bot, "copyMessage", GROUP.id)[-1].params["caption"] == anonymous
    group_side = " ".join(raw_texts(bot, GROUP.id))
    assert "张" not in group_side and "zhang" not in group_side


async def test_a_co_reporter_can_answer_too_without_a_name(bot: BotEnv) -> None:
    """A co-reporter replies to a status notice: the group sees "co-reporter", never their
    name (they may have wanted anonymity), and a worker's reply to it goes back to that
    co-reporter alone."""
    await bind(bot, GROUP)
    ticket_id = await open_ticket(bot, co_reporters=(NEIGHBOUR,))
    ticket = await ticket_of(bot, ticket_id)
    rt = bot.runtime
    async with rt.uow() as uow:
        await Notifier(rt, uow).tell_residents(ticket, "The workers need a photo.")
        await uow.commit()
    await deliver(bot)
    notice = to_chat(bot, "sendMessage", NEIGHBOUR.id)[-1].result
    await bot.send(bot.updates.private_text(NEIGHBOUR, "I will send one", reply_to=notice))
    await bot.send(media(bot, private(bot, NEIGHBOUR), NEIGHBOUR, "photo", reply_to=notice,
                         caption="here"))
    await deliver(bot)
    t = rt.translator("zh_Hans")
    co_reporter = t("<b>No. {number}</b> · co-reporter:", number=ticket.number)
    said = to_chat(bot, "sendMessage", GROUP.id)[-1]
    assert said.params["text"] == co_reporter + "\nI will send one"
    [copy] = to_chat(bot, "copyMessage", GROUP.id)
    assert copy.params["caption"] == co_reporter + "\nhere"
    group_side = " ".join(raw_texts(bot, GROUP.id))
    assert "Ann" not in group_side and "Bob" not in group_side

    bot.fake.clear()
    for message in (said.result, bot.fake.server.messages[(GROUP.id,
                                                           copy.result["message_id"])]):
        await bot.send(bot.updates.group_text(GROUP, WORKER, "收到，谢谢", reply_to=message))
    await deliver(bot)
    assert [c.params["text"].endswith("收到，谢谢")
            for c in to_chat(bot, "sendMessage", NEIGHBOUR.id)] == [True, True]
    assert to_chat(bot, "sendMessage", RESIDENT.id) == []


async def test_a_message_for_a_ticket_without_a_group_is_kept(bot: BotEnv) -> None:
    ticket_id = await open_ticket(bot)  # no group bound anywhere up the tree
    ticket = await ticket_of(bot, ticket_id)
    assert ticket.group_chat_id is None
    rt = bot.runtime
    async with rt.uow() as uow:
        await Notifier(rt, uow).tell_residents(ticket, "The workers need a photo.")
        await uow.commit()
    await deliver(bot)
    notice = to_chat(bot, "sendMessage", RESIDENT.id)[-1].result
    await bot.send(bot.updates.private_text(RESIDENT, "在3号楼门口", reply_to=notice))
    t = rt.translator("zh_Hans")
    assert bot.last_text(RESIDENT.id) == t(
        "Saved with No. {number}. No staff group has taken the ticket yet; they will see "
        "your message when it reaches one.", number=ticket.number)
    assert t("Sent to the staff handling No. {number}.", number=ticket.number) not in (
        bot.texts(RESIDENT.id))
    [logged] = await events(bot, ticket_id, "resident_message")
    assert logged.data["text"] == "在3号楼门口"
    assert await pending_rows(bot) == 0


async def test_residents_replies_that_cannot_go_are_explained(bot: BotEnv) -> None:
    await bind(bot, GROUP)
    ticket_id = await open_ticket(bot)
    ticket = await ticket_of(bot, ticket_id)
    card = await card_of(bot, ticket_id)
    await bot.send(bot.updates.group_text(GROUP, WORKER, "请补充", reply_to=card))
    await deliver(bot)
    relayed = to_chat(bot, "sendMessage", RESIDENT.id)[-1].result
    t = bot.runtime.translator("zh_Hans")
    rt = bot.runtime
    before = await pending_rows(bot)

    too_big = rt.config.limits.max_file_bytes + 1
    await bot.send(media(bot, private(bot, RESIDENT), RESIDENT, "document", reply_to=relayed,
                         file_size=too_big))
    assert bot.last_text(RESIDENT.id) == t(
        "This file is larger than {size} MB and cannot be passed on. Please send a smaller "
        "file.", size="20")
    await bot.send(media(bot, private(bot, RESIDENT), RESIDENT, "location", reply_to=relayed))
    assert bot.last_text(RESIDENT.id) == t(
        "Only text, photos, videos, documents and voice messages can be passed on. Please "
        "send it in one of these forms.")
    # Someone else replying to a message they somehow hold is not relayed (not their chat).
    await bot.send(bot.updates.private_text(STRANGER, "我也要说", reply_to=relayed))
    assert await pending_rows(bot) == before

    async with rt.uow() as uow:
        await tickets.withdraw(uow, rt.clock, ticket_id, RESIDENT.id, "已解决")
        await uow.commit()
    await bot.send(bot.updates.private_text(RESIDENT, "还有问题", reply_to=relayed))
    assert bot.last_text(RESIDENT.id) == t(
        "No. {number} is no longer open ({status}), so your message was not passed on. If "
        "the problem is still there, please make a new report from the menu.",
        number=ticket.number, status=t("Withdrawn by the resident"))
    assert await pending_rows(bot) == before
    assert await events(bot, ticket_id, "resident_message") == []


async def test_words_of_danger_to_a_closed_ticket_get_the_emergency_numbers_first(
        bot: BotEnv) -> None:
    """Nobody on staff reads a reply to a ticket that is over: if its words signal danger,
    the emergency numbers come before the offer to report them anew, as for any text."""
    await bind(bot, GROUP)
    ticket_id = await open_ticket(bot)
    card = await card_of(bot, ticket_id)
    await bot.send(bot.updates.group_text(GROUP, WORKER, "请补充", reply_to=card))
    await deliver(bot)
    relayed = to_chat(bot, "sendMessage", RESIDENT.id)[-1].result
    rt = bot.runtime
    async with rt.uow() as uow:
        await tickets.withdraw(uow, rt.clock, ticket_id, RESIDENT.id, "已解决")
        await uow.commit()
    t = rt.translator("zh_Hans")
    guidance = t("🚨 <b>If anyone is in danger, call now:</b>\n"
                 "110 — police\n119 — fire\n120 — ambulance\n\n"
                 "Your report will be marked urgent, but it does not replace an emergency call.")
    sent = len(to_chat(bot, "sendMessage", RESIDENT.id))
    await bot.send(bot.updates.private_text(RESIDENT, "三楼楼道里起火了，浓烟很大，快来人",
                                            reply_to=relayed))
    [offer] = to_chat(bot, "sendMessage", RESIDENT.id)[sent:]  # the guidance above it
    assert offer.params["text"].startswith(guidance + "\n\n")
    assert "ft:r:" in str(offer.params["reply_markup"])
    # Harmless words get the offer alone.
    sent = len(to_chat(bot, "sendMessage", RESIDENT.id))
    await bot.send(bot.updates.private_text(RESIDENT, "垃圾又堆起来了，请再来看看",
                                            reply_to=relayed))
    [offer] = to_chat(bot, "sendMessage", RESIDENT.id)[sent:]
    assert "ft:r:" in str(offer.params["reply_markup"])


async def test_a_private_message_that_is_no_reply_goes_to_the_fallback(bot: BotEnv) -> None:
    await bind(bot, GROUP)
    await open_ticket(bot)
    before = await pending_rows(bot)
    await bot.send(bot.updates.private_text(RESIDENT, "你好"))
    t = bot.runtime.translator("zh_Hans")
    # Offered to be passed on (handlers.freetext), not relayed as it is.
    assert bot.last_text(RESIDENT.id) == t(
        "Shall I pass your message on to the staff handling one of your open requests? To "
        "report something new, describe it in a sentence or two.")
    assert await pending_rows(bot) == before


async def test_an_escalated_tickets_old_card_passes_nothing_on(bot: BotEnv) -> None:
    community = Chat(-1001000000303, "supergroup", title="社区中心")
    await bind(bot, GROUP)
    await bind(bot, community, "SFQ-DH-01")
    ticket_id = await open_ticket(bot)
    old_card = await card_of(bot, ticket_id)
    rt = bot.runtime
    async with rt.uow() as uow:
        ticket, _, _ = await tickets.move(uow, rt.clock, rt.config, ticket_id, to_node_id=None,
                                          actor_id=WORKER.id, role="worker", reason="超出职责",
                                          kind="escalated")
        await Notifier(rt, uow).post_card(ticket)
        await uow.commit()
    await deliver(bot)
    before = await pending_rows(bot)

    await bot.send(bot.updates.group_text(GROUP, WORKER, "我们还在看", reply_to=old_card))
    t = rt.translator("zh_Hans")
    assert bot.last_text(GROUP.id) == html_visible_text(t(
        "<b>No. {number}</b> is handled by another group now; nothing was sent to the "
        "resident.", number=ticket.number))
    assert await pending_rows(bot) == before

    # The community centre's staff speak as such.
    new_card = await card_of(bot, ticket_id)
    await bot.send(bot.updates.group_text(community, OTHER_WORKER, "社区来处理", reply_to=new_card))
    await deliver(bot)
    assert to_chat(bot, "sendMessage", RESIDENT.id)[-1].params["text"] == t(
        "<b>No. {number}</b> · {role} {name}:", number=ticket.number,
        role=t("Community centre"), name="老李") + "\n社区来处理"


async def test_an_error_while_relaying_ends_with_the_apology_alone(bot: BotEnv,
                                                                   monkeypatch) -> None:
    await bind(bot, GROUP)
    ticket_id = await open_ticket(bot)
    card = await card_of(bot, ticket_id)
    await bot.send(bot.updates.group_text(GROUP, WORKER, "请补充", reply_to=card))
    await deliver(bot)
    relayed = to_chat(bot, "sendMessage", RESIDENT.id)[-1].result

    async def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(relay, "pass_on", broken)
    await bot.send(bot.updates.private_text(RESIDENT, "补充信息", reply_to=relayed))
    assert [type(e) for e in bot.errors] == [RuntimeError]
    bot.errors.clear()
    t = bot.runtime.translator("zh_Hans")
    assert bot.last_text(RESIDENT.id) == t(
        "Sorry, something went wrong on our side. Please try again in a moment.")
    assert await events(bot, ticket_id, "resident_message") == []
