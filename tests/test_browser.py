"""End to end in a real headless Chromium against `streamlit run` on a free localhost port."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import ROOT, choose, chromium, require_browser, streamlit_server, wait_for_app


@pytest.fixture(scope="module")
def server() -> str:
    require_browser()
    with streamlit_server(ROOT / "app.py") as url:
        yield url


def test_fill_form_submit_and_see_cards_and_red_flags(server: str, tmp_path: Path) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(server)
        wait_for_app(page)
        page.get_by_text("Myotomy decision support", exact=True).first.wait_for()
        choose(page, "Presentations", "Oesophageal achalasia")
        wait_for_app(page)
        page.get_by_label("Age", exact=True).fill("72")
        page.get_by_label("Age", exact=True).press("Enter")
        choose(page, "Subtype", "type_iii")
        choose(page, "Diagnosis confirmed", "yes")
        choose(page, "Rapid weight loss", "yes")
        page.get_by_role("button", name="Assess").click()
        page.get_by_text("Candidate procedures", exact=True).wait_for(timeout=60_000)
        wait_for_app(page)
        body = page.inner_text("body")
        assert "Red flags" in body
        assert "possible pseudoachalasia" in body and "malignancy not excluded" in body
        assert "Per-oral endoscopic myotomy (POEM)" in body and "Held back by red flags" in body
        assert body.index("Red flags") < body.index("Candidate procedures")
        page.screenshot(path=str(tmp_path / "assessment.png"), full_page=True)
        assert (tmp_path / "assessment.png").stat().st_size > 10_000
