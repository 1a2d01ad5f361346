"""Debian's Chromium for the browser tests, driven by Playwright (no browser download: the
machine has no internet), and the folder each test keeps its screenshots in."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, async_playwright

ROOT = Path(__file__).resolve().parent.parent
# Debian's chromium: /usr/bin/chromium is a wrapper script around the real binary.
CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium", "/usr/bin/chromium") if
                 Path(p).is_file()), None)
# Chromium on a machine with no network (and as root in CI): nothing that phones home.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


def artefacts(name: str) -> Path:
    """test-artifacts/<name>/, emptied (CI keeps that folder)."""
    folder = ROOT / "test-artifacts" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    # Never skip: .ci/run installs chromium, and a missing browser must fail the run.
    assert CHROMIUM, "Debian's chromium is not installed (apt-get install chromium; .ci/run does)"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()
