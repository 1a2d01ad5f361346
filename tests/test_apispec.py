"""The Bot API spec checker and the HTML parse-mode checker (pure, no Telegram)."""

from __future__ import annotations

import pytest

from bot.sandbox.apispec import (
    BotApiSpec,
    html_violations,
    html_visible_text,
    parse_html,
    utf16_len,
)
from tests.telegram_fake import load_spec

KEYBOARD = {
    "inline_keyboard": [
        [{"text": "✅ 受理", "callback_data": "ticket:42:accept"}],
        [
            {"text": "转交", "callback_data": "ticket:42:forward"},
            {"text": "地图", "url": "https://maps.example.org/?q=1"},
        ],
    ]
}


@pytest.fixture(scope="module")
def spec() -> BotApiSpec:
    return load_spec()


def only(violations: list[str], *fragments: str) -> None:
    """Exactly one violation, mentioning every fragment."""
    assert len(violations) == 1, violations
    for fragment in fragments:
        assert fragment in violations[0], violations


# -- valid calls -----------------------------------------------------------------------------
VALID_CALLS = {
    "sendMessage": {
        "chat_id": 1001,
        "text": "<b>工单 #42</b> 已受理 &amp; 转交 <i>网格员</i>\n<a href=\"tg://user?id=7\">张三</a>",
        "parse_mode": "HTML",
        "reply_markup": KEYBOARD,
        "link_preview_options": {"is_disabled": True},
        "reply_parameters": {"message_id": 3, "allow_sending_without_reply": True},
        "message_thread_id": 12,
        "disable_notification": True,
    },
    "setMyCommands": {
        "commands": [
            {"command": "start", "description": "开始"},
            {"command": "my_tickets", "description": "我的工单"},
        ],
        "scope": {"type": "all_private_chats"},
        "language_code": "zh",
    },
    "sendMediaGroup": {
        "chat_id": -1001234567890,
        "media": [
            {"type": "photo", "media": "AgACAgIAAxkBAAIB", "caption": "<b>现场</b>",
             "parse_mode": "HTML"},
            {"type": "photo", "media": "attach://photo2"},
            {"type": "video", "media": "BAACAgIAAxkBAAIC", "duration": 5},
        ],
    },
    "sendLocation": {"chat_id": 1001, "latitude": 31, "longitude": 121.4737, "live_period": 60},
    "sendVenue": {
        "chat_id": 1001,
        "latitude": 31.2304,
        "longitude": 121.4737,
        "title": "社区服务中心",
        "address": "人民路 1 号",
    },
    "editMessageText": {
        "chat_id": 1001,
        "message_id": 17,
        "text": "已处理 ✅",
        "parse_mode": "HTML",
        "reply_markup": {"inline_keyboard": []},
    },
    "answerCallbackQuery": {"callback_query_id": "4242", "text": "已受理", "show_alert": False},
    "setChatMenuButton": {"chat_id": 1001, "menu_button": {"type": "commands"}},
    "sendChatAction": {"chat_id": 1001, "action": "typing"},
    "deleteMyCommands": {"scope": {"type": "chat", "chat_id": -100123}, "language_code": "en"},
    "getMe": {},
}  # fmt: skip


@pytest.mark.parametrize("method", sorted(VALID_CALLS))
def test_realistic_calls_are_valid(spec: BotApiSpec, method: str) -> None:
    files = {"photo2": b"\x89PNG..."} if method == "sendMediaGroup" else None
    assert spec.validate_call(method, VALID_CALLS[method], files) == []


def test_reply_keyboard_accepts_plain_strings_and_button_objects(spec: BotApiSpec) -> None:
    markup = {
        "keyboard": [["📍 上报位置"], [{"text": "📞 手机号", "request_contact": True}]],
        "resize_keyboard": True,
        "one_time_keyboard": True,
        "input_field_placeholder": "请选择",
    }
    assert (
        spec.validate_call("sendMessage", {"chat_id": 1, "text": "x", "reply_markup": markup}) == []
    )


@pytest.mark.parametrize(
    "markup", [{"remove_keyboard": True}, {"force_reply": True, "selective": True}]
)
def test_other_reply_markups(spec: BotApiSpec, markup: dict[str, object]) -> None:
    assert (
        spec.validate_call("sendMessage", {"chat_id": 1, "text": "x", "reply_markup": markup}) == []
    )


def test_direct_upload_arrives_as_a_file_part(spec: BotApiSpec) -> None:
    # PTB drops the parameter and sends the bytes as a multipart part of the same name.
    assert spec.validate_call("sendPhoto", {"chat_id": 1, "caption": "c"}, {"photo": b"x"}) == []
    assert (
        spec.validate_call("sendDocument", {"chat_id": 1, "document": "attach://f"}, {"f": b""})
        == []
    )


# -- what is caught ----------------------------------------------------------------------------
def test_unknown_method_suggests_the_right_one(spec: BotApiSpec) -> None:
    only(
        spec.validate_call("sendMesage", {"chat_id": 1, "text": "x"}),
        "unknown method",
        "sendMessage",
    )


def test_unknown_parameter(spec: BotApiSpec) -> None:
    only(spec.validate_call("sendMessage", {"chat_id": 1, "text": "x", "parse": "HTML"}),
         "unknown parameter 'parse'")  # fmt: skip


def test_missing_required_parameter(spec: BotApiSpec) -> None:
    only(spec.validate_call("sendMessage", {"chat_id": 1}), "missing required parameter 'text'")


@pytest.mark.parametrize(
    ("method", "params", "fragment"),
    [
        ("sendMessage", {"chat_id": 1.0, "text": "x"}, "expected Integer or String, got float"),
        ("sendMessage", {"chat_id": True, "text": "x"}, "got bool"),  # bool is not an Integer
        ("sendMessage", {"chat_id": 1, "text": 5}, "expected String, got int"),
        ("sendLocation", {"chat_id": 1, "latitude": "31.2", "longitude": 1.0}, "expected Float"),
        ("answerCallbackQuery", {"callback_query_id": "1", "show_alert": 1}, "expected Boolean"),
        ("deleteMessage", {"chat_id": 1, "message_id": "17"}, "expected Integer, got str"),
        ("deleteMessages", {"chat_id": 1, "message_ids": 17}, "expected Array of Integer"),
        ("deleteMessages", {"chat_id": 1, "message_ids": [1, "2"]}, "message_ids[1]"),
    ],
)
def test_wrong_primitive_types(spec: BotApiSpec, method: str, params: dict, fragment: str) -> None:
    only(spec.validate_call(method, params), fragment)


@pytest.mark.parametrize(
    ("keyboard", "fragment"),
    [
        ({"inline_keyboard": [{"text": "a", "callback_data": "x"}]},
         "expected Array of InlineKeyboardButton"),
        ({"inline_keyboard": [[{"text": "a"}]]}, "needs exactly one of its optional kinds"),
        ({"inline_keyboard": [[{"text": "a", "callback_data": "x", "url": "https://x.org"}]]},
         "got ['callback_data', 'url']"),
        ({"inline_keyboard": [[{"callback_data": "x"}]]}, "missing required field 'text'"),
        ({"inline_keyboard": [[{"text": "a", "callback_data": "x", "colour": "red"}]]},
         "unknown field 'colour'"),
        ({"inline_keyboard": [[{"text": "a", "callback_data": ""}]]}, "must not be empty"),
        # 22 CJK characters are 66 bytes of UTF-8: the limit is in bytes, not characters.
        ({"inline_keyboard": [[{"text": "a", "callback_data": "工" * 22}]]}, "66 bytes"),
        ({"inline_keyboard": [[{"text": "a", "callback_data": "x", "style": "red"}]]},
         "must be one of ['danger', 'primary', 'success']"),
        ({"keyboard": [[{"text": "a", "request_contact": True, "request_location": True}]]},
         "at most one of its optional kinds"),
        ({"keyboard": [["a"]], "input_field_placeholder": "x" * 65}, "65 characters"),
    ],
)  # fmt: skip
def test_nested_reply_markup(spec: BotApiSpec, keyboard: dict, fragment: str) -> None:
    params = {"chat_id": 1, "text": "x", "reply_markup": keyboard}
    only(spec.validate_call("sendMessage", params), fragment, "sendMessage.reply_markup")


def test_callback_data_of_64_bytes_is_fine(spec: BotApiSpec) -> None:
    button = {"text": "a", "callback_data": "工" * 21 + "x"}  # 64 bytes
    params = {"chat_id": 1, "text": "x", "reply_markup": {"inline_keyboard": [[button]]}}
    assert spec.validate_call("sendMessage", params) == []


@pytest.mark.parametrize(
    ("scope", "fragment"),
    [
        ({"type": "all_privat_chats"}, "BotCommandScope.type must be one of"),
        ({"type": "chat"}, "missing required field 'chat_id'"),
        ({"type": "chat_member", "chat_id": -100}, "missing required field 'user_id'"),
        ({"type": "default", "chat_id": -100}, "unknown field 'chat_id'"),
        ({"chat_id": -100}, "got None"),
    ],
)
def test_bot_command_scope_is_picked_by_its_type(
    spec: BotApiSpec, scope: dict, fragment: str
) -> None:
    params = {"commands": [{"command": "start", "description": "开始"}], "scope": scope}
    only(spec.validate_call("setMyCommands", params), fragment, "setMyCommands.scope")


@pytest.mark.parametrize(
    ("command", "fragment"),
    [
        ({"command": "Start", "description": "x"}, "only lowercase English letters"),
        ({"command": "my-tickets", "description": "x"}, "only lowercase English letters"),
        ({"command": "a" * 33, "description": "x"}, "33 characters"),
        ({"command": "", "description": "x"}, "must not be empty"),
        ({"command": "start", "description": ""}, "must not be empty"),
        ({"command": "start", "description": "说" * 257}, "257 characters"),
        ({"command": "start"}, "missing required field 'description'"),
    ],
)
def test_bot_command_limits(spec: BotApiSpec, command: dict, fragment: str) -> None:
    only(spec.validate_call("setMyCommands", {"commands": [command]}), fragment)


def test_at_most_100_commands(spec: BotApiSpec) -> None:
    commands = [{"command": f"c{i}", "description": "d"} for i in range(101)]
    only(spec.validate_call("setMyCommands", {"commands": commands}), "101 items", "0-100")
    assert spec.validate_call("setMyCommands", {"commands": commands[:100]}) == []


def test_language_code_is_two_letters(spec: BotApiSpec) -> None:
    params = {"commands": [{"command": "start", "description": "开始"}], "language_code": "zh-hans"}
    only(spec.validate_call("setMyCommands", params), "two-letter ISO 639-1")


@pytest.mark.parametrize(
    ("media", "files", "fragment"),
    [
        ([{"type": "photo", "media": "a"}], {}, "1 items, allowed 2-10"),
        ([{"type": "photo", "media": "a"}] * 11, {}, "11 items"),
        ([{"type": "photo", "media": "a"}, {"type": "gif", "media": "b"}], {},
         "type must be one of"),
        ([{"type": "photo", "media": "a"}, {"type": "document", "media": "b"}], {},
         "document can't be mixed"),
        ([{"type": "photo", "media": "a"}, {"type": "photo", "media": "attach://p"}], {},
         "'attach://p' names no uploaded file part"),
        ([{"type": "photo", "media": "a"}, {"type": "photo", "media": "b", "spoiler": True}], {},
         "unknown field 'spoiler'"),
        ([{"type": "photo", "media": "a", "caption": "<b>x", "parse_mode": "HTML"},
          {"type": "photo", "media": "b"}], {}, "media[0].caption: HTML: unclosed tag <b>"),
        ([{"type": "photo", "media": "a", "caption": "x" * 1025}, {"type": "photo", "media": "b"}],
         {}, "1025 characters"),
        ([{"type": "photo"}, {"type": "photo", "media": "b"}], {},
         "missing required field 'media'"),
    ],
)  # fmt: skip
def test_media_group(spec: BotApiSpec, media: list, files: dict, fragment: str) -> None:
    only(spec.validate_call("sendMediaGroup", {"chat_id": 1, "media": media}, files), fragment)


@pytest.mark.parametrize(
    ("method", "params", "fragment"),
    [
        ("sendMessage", {"chat_id": 1, "text": "x", "link_preview_options": {"disabled": True}},
         "unknown field 'disabled'"),
        ("sendMessage", {"chat_id": 1, "text": "x", "reply_parameters": {"chat_id": 1}},
         "missing required field 'message_id'"),
        ("sendMessage", {"chat_id": 1, "text": "x", "parse_mode": "markdown_v2"},
         "unsupported parse mode"),
        ("sendChatAction", {"chat_id": 1, "action": "uploading"}, "must be one of"),
        ("setChatMenuButton", {"menu_button": {"type": "web_app", "text": "x"}},
         "missing required field 'web_app'"),
        ("sendMessage", {"chat_id": 1}, "missing required parameter"),
    ],
)  # fmt: skip
def test_nested_objects(spec: BotApiSpec, method: str, params: dict, fragment: str) -> None:
    only(spec.validate_call(method, params), fragment)


def test_input_file_rules(spec: BotApiSpec) -> None:
    only(spec.validate_call("sendMessage", {"chat_id": 1}, {"text": b"x"}), "can't be uploaded")
    # InputFile-only parameters can't be given as a string.
    only(spec.validate_call("setWebhook", {"url": "https://x.org", "certificate": "abc"}),
         "expected InputFile")  # fmt: skip
    only(spec.validate_call("sendDocument", {"chat_id": 1, "document": "attach://g"}, {"f": b""}),
         "names no uploaded file part")  # fmt: skip


# -- text limits -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "parse_mode", "ok"),
    [
        ("x" * 4096, None, True),
        ("x" * 4097, None, False),
        ("<b>" + "x" * 4096 + "</b>", "HTML", True),  # tags don't count
        ("&amp;" * 4096, "HTML", True),  # an entity is one character
        ("&amp;" * 4097, "HTML", False),
        ("😀" * 2048, None, True),  # outside the BMP: 2 UTF-16 code units each
        ("😀" * 2049, None, False),
        ("", None, False),
        ("  \n ", None, False),
        ("<b> </b>", "HTML", False),
    ],
)
def test_message_text_length(spec: BotApiSpec, text: str, parse_mode: str | None, ok: bool) -> None:
    params: dict[str, object] = {"chat_id": 1, "text": text}
    if parse_mode:
        params["parse_mode"] = parse_mode
    assert (spec.validate_call("sendMessage", params) == []) is ok


@pytest.mark.parametrize(("size", "ok"), [(1024, True), (1025, False)])
def test_caption_length(spec: BotApiSpec, size: int, ok: bool) -> None:
    params = {"chat_id": 1, "photo": "AgAC", "caption": "说" * size}
    assert (spec.validate_call("sendPhoto", params) == []) is ok


@pytest.mark.parametrize(("size", "ok"), [(0, True), (200, True), (201, False)])
def test_answer_callback_query_text(spec: BotApiSpec, size: int, ok: bool) -> None:
    params = {"callback_query_id": "1", "text": "好" * size}
    assert (spec.validate_call("answerCallbackQuery", params) == []) is ok


def test_bad_html_in_edited_text(spec: BotApiSpec) -> None:
    params = {"chat_id": 1, "message_id": 2, "text": "温度 < 5°C", "parse_mode": "HTML"}
    only(spec.validate_call("editMessageText", params), 'stray "<"', "byte offset 7")


def test_html_is_only_checked_in_html_mode(spec: BotApiSpec) -> None:
    assert spec.validate_call("sendMessage", {"chat_id": 1, "text": "温度 < 5°C"}) == []


# -- values and samples --------------------------------------------------------------------------
def test_validate_value_and_samples(spec: BotApiSpec) -> None:
    assert spec.validate_value("Array of BotCommand", [{"command": "a", "description": "b"}]) == []
    only(
        spec.validate_value("User", {"id": 1, "is_bot": False}),
        "missing required field 'first_name'",
    )
    for type_name in ("ChatFullInfo", "ChatMemberAdministrator", "Message", "WebhookInfo"):
        assert spec.validate_value(type_name, spec.sample(type_name)) == [], type_name


def test_polymorphic_response_objects(spec: BotApiSpec) -> None:
    user = {"id": 1, "is_bot": False, "first_name": "A"}
    assert spec.validate_value("ChatMember", {"status": "left", "user": user}) == []
    only(spec.validate_value("ChatMember", {"status": "gone", "user": user}), "ChatMember.status")


# -- HTML parse mode ---------------------------------------------------------------------------
def test_every_documented_tag_is_accepted() -> None:
    text = (
        "<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s>"
        '<strike>k</strike><del>d</del><span class="tg-spoiler">p</span><tg-spoiler>q</tg-spoiler>'
        "<b>bold <i>italic <s>strike <span class='tg-spoiler'>sp</span></s> <u>u</u></i></b>"
        '<a href="http://www.example.com/">url</a><a href="tg://user?id=123456789">m</a>'
        '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>'
        '<tg-time unix="1647531900" format="wDT">t</tg-time><tg-time unix="1647531900">t</tg-time>'
        '<code>c</code><pre>p</pre><pre><code class="language-python">x = 1</code></pre>'
        "<blockquote>q</blockquote><blockquote expandable>e<code>c</code></blockquote>"
        "&lt;&gt;&amp;&quot;&#20320;&#x597D;"
    )
    assert html_violations(text) == []
    assert html_visible_text(text).endswith('ec<>&"你好')


def test_visible_text_and_entities() -> None:
    parsed = parse_html('😀<b>工单</b> <a href="https://x.org/?a=1&amp;b=2">详情</a>')
    assert parsed.text == "😀工单 详情"
    assert parsed.entities == [
        {"type": "bold", "offset": 2, "length": 2},
        {"type": "text_link", "url": "https://x.org/?a=1&b=2", "offset": 5, "length": 2},
    ]
    pre = parse_html('<pre><code class="language-sql">select 1</code></pre>')
    assert pre.entities == [{"type": "pre", "language": "sql", "offset": 0, "length": 8}]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a < b", 'stray "<"'),
        ("I <3 you", 'stray "<"'),
        ("<", 'stray "<"'),
        ("a > b", 'stray ">"'),
        ("Tom & Jerry", 'stray "&"'),
        ("&nbsp;", 'stray "&"'),  # only lt, gt, amp and quot are named entities
        ("&amp", 'stray "&"'),
        ("&#0;", "invalid character reference"),
        ("<p>x</p>", "unsupported tag <p>"),
        ("<br/>", "unsupported tag <br>"),
        ("<b>x", "unclosed tag <b>"),
        ("x</b>", "unexpected end tag </b>"),
        ("<b><i>x</b></i>", "mis-nested"),
        ("<b", "unclosed start tag"),
        ('<a href="x>y</a>', "unclosed start tag"),
        ('<b class="x">y</b>', 'attribute "class" is not allowed on <b>'),
        ("<span>x</span>", 'class="tg-spoiler"'),
        ('<span class="spoiler">x</span>', 'class="tg-spoiler"'),
        ("<a>x</a>", "non-empty href"),
        ('<a href="https://x.org/?a=1&b=2">x</a>', 'in an attribute of <a>: stray "&"'),
        ('<a href="a"><a href="b">x</a></a>', "<a> inside <a>"),
        ('<a href="a"><tg-emoji emoji-id="1">👍</tg-emoji></a>', "<tg-emoji> inside <a>"),
        ("<tg-emoji>👍</tg-emoji>", "numeric emoji-id"),
        ('<tg-time unix="soon">x</tg-time>', "numeric unix"),
        ('<tg-time unix="1" format="Dw">x</tg-time>', "does not match"),
        ('<code class="language-py">x</code>', "standalone <code>"),
        ('<pre><code class="python">x</code></pre>', 'class="language-…"'),
        ("<pre><b>x</b></pre>", "pre and code can't contain entities"),
        ("<b><code>x</code></b>", "pre/code can only be nested in <blockquote>"),
        ("<blockquote><blockquote>x</blockquote></blockquote>", "can't be nested"),
        ('<blockquote expandable="yes" cite="x">q</blockquote>', 'attribute "cite"'),
    ],
)
def test_html_violations(text: str, fragment: str) -> None:
    violations = html_violations(text)
    assert violations, text
    assert fragment in violations[0], violations


def test_violation_offsets_are_utf8_bytes_like_telegram() -> None:
    assert html_violations("工单 < 5") == ['HTML: stray "<" (write &lt;) at byte offset 7']


def test_utf16_len() -> None:
    assert utf16_len("a工😀") == 4


# -- review findings ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "offset"),
    [("a & b", 2), ("工单 & 5", 7), ("x &#0; y", 2), ("&amp;&nbsp;", 5)],
)
def test_ampersand_problems_point_at_the_ampersand(text: str, offset: int) -> None:
    violations = html_violations(text)
    assert len(violations) == 1 and violations[0].endswith(f"at byte offset {offset}"), violations


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("<b>x</i>", 'expected "</b>", found "</i>"'),
        ("<b><i>x</b></i>", 'expected "</i>", found "</b>"'),
        ("<b>x</i></b>", 'expected "</b>", found "</i>"'),
    ],
)
def test_one_nesting_mistake_is_reported_once(text: str, fragment: str) -> None:
    only(html_violations(text), "mis-nested", fragment)


def test_a_mis_nested_end_tag_still_closes_the_entity() -> None:
    assert parse_html("<b>x</i>y").entities == [{"type": "bold", "offset": 0, "length": 1}]


@pytest.mark.parametrize(
    ("method", "params", "fragment"),
    [
        ("deleteMessages", {"chat_id": 1, "message_ids": []}, "0 items, allowed 1-100"),
        ("deleteMessages", {"chat_id": 1, "message_ids": list(range(1, 150))}, "149 items"),
        ("forwardMessages", {"chat_id": 1, "from_chat_id": 2, "message_ids": []}, "allowed 1-100"),
        ("copyMessages", {"chat_id": 1, "from_chat_id": 2, "message_ids": list(range(1, 102))},
         "101 items, allowed 1-100"),
        ("sendPoll", {"chat_id": 1, "question": "q", "options": [{"text": "a"}] * 13},
         "13 items, allowed 1-12"),
    ],
)  # fmt: skip
def test_list_of_n_m_items(spec: BotApiSpec, method: str, params: dict, fragment: str) -> None:
    only(spec.validate_call(method, params), f"{method}.", fragment)


def test_list_sizes_at_the_limits_are_fine(spec: BotApiSpec) -> None:
    for ids in ([1], list(range(1, 101))):
        assert spec.validate_call("deleteMessages", {"chat_id": 1, "message_ids": ids}) == []
    tasks = [{"id": i, "text": f"t{i}"} for i in range(1, 32)]
    only(spec.validate_value("InputChecklist", {"title": "t", "tasks": tasks}), "31 items")
    assert spec.validate_value("InputChecklist", {"title": "t", "tasks": tasks[:30]}) == []
    only(spec.validate_value("InputChecklist", {"title": "t", "tasks": []}), "allowed 1-30")


@pytest.mark.parametrize(
    ("type_name", "value", "fragment"),
    [
        ("MessageEntity", {"type": "boldx", "offset": 0, "length": 1}, "got 'boldx'"),
        ("Chat", {"id": 1, "type": "privat"}, "got 'privat'"),
        ("Sticker", {**{"file_id": "a", "file_unique_id": "b", "width": 1, "height": 1},
                     "is_animated": False, "is_video": False, "type": "normal"}, "got 'normal'"),
        ("MaskPosition", {"point": "nose", "x_shift": 0, "y_shift": 0, "scale": 1}, "'chin'"),
    ],
)  # fmt: skip
def test_enumerations_written_in_prose(
    spec: BotApiSpec, type_name: str, value: dict, fragment: str
) -> None:
    only(spec.validate_value(type_name, value), "must be one of", fragment)


def test_enumerations_accept_every_listed_value(spec: BotApiSpec) -> None:
    entity_types = spec.types["MessageEntity"].fields["type"].choices or set()
    assert {"bold", "text_link", "date_time", "expandable_blockquote"} <= entity_types
    chat_types = {"private", "group", "supergroup", "channel"}
    assert spec.types["Chat"].fields["type"].choices == chat_types
    assert spec.methods["sendPoll"].fields["type"].choices == {"quiz", "regular"}
    assert spec.types["UniqueGiftInfo"].fields["origin"].choices is not None
    # Examples and defaults are not lists of allowed values.
    assert spec.types["Venue"].fields["foursquare_type"].choices is None
    assert spec.methods["sendInvoice"].fields["currency"].choices is None
    assert spec.types["VideoQuality"].fields["codec"].choices is None  # "for example, …"
    params = {"chat_id": 1, "text": "ab", "entities": [{"type": "bold", "offset": 0, "length": 1}]}
    assert spec.validate_call("sendMessage", params) == []
    params["entities"] = [{"type": "boldx", "offset": 0, "length": 1}]
    only(spec.validate_call("sendMessage", params), "sendMessage.entities[0].type")


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"text": "x"}, "needs chat_id and message_id, or inline_message_id"),
        ({"text": "x", "chat_id": 1}, "'message_id' (required if inline_message_id is not"),
        ({"text": "x", "message_id": 1}, "'chat_id' (required if inline_message_id is not"),
    ],
)
def test_required_unless_inline_message_id(spec: BotApiSpec, params: dict, fragment: str) -> None:
    only(spec.validate_call("editMessageText", params), fragment)


def test_conditionally_required_parameters(spec: BotApiSpec) -> None:
    assert spec.validate_call("editMessageText", {"text": "x", "inline_message_id": "AA"}) == []
    assert spec.validate_call("editMessageText", {"text": "x", "chat_id": 1, "message_id": 2}) == []
    only(spec.validate_call("editMessageReplyMarkup", {}), "needs chat_id and message_id")
    only(spec.validate_call("sendGift", {"gift_id": "g"}), "needs user_id, or chat_id")
    assert spec.validate_call("sendGift", {"gift_id": "g", "chat_id": -100}) == []
    only(spec.validate_call("answerShippingQuery", {"shipping_query_id": "1", "ok": True}),
         "'shipping_options' (required if ok is True)")  # fmt: skip
    only(spec.validate_call("answerPreCheckoutQuery", {"pre_checkout_query_id": "1", "ok": False}),
         "'error_message' (required if ok is False)")  # fmt: skip
    ok = {"pre_checkout_query_id": "1", "ok": True}
    assert spec.validate_call("answerPreCheckoutQuery", ok) == []
    only(spec.validate_call("unpinChatMessage", {"chat_id": 1, "business_connection_id": "b"}),
         "'message_id' (required if business_connection_id is specified)")  # fmt: skip
    assert spec.validate_call("unpinChatMessage", {"chat_id": 1}) == []


def test_an_update_carries_at_most_one_kind(spec: BotApiSpec) -> None:
    message = spec.sample("Message")
    assert spec.validate_value("Update", {"update_id": 1, "message": message}) == []
    two = {"update_id": 1, "message": message, "edited_message": message}
    only(spec.validate_value("Update", two), "at most one", "['edited_message', 'message']")
