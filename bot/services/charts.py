"""Chart images for digests and /stats: PNG, with Chinese text that renders.

A chart is described by a plain, JSON-able *spec* (title, one label per bar group, panels of
series), so it can wait in the outbox as data and be drawn when it is sent (see
``bot.delivery.uploads``). The spec holds text already translated into the chat's language;
drawing it is deterministic.

matplotlib is used through its object API on the Agg canvas only: no pyplot, no global rc
changes, nothing at import time. Text is never parsed as mathtext, so a "$" in a name stays a
"$". Its default font has no CJK glyphs, so every text element gets
the Noto Sans CJK SC font file shipped in the ``mplfonts`` package, loaded by path. That font
also holds the traditional characters, so zh_Hant names render too. Drawing takes a few hundred
milliseconds of CPU: ``render`` runs it in a worker thread, one chart at a time.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import io
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

FONT_FILE = "NotoSansCJKsc-Regular.otf"
# Keeps a chart readable; the caller shows the rest in text.
MAX_LABELS = 40
# Counts, and rates in colours of their own; a series beyond a palette reuses it.
PALETTE = ("#4C78A8", "#54A24B", "#F58518", "#E45756")
PERCENT_PALETTE = ("#72B7B2", "#B279A2", "#EECA3B")

_drawing = threading.Lock()


class ChartError(ValueError):
    """The spec cannot be drawn."""


@functools.cache
def font_path() -> Path:
    """The CJK font file inside the installed mplfonts package (found without importing the
    package, whose import would change matplotlib's global settings)."""
    spec = importlib.util.find_spec("mplfonts")
    locations = list(spec.submodule_search_locations or ()) if spec else []
    for location in locations:
        path = Path(location) / "fonts" / FONT_FILE
        if path.is_file():
            return path
    raise RuntimeError(f"the font {FONT_FILE} was not found: install the mplfonts package")


def render_png(spec: Mapping[str, Any], *, font: Path | None = None) -> bytes:
    """Draw the spec as a PNG image.

    spec = {"title": str, "labels": [str, ...], "panels": [{"title": str, "percent": bool,
    "series": [{"name": str, "values": [number | None, ...]}, ...]}, ...]}; one value per
    label in each series, None for "no data" (drawn as "—"). Percent panels take shares
    (0.0–1.0). ``font`` replaces the CJK font (tests use it to show a font without CJK
    glyphs fails)."""
    labels, panels = _checked(spec)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

    with _drawing:
        fp = FontProperties(fname=str(font or font_path()))
        small = fp.copy()
        small.set_size(8)
        height = 1.6 + 0.22 * len(labels) * max(len(p["series"]) for p in panels)
        figure = Figure(figsize=(5.2 * len(panels) + 2, max(3.0, height)), dpi=100,
                        layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots(1, len(panels), sharey=True, squeeze=False)[0]
        positions = list(range(len(labels)))
        for ax, panel in zip(axes, panels, strict=True):
            _draw_panel(ax, panel, positions, fp, small)
        axes[0].set_yticks(positions, labels, fontproperties=fp, parse_math=False)
        axes[0].invert_yaxis()  # the first label on top, as in the text
        figure.suptitle(str(spec.get("title", "")), fontproperties=fp, fontsize=13,
                         parse_math=False)
        buffer = io.BytesIO()
        figure.canvas.print_png(buffer)
        return buffer.getvalue()


async def render(spec: Mapping[str, Any]) -> bytes:
    return await asyncio.to_thread(render_png, spec)


def _checked(spec: Mapping[str, Any]) -> tuple[list[str], list[Mapping[str, Any]]]:
    labels = [str(label) for label in spec.get("labels") or ()]
    panels = list(spec.get("panels") or ())
    if not labels or len(labels) > MAX_LABELS:
        raise ChartError(f"a chart needs 1 to {MAX_LABELS} labels, got {len(labels)}")
    if not panels or any(not panel.get("series") for panel in panels):
        raise ChartError("a chart needs panels with series")
    for panel in panels:
        for series in panel["series"]:
            if len(series.get("values") or ()) != len(labels):
                raise ChartError("every series needs one value per label")
    return labels, panels


def _draw_panel(ax, panel: Mapping[str, Any], positions: Sequence[int], fp, small) -> None:
    series = list(panel["series"])
    percent = bool(panel.get("percent"))
    band = 0.8 / len(series)
    palette = PERCENT_PALETTE if percent else PALETTE
    for index, item in enumerate(series):
        raw = list(item["values"])
        values = [0.0 if v is None else float(v) * (100 if percent else 1) for v in raw]
        offsets = [p - 0.4 + band * (index + 0.5) for p in positions]
        bars = ax.barh(offsets, values, height=band * 0.9, label=str(item.get("name", "")),
                       color=palette[index % len(palette)])
        texts = ["—" if v is None else (f"{float(v) * 100:.0f}%" if percent else f"{v:g}")
                 for v in raw]
        ax.bar_label(bars, labels=texts, padding=2, fontproperties=small)
    ax.set_title(str(panel.get("title", "")), fontproperties=fp, fontsize=11, parse_math=False)
    if percent:
        from matplotlib.ticker import PercentFormatter

        ax.set_xlim(0, 115)  # room for "100%" beside the longest bar
        ax.set_xticks(range(0, 101, 20))
        ax.xaxis.set_major_formatter(PercentFormatter(100, decimals=0))
    else:
        from matplotlib.ticker import MaxNLocator

        ax.set_xlim(0, max(1.0, ax.get_xlim()[1] * 1.12))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # tickets come whole
    for tick in ax.get_xticklabels():
        tick.set_fontproperties(small)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    legend = ax.legend(prop=small, loc="upper center", bbox_to_anchor=(0.5, -0.05),
                       ncol=len(series), frameon=False)
    for text in legend.get_texts():
        text.set_parse_math(False)
