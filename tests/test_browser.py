"""End to end in a real headless Chromium against `streamlit run` on a free localhost port.

Each test fills the form as a clinician would, submits it and reads the page: a stop flag above
everything else, a do-first step before the treatment it concerns, a "record this" prompt beside
its field and in the plan. Screenshots go to the test's tmp_path (BROWSER_SHOTS=dir keeps them).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser import ROOT, choose, chromium, require_browser, streamlit_server, wait_for_app

RESULTS = "3. The plan and its basis"
IHPS = "Infantile hypertrophic pyloric stenosis"
PYLOROMYOTOMY = "Ramstedt extramucosal pyloromyotomy"
CORRECTION = "Fluid and electrolyte correction (dehydration, hypochloraemic hypokalaemic metabolic alkalosis)"


@pytest.fixture(scope="module")
def server() -> str:
    require_browser()
    with streamlit_server(ROOT / "app.py") as url:
        yield url


def _shot(page: object, tmp_path: Path, name: str) -> None:
    folder = Path(os.environ.get("BROWSER_SHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    assert (folder / f"{name}.png").stat().st_size > 10_000


def _open(browser: object, server: str) -> object:
    page = browser.new_page(viewport={"width": 1400, "height": 2800})
    page.goto(server)
    wait_for_app(page)
    page.get_by_text("Myotomy decision support", exact=True).first.wait_for()
    return page


def _age(page: object, value: str, unit: str = "years") -> None:
    page.get_by_label("Age", exact=True).fill(value)
    page.get_by_label("Age", exact=True).press("Enter")
    wait_for_app(page)
    if unit != "years":
        choose(page, "Unit", unit)
        wait_for_app(page)


def _assess(page: object) -> str:
    page.get_by_role("button", name="Assess").click()
    page.get_by_text(RESULTS, exact=True).wait_for(timeout=60_000)
    page.get_by_text("Download plan (JSON)", exact=True).wait_for(timeout=60_000)  # the end of the page
    wait_for_app(page)
    return page.inner_text("body")


def test_a_stop_flag_stands_above_everything_and_withholds_pyloromyotomy(server: str, tmp_path: Path) -> None:
    with chromium() as browser:
        page = _open(browser, server)
        choose(page, "Presentations", IHPS)
        wait_for_app(page)
        _age(page, "4", "weeks")
        choose(page, "Bilious (green) vomiting", "yes")
        choose(page, "Diagnosis confirmed", "yes")
        body = _assess(page)
        _shot(page, tmp_path, "stop_flag")
        results = body[body.index(RESULTS):]
        stop = "Stop: suggests malrotation or volvulus, a different emergency"
        assert results.index(stop) < results.index("Do first:") < results.index("The plan\n") < results.index("The options")
        assert "urgent upper GI contrast study" in results[: results.index("The plan\n")]  # its urgent work-up with it
        assert "Stopped: no treatment is suggested" in results
        assert f"{PYLOROMYOTOMY} —" not in results  # no card, no step
        assert f"{CORRECTION} — Preferred" in results  # the correction goes on meanwhile
        assert stop in page.locator('[data-testid="stAlertContentError"]').first.inner_text()  # the first error box


def test_a_do_first_flag_puts_the_correction_before_pyloromyotomy(server: str, tmp_path: Path) -> None:
    with chromium() as browser:
        page = _open(browser, server)
        choose(page, "Presentations", IHPS)
        wait_for_app(page)
        _age(page, "4", "weeks")
        choose(page, "Fluids and electrolytes corrected", "no")
        choose(page, "Diagnosis confirmed", "yes")
        body = _assess(page)
        _shot(page, tmp_path, "do_first")
        results = body[body.index(RESULTS):]
        assert results.index("Do first: pyloric stenosis before fluid and electrolyte correction") < results.index("The plan\n")
        box = results[results.index("The plan\n"): results.index("The options")]
        assert box.index("1. Check or correct first") < box.index(CORRECTION) < box.index("2. ") < box.index(PYLOROMYOTOMY)
        assert "After: pyloric stenosis before fluid and electrolyte correction is addressed" in results
        assert "Stop:" not in results


def test_a_missing_detail_that_decides_is_asked_for_beside_its_field_and_in_the_plan(server: str, tmp_path: Path) -> None:
    from rules import assess

    plan = assess({"age": {"value": 45}, "conditions": [
        {"presentation": "achalasia", "diagnosis_confirmed": True, "malignancy_excluded": True}]})
    subtype = next(n for n in plan.needs if n.detail == "subtype")
    with chromium() as browser:
        page = _open(browser, server)
        choose(page, "Presentations", "Oesophageal achalasia")
        wait_for_app(page)
        _age(page, "45")
        choose(page, "Diagnosis confirmed", "yes")
        choose(page, "Malignancy excluded", "yes")
        body = _assess(page)
        _shot(page, tmp_path, "needs")
        prompt = f"Record Subtype: it decides between {subtype.decides_names[0]}"
        form, results = body[: body.index(RESULTS)], body[body.index(RESULTS):]
        assert prompt in form  # under the Subtype field
        caption = page.locator('[data-testid="stCaptionContainer"]').filter(has_text=prompt).first
        subtype_box = page.locator('[data-testid="stSelectbox"]').filter(has=page.get_by_text("Subtype", exact=True)).first
        assert caption.bounding_box()["y"] > subtype_box.bounding_box()["y"]
        assert "What would change the plan" in results and prompt in results
        for need in plan.needs:
            assert f"Record {need.label}:" in results


def _expected_text(case_input: dict) -> list[str]:
    """What a page must show for a case: each standing flag and each offered option with its strength."""
    from rules import assess
    from webapp.words import SEVERITY_WORDS, strength

    plan = assess(case_input)
    return [f"{SEVERITY_WORDS[f.severity]}: {f.meaning}" for f in plan.standing_flags] + [
        f"{o.name} — {strength(o.strength)}" for o in plan.options if o.strength != "not_indicated"
    ]


def test_five_sessions_submitting_at_once_each_see_their_own_answer(server: str) -> None:
    from models.loader import load_cases

    cases = [case for _, case in load_cases()]
    # five cases whose answers differ, so that a crossed answer cannot pass
    chosen, seen = [], set()
    for case in cases:
        key = tuple(_expected_text(case.input))
        if key not in seen and any(" — " in t for t in key):
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
            page.get_by_text("Download plan (JSON)", exact=True).wait_for(timeout=90_000)
            wait_for_app(page)
            body = page.inner_text("body")
            for text in _expected_text(case.input):
                assert text in body, f"{case.id}: '{text}' missing from its page"
            others = {t for c in chosen if c is not case for t in _expected_text(c.input)} - set(_expected_text(case.input))
            option_lines = {t for t in others if " — " in t}
            assert not any(t in body for t in option_lines), f"{case.id}: shows another session's answer"


PAYLOADS = ["<img src=x onerror=alert(1)>", "<script>alert(2)</script>"]


def test_markup_in_a_teaching_case_is_shown_as_text_and_never_runs(tmp_path: Path) -> None:
    """A teaching case carrying HTML: the page shows it literally, no element is created, no dialog opens."""
    import shutil

    import yaml

    require_browser()
    data = tmp_path / "data"
    shutil.copytree(ROOT / "data", data)
    cases_file = data / "presentations" / "achalasia" / "cases.yaml"
    cases = yaml.safe_load(cases_file.read_text(encoding="utf-8"))
    hostile = dict(cases["cases"][0], id="hostile_markup_case", title=f"Markup {PAYLOADS[0]}",
                   teaching_point=f"Point {PAYLOADS[1]} and {PAYLOADS[0]} :red[styled]")
    cases["cases"].append(hostile)
    cases_file.write_text(yaml.safe_dump(cases, sort_keys=False), encoding="utf-8")
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
            page.get_by_text("Download plan (JSON)", exact=True).wait_for(timeout=60_000)
            body = page.inner_text("body")
            assert PAYLOADS[0] in body and PAYLOADS[1] in body  # shown as text
            assert ":red[styled]" in body  # Streamlit's own markup is not applied either
            assert page.locator("img[src='x']").count() == 0
            assert page.locator("script:text('alert(2)')").count() == 0
            page.wait_for_timeout(500)
            assert not dialogs, dialogs
    finally:
        os.environ.pop("MYOTOMY_CDS_DATA", None)
