"""A real uvicorn server for browser tests: the app on a free 127.0.0.1 port, in a background thread."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi import FastAPI

from kakehashi.bench.serving import serving as bench_serving

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = os.environ.get("KAKEHASHI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def chromium(args: list[str] = CHROMIUM_ARGS) -> Iterator[Browser]:
    """Debian's chromium, headless, driven by Playwright (fails the test when either is missing)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: .venv/bin/pip install -e '.[dev]' (or KAKEHASHI_SKIP_BROWSER=1)")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium not found at {CHROMIUM}: run scripts/services as root (or KAKEHASHI_SKIP_BROWSER=1)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def serving(app: FastAPI, *, start_timeout: float = 60) -> Iterator[str]:
    """Serve ``app`` (its lifespan runs) until the block ends; yields the base URL (``kakehashi.bench.serving``,
    a failure to start fails the test)."""
    try:
        with bench_serving(app, start_timeout=start_timeout) as url:
            yield url
    except RuntimeError as exc:
        if "did not start" not in str(exc):
            raise
        pytest.fail(f"uvicorn did not start: {exc}")
