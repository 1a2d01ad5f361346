"""Files an outbox row asks for by description, made when the row is sent.

Photos a resident sent from the web chat have no Telegram file id either: a row names them
``web:<token>`` (bot.delivery.web) and they are read from the database and uploaded when the row
goes to Telegram.

The outbox holds JSON, and a photo the bot draws itself (a digest's chart) has no file_id to
store until Telegram has it. So the row stores what to draw — ``{"photo": {"$chart": spec}}``
— and the sender draws it just before the call, outside any transaction, into the upload. The
row stays small, a retry draws the same picture again, and nothing is drawn for a row that
never goes out (its group left, say).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from telegram import InputFile

from bot.services import charts

CHART = "$chart"


def is_chart(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {CHART}


def chart_placeholder(spec: dict[str, Any]) -> dict[str, Any]:
    """What to put in a row's params where the photo goes."""
    return {CHART: spec}


WEB_FILE = "web:"
# A web photo by its token: its bytes, or None when it is gone (the person's data erased).
WebFiles = Callable[[str], Awaitable[bytes | None]]


class FileGone(Exception):
    """A web photo a row names no longer exists: the row cannot go out."""


def _is_web(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(WEB_FILE)


async def materialize(params: dict[str, Any], web_files: WebFiles | None = None) -> dict[str, Any]:
    """``params`` with each top-level chart placeholder drawn as a PNG upload (raises if a
    spec cannot be drawn: such a row fails, for a retry would draw the same), and each web
    photo (top level, or in an album's media) read as an upload."""
    media = params.get("media")
    album = isinstance(media, list) and any(
        isinstance(item, dict) and _is_web(item.get("media")) for item in media)
    if not album and not any(is_chart(v) or _is_web(v) for v in params.values()):
        return params
    out = dict(params)
    for key, value in params.items():
        if is_chart(value):
            png = await charts.render(value[CHART])
            out[key] = InputFile(png, filename="chart.png")
        elif _is_web(value):
            out[key] = InputFile(await _web_file(web_files, value), filename="photo.jpg")
    if album:
        out["media"] = [
            {**item, "media": InputFile(await _web_file(web_files, item["media"]),
                                        filename=f"photo{index}.jpg", attach=True)}
            if isinstance(item, dict) and _is_web(item.get("media")) else item
            for index, item in enumerate(media)]
    return out


async def _web_file(web_files: WebFiles | None, ref: str) -> bytes:
    content = await web_files(ref.removeprefix(WEB_FILE)) if web_files is not None else None
    if content is None:
        raise FileGone(ref)
    return content
