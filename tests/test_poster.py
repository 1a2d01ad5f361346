"""`gridgate poster`: an A4 PDF per place whose QR code opens the web chat at that place.

The command runs as an operator runs it (a process, on a database holding the demo district);
its PDFs are rendered by poppler's pdftoppm and their codes read back by zxing-cpp, the way a
phone would read the printed page."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from bot.i18n import Catalogs
from bot.services.poster import Poster, PosterError, chat_url, render_pdf
from tests.test_cli import gridgate, load_demo

PUBLIC_URL = "https://wg.example.gov.cn/sfq"
# A trailing slash, as an admin may well write it: the address must not get two.
CONFIG = f'[web]\npublic_url = "{PUBLIC_URL}/"\n'
A4_POINTS = (595.276, 841.89)
DEMO_GRIDS = 12

needs_poppler = pytest.mark.skipif(
    shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None,
    reason="pdftoppm/pdftotext are missing: install poppler-utils")


def media_box(pdf: bytes) -> tuple[float, float]:
    """The one page's size in points, from the PDF itself (matplotlib writes no object
    streams, so the page dictionary is plain text)."""
    boxes = re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    assert len(boxes) == 1, boxes
    return float(boxes[0][0]), float(boxes[0][1])


def assert_a4(pdf: bytes) -> None:
    assert pdf.startswith(b"%PDF-")
    width, height = media_box(pdf)
    assert width == pytest.approx(A4_POINTS[0], abs=0.5)
    assert height == pytest.approx(A4_POINTS[1], abs=0.5)


def scan(path: Path, dpi: int = 150) -> list[zxingcpp.Barcode]:
    """The QR codes on the page, as printed at ``dpi`` and read by a phone's decoder."""
    prefix = path.with_suffix("")
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", "-singlefile", str(path), str(prefix)],
                   check=True, capture_output=True)
    with Image.open(prefix.with_suffix(".png")) as image:
        width, height = image.size  # A4, to the pixel poppler rounds to
        assert abs(width - 210 / 25.4 * dpi) <= 1 and abs(height - 297 / 25.4 * dpi) <= 1
        return [code for code in zxingcpp.read_barcodes(image)
                if code.format == zxingcpp.BarcodeFormat.QRCode]


def text_of(path: Path) -> str:
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the demo district's database and a configuration with the address."""
    folder = tmp_path_factory.mktemp("posters")
    load_demo(folder)
    (folder / "gridgate.toml").write_text(CONFIG, "utf-8")
    return folder


def test_the_poster_of_a_grid_opens_the_chat_at_that_grid(demo: Path) -> None:
    result = gridgate(demo, "poster", "SFQ-DH-01-G1", "--out", "one")
    assert result.returncode == 0, result.stderr
    path = demo / "one" / "SFQ-DH-01-G1.pdf"
    assert result.stdout.splitlines() == [str(Path("one") / "SFQ-DH-01-G1.pdf")]
    assert files_in(demo / "one") == ["SFQ-DH-01-G1.pdf"]  # no temporary file left over
    assert_a4(path.read_bytes())
    if shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None:
        pytest.skip("pdftoppm/pdftotext are missing: install poppler-utils")

    [code] = scan(path)
    url = f"{PUBLIC_URL}/chat?at=SFQ-DH-01-G1"
    assert code.text == url
    # Big: about 14 cm across, so that it is read from a metre away (at 150 dpi, 1 cm is
    # 59 pixels; the decoder's corners lie on the finder patterns' outer edge).
    corners = code.position
    assert corners.top_right.x - corners.top_left.x > 12 * 59
    text = text_of(path)
    # The default language is the config's (zh_Hans); everything is text, not pictures.
    for expected in ("东湖一社区第1网格", "扫码反映问题", "无法扫码", url, "邻里纠纷",
                     "110（报警）", "119（火警）", "120（急救）"):
        assert expected in text, (expected, text)


def test_another_language_and_another_tier(demo: Path) -> None:
    result = gridgate(demo, "poster", "SFQ-DH-01", "--lang", "en", "--out", "en")
    assert result.returncode == 0, result.stderr
    path = demo / "en" / "SFQ-DH-01.pdf"
    assert_a4(path.read_bytes())
    if shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None:
        pytest.skip("pdftoppm/pdftotext are missing: install poppler-utils")
    [code] = scan(path)
    assert code.text == f"{PUBLIC_URL}/chat?at=SFQ-DH-01"
    text = " ".join(text_of(path).split())
    for expected in ("Donghu No. 1 Community", "Scan the code to report a problem",
                     "Neighbour disputes", "110 (police)", "120 (ambulance)"):
        assert expected in text, (expected, text)


@needs_poppler
def test_all_grids_one_poster_each(demo: Path) -> None:
    result = gridgate(demo, "poster", "--all-grids", "--out", "all", "--lang", "zh_Hant")
    assert result.returncode == 0, result.stderr
    written = [Path(line) for line in result.stdout.splitlines()]
    assert len(written) == DEMO_GRIDS
    assert files_in(demo / "all") == sorted(p.name for p in written)
    for path in written:
        code = path.stem
        assert re.fullmatch(r"SFQ-(DH|NY)-0[12]-G[123]", code), code
        assert_a4((demo / path).read_bytes())
        [qr] = scan(demo / path, dpi=100)
        assert qr.text == f"{PUBLIC_URL}/chat?at={code}"
    assert "東湖一社區第1網格" in text_of(demo / "all" / "SFQ-DH-01-G1.pdf")


def test_without_a_public_address_nothing_is_written(tmp_path: Path) -> None:
    load_demo(tmp_path)
    result = gridgate(tmp_path, "poster", "SFQ-DH-01-G1", "--out", "out",
                      config="[general]\ndefault_language = \"zh_Hans\"\n")
    assert result.returncode == 2
    assert "[web] public_url" in result.stderr and "Traceback" not in result.stderr
    assert files_in(tmp_path / "out") == []


def test_unknown_codes_are_named_and_nothing_is_written(demo: Path) -> None:
    result = gridgate(demo, "poster", "SFQ-DH-01-G1", "NOPE", "SFQ-XX-9", "--out", "bad")
    assert result.returncode == 2
    assert "'NOPE'" in result.stderr and "'SFQ-XX-9'" in result.stderr
    assert "no poster written" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
    assert files_in(demo / "bad") == []
    # A desk is no place a resident lives in.
    desk = gridgate(demo, "poster", "legal", "--out", "bad")
    assert desk.returncode == 2 and "a desk" in desk.stderr
    assert files_in(demo / "bad") == []
    # Neither codes nor --all-grids: nothing to do is a mistake, said as such.
    nothing = gridgate(demo, "poster")
    assert nothing.returncode == 2 and "--all-grids" in nothing.stderr


def test_an_empty_database_has_no_grids_to_print(tmp_path: Path) -> None:
    result = gridgate(tmp_path, "poster", "--all-grids", config=CONFIG)
    assert result.returncode == 1 and "no grids" in result.stderr
    assert not (tmp_path / "gridgate.db").exists()  # a reading command creates nothing


@needs_poppler
def test_long_names_and_addresses_stay_on_the_page(tmp_path: Path) -> None:
    """A name of 64 characters (the most a place may have) and a long address wrap onto
    lines that stay inside the margins, and the code still reads."""
    name = "Community Grid of the Riverside Garden Residential Quarter No 12"
    assert len(name) == 64
    url = chat_url("https://governance-services.street-office.example.gov.cn/residents/"
                   "web-chat/gridgate", "SFQ-LONG-CODE_0123456789-abcdefghij")
    path = tmp_path / "long.pdf"
    path.write_bytes(render_pdf(Poster("SFQ-LONG-CODE_0123456789-abcdefghij", name, url),
                                Catalogs.load()["en"]))
    [code] = scan(path)
    assert code.text == url
    boxes = subprocess.run(["pdftotext", "-bbox", str(path), "-"], check=True,
                           capture_output=True, text=True).stdout
    # Across only: poppler gives a Type 3 font's words the height of the font's whole box.
    words = re.findall(r'<word xMin="([-\d.]+)" yMin="[-\d.]+" xMax="([-\d.]+)" '
                       r'yMax="[-\d.]+">([^<]*)</word>', boxes)
    assert words
    margin = 15 / 25.4 * 72 - 1  # 15 mm, less a point for the glyphs' side bearings
    for x_min, x_max, word in words:
        assert float(x_min) >= margin and float(x_max) <= A4_POINTS[0] - margin, word
    # No character lost in the wrapping, and the address broken after its separators.
    joined = "".join(word for *_box, word in words)
    assert name.replace(" ", "") in joined
    assert url in joined
    lines = text_of(path).splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("https://"))
    last = next(i for i, line in enumerate(lines) if line.endswith("abcdefghij"))
    assert "".join(lines[first:last + 1]) == url and last > first
    assert all(line[-1] in "/.?=&-_" for line in lines[first:last]), lines[first:last + 1]


def test_a_font_without_the_names_characters_is_refused() -> None:
    """Characters the font lacks would print as empty boxes on a poster on the wall."""
    import matplotlib

    latin_only = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    poster = Poster("SFQ-DH-01-G1", "东湖一社区第1网格", chat_url(PUBLIC_URL, "SFQ-DH-01-G1"))
    with pytest.raises(PosterError, match="in the name"):
        render_pdf(poster, Catalogs.load()["en"], font=latin_only)


def test_the_same_poster_is_the_same_file() -> None:
    poster = Poster("SFQ-DH-01-G1", "东湖一社区第1网格", chat_url(PUBLIC_URL, "SFQ-DH-01-G1"))
    t = Catalogs.load()["zh_Hans"]
    assert render_pdf(poster, t) == render_pdf(poster, t)
