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


def _expected_text(case_input: dict) -> list[str]:
    """What a page must show for a case: each red flag and each suggestion with its strength."""
    from rules import assess
    from rules.render import STRENGTH_LABEL

    result = assess(case_input)
    return [f.id.replace("_", " ") for f in result.red_flags] + [
        f"{s.name} — {STRENGTH_LABEL[s.strength]}" for s in result.suggestions
    ]


def test_five_sessions_submitting_at_once_each_see_their_own_answer(server: str) -> None:
    from rules.knowledge_base import load_cases

    cases = [case for _, case in load_cases()]
    # five cases whose answers differ, so that a crossed answer cannot pass
    chosen, seen = [], set()
    for case in cases:
        key = tuple(_expected_text(case.input))
        if key not in seen:
            seen.add(key)
            chosen.append(case)
        if len(chosen) == 5:
            break
    assert len(chosen) == 5
    with chromium() as browser:
        pages = [browser.new_page(viewport={"width": 1300, "height": 1600}) for _ in chosen]
        for page, case in zip(pages, chosen):
            page.goto(server)
            wait_for_app(page)
            choose(page, "Teaching case", case.title)
            wait_for_app(page)
        for page in pages:  # submit all five before reading any answer
            page.get_by_role("button", name="Assess").click()
        for page, case in zip(pages, chosen):
            page.get_by_text("Candidate procedures", exact=True).wait_for(timeout=90_000)
            wait_for_app(page)
            body = page.inner_text("body")
            for text in _expected_text(case.input):
                assert text in body, f"{case.id}: '{text}' missing from its page"
            others = {t for c in chosen if c is not case for t in _expected_text(c.input)} - set(_expected_text(case.input))
            suggestion_lines = {t for t in others if " — " in t}
            assert not any(t in body for t in suggestion_lines), f"{case.id}: shows another session's answer"


PAYLOADS = ["<img src=x onerror=alert(1)>", "<script>alert(2)</script>"]


def test_markup_in_a_teaching_case_is_shown_as_text_and_never_runs(tmp_path: Path) -> None:
    """A teaching case carrying HTML: the page shows it literally, no element is created, no dialog opens."""
    import shutil

    import yaml

    require_browser()
    data = tmp_path / "data"
    shutil.copytree(ROOT / "data", data)
    cases_file = data / "cases" / "achalasia.yaml"
    cases = yaml.safe_load(cases_file.read_text(encoding="utf-8"))
    hostile = dict(cases["cases"][0], id="hostile_markup_case", title=f"Markup {PAYLOADS[0]}",
                   teaching_point=f"Point {PAYLOADS[1]} and {PAYLOADS[0]}")
    cases["cases"].append(hostile)
    cases_file.write_text(yaml.safe_dump(cases, sort_keys=False), encoding="utf-8")
    import os

    os.environ["MYOTOMY_CDS_DATA"] = str(data)
    try:
        with streamlit_server(ROOT / "app.py") as url, chromium() as browser:
            page = browser.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(url)
            wait_for_app(page)
            choose(page, "Teaching case", hostile["title"])
            wait_for_app(page)
            page.get_by_role("button", name="Assess").click()
            page.get_by_text("Candidate procedures", exact=True).wait_for(timeout=60_000)
            body = page.inner_text("body")
            assert PAYLOADS[0] in body and PAYLOADS[1] in body  # shown as text
            assert page.locator("img[src='x']").count() == 0
            assert page.locator("script:text('alert(2)')").count() == 0
            page.wait_for_timeout(500)
            assert not dialogs, dialogs
    finally:
        os.environ.pop("MYOTOMY_CDS_DATA", None)
