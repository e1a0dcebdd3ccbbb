"""Helpers for tests in a real browser: a `streamlit run` server on a free localhost port, and Chromium.

Debian's Chromium is used (test tools cannot download browsers here); without it, browser tests are
skipped with a reason that says how to get it, except under CI, where a missing browser is a failure.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from tests.servers import answers_ok, free_port, running, streamlit_command

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"]


def require_browser() -> None:
    missing = None
    if not Path(CHROMIUM).exists():
        missing = f"Chromium not found at {CHROMIUM}: install it with `apt-get install chromium` (as root); .ci/run does"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright package is missing: `make test` installs it"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run in CI: {missing}")
        pytest.skip(missing)


@contextlib.contextmanager
def streamlit_server(script: Path, timeout: float = 90.0) -> Iterator[str]:
    """Start `streamlit run` on 127.0.0.1, wait until /_stcore/health answers ok, stop it afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp, \
            running(streamlit_command(script, port), answers_ok(f"{url}/_stcore/health"), Path(tmp) / "streamlit.log",
                    timeout=timeout):
        yield url


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def wait_for_app(page: object, timeout_ms: int = 60_000) -> None:
    """Wait until the script has finished running (Streamlit's own tests wait for the same)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=timeout_ms,
    )


def choose(page: object, label: str, option: str) -> None:
    """Pick an option in a Streamlit selectbox or multiselect found by its label."""
    widget = page.locator('[data-testid="stSelectbox"], [data-testid="stMultiSelect"]').filter(
        has=page.get_by_text(label, exact=True)
    ).first
    field = widget.locator("input").first
    field.click()
    field.fill(option)  # filters the list, which only renders the options in view
    page.get_by_role("option", name=option, exact=True).first.click()
    page.keyboard.press("Escape")
