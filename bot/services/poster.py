"""A place's printable poster: one A4 page of PDF with the place's name, a big QR code to the
web chat opened at that place, the address in text for those who cannot scan, one line on what
to report there, and the emergency numbers.

Drawn with matplotlib's PDF backend, not rasterized with Pillow: the page is vector, so the QR
code's modules keep sharp edges at whatever resolution the printer has, and the text stays
text (selectable, searchable, a few kilobytes). The font is the Noto Sans CJK SC that
``charts`` uses (it holds the traditional characters too), embedded as a Type 3 font: that is
the outline of each glyph used, as vector drawing, with a Unicode map (matplotlib ≥ 3.11
splits a font of more than 256 glyphs into several such fonts; before, the CJK glyphs were
drawn as pictures without text). Type 42 would embed the font file itself, but this font's
outlines are CFF, which matplotlib then labels as TrueType and readers complain of the
mismatch. As in ``charts``: no pyplot, text never parsed as mathtext (a "$" in a URL stays
one).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import regex
import segno

from bot.i18n import Translator
from bot.services.charts import font_path

# The page in millimetres; everything is placed in these units.
PAGE_WIDTH = 210.0
PAGE_HEIGHT = 297.0
MARGIN = 15.0
TEXT_WIDTH = PAGE_WIDTH - 2 * MARGIN
# The code's side, when the texts above and below it leave room: at about ten times its side
# a phone still reads it, so from a metre across a stairwell.
QR_SIDE = 140.0
QR_SIDE_MIN = 70.0
# Q (a quarter of the code may be lost): posters get dirty, wet and torn at their corners.
QR_ERROR = "q"

_PT = 25.4 / 72  # millimetres per point
_LEADING = 1.3
_INK = "#000000"
_GREY = "#555555"
_RED = "#C62828"

# Where a line may break: after spaces, between two Han characters, never before closing
# punctuation (，。) nor after opening punctuation (（“), nor inside a short bracketed word or
# between it and what it explains ("110（报警）"). A run of other characters (a word, a
# number, a URL) stays whole unless it is wider than the line by itself.
_CLOSING = "，。、；：！？）」』”’,.;:!?)]"
_OPENING = "（「『“‘(["
_HAN = r"\p{Han}\p{Hiragana}\p{Katakana}"
_GROUP = r"(?:[（(][^（）()\s]{1,12}[）)])"
_TOKEN = regex.compile(
    rf"\s+|[{regex.escape(_OPENING)}]*"
    rf"(?:[{_HAN}]{_GROUP}?|[^\s{_HAN}{regex.escape(_OPENING)}]+{_GROUP}?|{_GROUP})"
    rf"[{regex.escape(_CLOSING)}]*"
    r"|\S"  # whatever else (a stray bracket) is a token of its own: no text is ever lost
)
# An address breaks after its separators ("/", ".", "?", "=", …), as browsers print them.
_URL_TOKEN = regex.compile(r"[^/.?&=_-]*[/.?&=_-]+|[^/.?&=_-]+")


class PosterError(ValueError):
    """The poster cannot be drawn as it should be."""


def chat_url(public_url: str, code: str) -> str:
    """The web chat, opened at the place with this code: what the QR code holds."""
    return f"{public_url.rstrip('/')}/chat?at={quote(code, safe='')}"


@dataclass(frozen=True)
class Poster:
    """What one poster says, in plain values (the caller reads the place)."""

    code: str
    name: str  # the place's name in the poster's language
    url: str  # chat_url(...)


@dataclass(frozen=True)
class _Block:
    """Lines of text of one size, drawn centred from a top edge."""

    lines: tuple[str, ...]
    size: float
    colour: str = _INK

    @property
    def height(self) -> float:
        return len(self.lines) * self.size * _LEADING * _PT


def render_pdf(poster: Poster, t: Translator, *, font: Path | None = None) -> bytes:
    """The poster as a one-page A4 PDF. ``font`` replaces the CJK font (tests use it)."""
    import matplotlib
    from matplotlib.backends.backend_pdf import FigureCanvasPdf
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import FancyBboxPatch, PathPatch
    from matplotlib.textpath import TextToPath

    fp = FontProperties(fname=str(font or font_path()))
    measure = _Measure(TextToPath(), fp)
    # TRANSLATORS: the heading of the poster put up in a grid, above its big QR code.
    heading = t("Scan the code to report a problem")
    # TRANSLATORS: on the poster, below the QR code, above its address in text.
    fallback = t("Cannot scan the code? Open this address in a browser:")
    # TRANSLATORS: on the poster, one short sentence on what residents report through it.
    topics = t("Neighbour disputes, safety hazards, property management, sanitation and other "
               "problems around you: tell your grid worker here.")
    # The bot's own help sentence (the configuration holds no numbers): the wall and the chat
    # name the same ones, in the same words.
    emergency = t("In an emergency call 110 (police), 119 (fire) or 120 (ambulance) first.")
    _check_glyphs(fp, {"name": poster.name, "heading": heading, "address": poster.url,
                       "text": fallback + topics + emergency})

    name = measure.fit(poster.name, sizes=(36, 32, 28, 24, 20), max_lines=2)
    title = measure.fit(heading, sizes=(22, 20, 18, 16), max_lines=2)
    hint = _Block(measure.wrap(fallback, 12), 12, _GREY)
    address = measure.fit(poster.url, sizes=(16, 14, 12, 10, 9), max_lines=3, url=True)
    about = measure.fit(topics, sizes=(16, 15, 14, 13, 12), max_lines=4)
    box_padding = 5.0
    sos = measure.fit(emergency, sizes=(18, 16, 14, 13, 12), max_lines=3,
                      width=TEXT_WIDTH - 2 * box_padding, colour=_RED)

    gap = 6.0
    box_height = sos.height + 2 * box_padding
    above = name.height + gap + title.height + gap
    below = gap + hint.height + 1.5 + address.height + gap + about.height + gap + box_height
    side = min(QR_SIDE, PAGE_HEIGHT - 2 * MARGIN - above - below)
    if side < QR_SIDE_MIN:
        raise PosterError("the texts leave too little room for the QR code")

    # rc_context: matplotlib's PDF backend reads the font type from the global settings
    # alone; Type 3 whatever a matplotlibrc says (see the module's docstring). The PNG
    # charts drawn meanwhile on other threads never read it.
    with matplotlib.rc_context({"pdf.fonttype": 3}):
        figure = Figure(figsize=(PAGE_WIDTH / 25.4, PAGE_HEIGHT / 25.4))
        FigureCanvasPdf(figure)
        ax = figure.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, PAGE_WIDTH)
        ax.set_ylim(0, PAGE_HEIGHT)
        ax.set_axis_off()

        def draw(block: _Block, top: float) -> float:
            step = block.size * _LEADING * _PT
            for line in block.lines:
                # The line's box, not its baseline, is what the layout counts.
                ax.text(PAGE_WIDTH / 2, top, line, fontproperties=fp, fontsize=block.size,
                        color=block.colour, ha="center", va="top", parse_math=False)
                top -= step
            return top

        top = PAGE_HEIGHT - MARGIN
        top = draw(name, top) - gap
        top = draw(title, top) - gap
        ax.add_patch(PathPatch(_qr_path(poster.url, (PAGE_WIDTH - side) / 2, top - side,
                                        side), facecolor=_INK, edgecolor="none"))
        top -= side + gap
        top = draw(hint, top) - 1.5
        top = draw(address, top) - gap
        draw(about, top)

        bottom = MARGIN
        ax.add_patch(FancyBboxPatch((MARGIN, bottom), TEXT_WIDTH, box_height,
                                    boxstyle="round,pad=0,rounding_size=3", facecolor="none",
                                    edgecolor=_RED, linewidth=2))
        draw(sos, bottom + box_height - box_padding)
        # Which place this poster is for, small: for whoever puts posters up.
        ax.text(PAGE_WIDTH - MARGIN, MARGIN / 2, poster.code, fontproperties=fp, fontsize=8,
                color=_GREY, ha="right", va="center", parse_math=False)

        buffer = io.BytesIO()
        # No creation date: the same place, address and language give the same file.
        figure.savefig(buffer, format="pdf", metadata={
            "Title": f"{poster.name} ({poster.code})", "Creator": "gridgate",
            "CreationDate": None})
    return buffer.getvalue()


def _qr_path(url: str, x: float, y: float, side: float):
    """The QR code's dark modules as one path: each row's runs of dark modules as
    rectangles. One path is filled at once, so no hairline shows between touching modules
    the way it can between shapes filled one by one."""
    from matplotlib.path import Path as MplPath

    code = segno.make_qr(url, error=QR_ERROR)
    matrix = code.matrix
    count = len(matrix)
    module = side / count
    vertices: list[tuple[float, float]] = []
    codes: list[int] = []
    for row_index, row in enumerate(matrix):
        top = y + side - row_index * module
        column = 0
        while column < count:
            if not row[column]:
                column += 1
                continue
            start = column
            while column < count and row[column]:
                column += 1
            left, right = x + start * module, x + column * module
            vertices += [(left, top), (right, top), (right, top - module),
                         (left, top - module), (left, top)]
            codes += [MplPath.MOVETO, MplPath.LINETO, MplPath.LINETO, MplPath.LINETO,
                      MplPath.CLOSEPOLY]
    return MplPath(vertices, codes)


class _Measure:
    """Widths of text in the poster's font, and lines that fit."""

    def __init__(self, text_to_path, fp) -> None:
        self._ttp = text_to_path
        self._fp = fp

    def width(self, text: str, size: float) -> float:
        prop = self._fp.copy()
        prop.set_size(size)
        points, _height, _descent = self._ttp.get_text_width_height_descent(
            text, prop, ismath=False)
        return points * _PT

    def wrap(self, text: str, size: float, *, width: float = TEXT_WIDTH,
             url: bool = False) -> tuple[str, ...]:
        """Greedy lines of ``text`` no wider than ``width`` mm, broken where its language
        allows (``url``: after an address's separators); a piece wider than a line by itself
        is broken between characters."""
        tokens = (_URL_TOKEN if url else _TOKEN).findall(text.strip())
        lines: list[str] = []
        for line in self._lines(tokens, size, width):
            if self.width(line, size) > width:
                lines += self._lines(list(line), size, width)
            else:
                lines.append(line)
        return tuple(lines)

    def _lines(self, tokens: Sequence[str], size: float, width: float) -> list[str]:
        lines: list[str] = []
        line = ""
        for token in tokens:
            candidate = line + token
            if not line.strip() or self.width(candidate.rstrip(), size) <= width:
                line = candidate
                continue
            lines.append(line.rstrip())
            line = token.lstrip()
        if line.strip():
            lines.append(line.rstrip())
        return lines

    def fit(self, text: str, *, sizes: Sequence[float], max_lines: int,
            width: float = TEXT_WIDTH, url: bool = False, colour: str = _INK) -> _Block:
        """The largest of ``sizes`` at which ``text`` takes at most ``max_lines`` lines; the
        smallest size otherwise, on as many lines as it needs. Lines are balanced: as narrow
        as they can be on that many lines, so that no word is left alone on the last one."""
        for size in sizes:
            lines = self.wrap(text, size, width=width, url=url)
            if len(lines) <= max_lines:
                break
        if len(lines) > 1:
            narrow, wide = 0.0, width
            while wide - narrow > 1.0:  # to a millimetre
                middle = (narrow + wide) / 2
                if len(self.wrap(text, size, width=middle, url=url)) <= len(lines):
                    wide = middle
                else:
                    narrow = middle
            lines = self.wrap(text, size, width=wide, url=url)
        return _Block(lines, size, colour)


def _check_glyphs(fp, texts: dict[str, str]) -> None:
    """A character the font lacks would print as an empty box: refuse instead."""
    from matplotlib.ft2font import FT2Font

    charmap = FT2Font(fp.get_file()).get_charmap()
    for what, text in texts.items():
        missing = sorted({c for c in text if not c.isspace() and ord(c) not in charmap})
        if missing:
            raise PosterError(f"the font has no glyph for {''.join(missing)!r} in the {what}")
