"""Files an outbox row asks for by description, made when the row is sent.

The outbox holds JSON, and a photo the bot draws itself (a digest's chart) has no file_id to
store until Telegram has it. So the row stores what to draw — ``{"photo": {"$chart": spec}}``
— and the sender draws it just before the call, outside any transaction, into the upload. The
row stays small, a retry draws the same picture again, and nothing is drawn for a row that
never goes out (its group left, say).
"""

from __future__ import annotations

from typing import Any

from telegram import InputFile

from bot.services import charts

CHART = "$chart"


def is_chart(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {CHART}


def chart_placeholder(spec: dict[str, Any]) -> dict[str, Any]:
    """What to put in a row's params where the photo goes."""
    return {CHART: spec}


async def materialize(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with each top-level chart placeholder drawn as a PNG upload (raises if a
    spec cannot be drawn: such a row fails, for a retry would draw the same)."""
    if not any(is_chart(value) for value in params.values()):
        return params
    out = dict(params)
    for key, value in params.items():
        if is_chart(value):
            png = await charts.render(value[CHART])
            out[key] = InputFile(png, filename="chart.png")
    return out
