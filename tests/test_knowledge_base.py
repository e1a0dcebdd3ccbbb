"""The knowledge base is sourced and consistent; a broken file fails with file, line, id and reason,
every mistake at once, with "did you mean" for a near miss."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from models.loader import DATA_DIR, KnowledgeBase, KnowledgeBaseError, load, load_with_cases

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"  # beside the clone, as in CI


def test_every_source_quote_occurs_word_for_word(kb: KnowledgeBase) -> None:
    assert kb.source_caveats, "no source-document caveats"
    for caveat in kb.source_caveats:
        text = (DATA_DIR / "sources" / caveat.source).read_text(encoding="utf-8")
        assert caveat.quote in text, f"{caveat.id}: quote not in {caveat.source}"


def test_source_documents_are_the_shared_seeds() -> None:
    seeds = SHARED / "seeds"
    if not seeds.is_dir():
        pytest.skip(f"shared/seeds not beside the repository ({seeds}); data/sources is checked by the quote test")
    for seed in seeds.glob("*.txt"):
        assert (DATA_DIR / "sources" / seed.name).read_bytes() == seed.read_bytes(), seed.name


def test_every_option_and_rule_names_a_known_citation(kb: KnowledgeBase) -> None:
    for proc in kb.options.values():
        assert proc.citations and set(proc.citations) <= set(kb.citations), proc.id
    for rule in kb.rules:
        assert rule.citations and set(rule.citations) <= set(kb.citations), rule.id


def test_citations_are_the_brief_references_verbatim(kb: KnowledgeBase) -> None:
    brief = SHARED / "clinical-brief.md"
    if not brief.is_file():
        pytest.skip(f"shared/clinical-brief.md not beside the repository ({brief})")
    text = brief.read_text(encoding="utf-8")
    for citation in kb.citations.values():
        if citation.verified:
            continue  # not in the brief: its `verified` note says how it was checked
        assert f"[{citation.key}]" in text, citation.key
        assert citation.reference in text, f"{citation.key}: reference text is not verbatim from the brief"


def test_myotomy_procedures_have_target_and_approach(kb: KnowledgeBase) -> None:
    for proc in kb.options.values():
        if proc.procedure_class in ("myotomy", "myectomy", "lengthening"):
            assert proc.target_muscle and proc.approaches, proc.id


def test_every_presentation_has_rules(kb: KnowledgeBase) -> None:
    empty = [pid for pid in kb.presentations if not kb.rules_for(pid)]
    assert not empty, f"presentations without rules: {empty}"


def test_version_and_hash(kb: KnowledgeBase) -> None:
    assert kb.version and len(kb.content_hash) == 64


# --- broken knowledge bases: each fails at load with the file, the field and the reason ---


@pytest.fixture()
def broken(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(DATA_DIR, root)
    return root


def _edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


ACHALASIA_RULES = "presentations/achalasia/rules.yaml"


def _expect(root: Path, file: str, where: str, reason: str) -> None:
    with pytest.raises(KnowledgeBaseError) as info:
        load(root)
    error = info.value
    assert error.file.endswith(file), str(error)
    assert where in error.where, str(error)
    assert reason in error.reason, str(error)


def _problems(root: Path) -> list:
    """Every problem of the knowledge files and the teaching cases, loaded together."""
    with pytest.raises(KnowledgeBaseError) as info:
        load_with_cases(root)
    return info.value.problems


def _line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1) if text in line)


def test_invalid_yaml(broken: Path) -> None:
    (broken / ACHALASIA_RULES).write_text("rules:\n  - id: [unclosed\n", encoding="utf-8")
    _expect(broken, ACHALASIA_RULES, "", "invalid YAML")


def test_missing_field(broken: Path) -> None:
    _edit(broken / ACHALASIA_RULES, lambda d: d["rules"][0].pop("statement"))
    _expect(broken, ACHALASIA_RULES, "rule achalasia_diagnosis_not_confirmed_needs_manometry: statement", "required field missing")


def test_rule_naming_an_option_the_presentation_lacks(broken: Path) -> None:
    def change(d):
        rule = next(r for r in d["rules"] if r["id"] == "achalasia_type_iii_prefers_poem")
        rule["then"]["options"][0]["option"] = "poemm"

    _edit(broken / ACHALASIA_RULES, change)
    _expect(broken, ACHALASIA_RULES, "rule achalasia_type_iii_prefers_poem", "'poemm' is not an option of 'achalasia' (did you mean 'poem'?)")


def test_quote_not_in_source(broken: Path) -> None:
    _edit(broken / "source_caveats.yaml", lambda d: d["caveats"][0].update(quote="Myotomy cures everything."))
    _expect(broken, "source_caveats.yaml", "caveat", "not found word for word")


def test_duplicate_id(broken: Path) -> None:
    _edit(broken / ACHALASIA_RULES, lambda d: d["rules"].append(d["rules"][0]))
    _expect(broken, ACHALASIA_RULES, "rules[", "duplicate rule id")


def test_unknown_citation(broken: Path) -> None:
    _edit(broken / ACHALASIA_RULES, lambda d: d["rules"][0].update(citations=["SMITH99"]))
    _expect(broken, ACHALASIA_RULES, "rule achalasia_diagnosis_not_confirmed_needs_manometry", "unknown citation 'SMITH99'")


def test_rule_testing_a_detail_the_presentation_lacks(broken: Path) -> None:
    _edit(broken / ACHALASIA_RULES, lambda d: d["rules"][0]["when"].update(gmfcs_level=3))
    _expect(broken, ACHALASIA_RULES, "rule achalasia_diagnosis_not_confirmed_needs_manometry", "'gmfcs_level' is not a detail")


def test_unknown_operator(broken: Path) -> None:
    _edit(broken / ACHALASIA_RULES, lambda d: d["rules"][0]["when"].update(subtype={"like": "type"}))
    _expect(broken, ACHALASIA_RULES, "rule achalasia_diagnosis_not_confirmed_needs_manometry", "unknown operator 'like'")


# --- the knowledge engineer's usual slips, edited as text so that the lines are the engineer's own ---

STRABISMUS_RULES = "presentations/strabismus/rules.yaml"
STRABISMUS_CASES = "presentations/strabismus/cases.yaml"


def _misspell_rule_value(root: Path) -> int:
    """`amblyopia: untreated` -> `amblyopia: treatd` in a rule condition; returns its line."""
    path = root / STRABISMUS_RULES
    path.write_text(path.read_text(encoding="utf-8").replace("    amblyopia: untreated\n", "    amblyopia: treatd\n", 1), encoding="utf-8")
    return _line_of(path, "amblyopia: treatd")


def _misspell_case_option(root: Path) -> int:
    """The first `not_offered: [rectus_recession]` of the strabismus cases -> `rectus_recesion`."""
    path = root / STRABISMUS_CASES
    text = path.read_text(encoding="utf-8")
    at = text.index("    - rectus_recession\n", text.index("not_offered:"))
    path.write_text(text[:at] + "    - rectus_recesion\n" + text[at + len("    - rectus_recession\n"):], encoding="utf-8")
    return _line_of(path, "- rectus_recesion")


def test_misspelt_choice_in_a_rule_names_file_line_rule_and_the_right_word(broken: Path) -> None:
    line = _misspell_rule_value(broken)
    [problem] = _problems(broken)
    assert problem.file == f"data/{STRABISMUS_RULES}" and problem.line == line, str(problem)
    assert problem.where == "rule strabismus_amblyopia_untreated_discuss_timing", str(problem)
    assert "'treatd'" in problem.reason and "did you mean 'treated'" in problem.reason, str(problem)
    assert str(problem).startswith(f"data/{STRABISMUS_RULES}:{line}: rule strabismus_amblyopia_untreated_discuss_timing: ")


def test_misspelt_option_in_a_case_gets_did_you_mean(broken: Path) -> None:
    line = _misspell_case_option(broken)
    [problem] = _problems(broken)
    assert problem.file == f"data/{STRABISMUS_CASES}" and problem.line == line, str(problem)
    assert problem.where.startswith("case strabismus_"), str(problem)
    assert "'rectus_recesion'" in problem.reason and "did you mean 'rectus_recession'" in problem.reason, str(problem)


def test_mistakes_in_a_rule_file_and_a_case_file_are_reported_at_once(broken: Path) -> None:
    rule_line = _misspell_rule_value(broken)
    case_line = _misspell_case_option(broken)
    problems = _problems(broken)
    assert [(p.file, p.line) for p in problems] == [
        (f"data/{STRABISMUS_RULES}", rule_line),
        (f"data/{STRABISMUS_CASES}", case_line),
    ], "\n".join(map(str, problems))


def test_misspelt_field_in_a_case_is_one_problem(broken: Path) -> None:
    path = broken / "presentations/achalasia/cases.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("  expect:\n", "  expct:\n", 1), encoding="utf-8")
    [problem] = _problems(broken)
    assert problem.line == _line_of(path, "expct:"), str(problem)
    assert problem.where == "case achalasia_type_iii_poem_preferred: expct", str(problem)
    assert problem.reason == "unknown field (did you mean 'expect'?)", str(problem)


def test_misspelt_optional_field_in_a_case_is_one_problem(broken: Path) -> None:
    path = broken / STRABISMUS_CASES
    path.write_text(path.read_text(encoding="utf-8").replace("    not_offered:\n", "    not_ofered:\n", 1), encoding="utf-8")
    [problem] = _problems(broken)
    assert problem.line == _line_of(path, "not_ofered:") and "unknown field" in problem.reason, str(problem)


def _strings_and_numbers(node, skip: frozenset[str]):
    if isinstance(node, dict):
        for key, value in node.items():
            if key not in skip:
                yield from _strings_and_numbers(value, skip)
    elif isinstance(node, list):
        for value in node:
            yield from _strings_and_numbers(value, skip)
    elif isinstance(node, (str, int, float)) and not isinstance(node, bool):
        yield node


def test_no_figure_or_threshold_the_brief_does_not_give() -> None:
    """Every number in the knowledge text and in rule thresholds occurs in the clinical brief.

    A weak guard (a number can occur in the brief for another reason), but an invented figure such
    as a success rate or a cut-off fails it.
    """
    import re

    brief = SHARED / "clinical-brief.md"
    if not brief.is_file():
        pytest.skip(f"shared/clinical-brief.md not beside the repository ({brief})")
    known = set(re.findall(r"\d+(?:\.\d+)?", brief.read_text(encoding="utf-8")))
    # min and max of a detail bound what the form accepts (plausibility), they are not clinical figures;
    # codes are identifiers, each with its source (tests/test_terminology.py, test_observations.py, test_service_orders.py)
    skip = frozenset({"id", "citations", "procedure", "presentation", "codes", "version", "source", "urls",
                      "reference", "key", "year", "concerns", "cases", "min", "max",
                      "snomed_procedures", "loinc"})
    unknown = []
    for path in sorted(DATA_DIR.rglob("*.yaml")):
        if path.name in ("citations.yaml", "cases.yaml", "rule_versions.yaml"):
            continue
        for item in _strings_and_numbers(yaml.safe_load(path.read_text(encoding="utf-8")), skip):
            numbers = re.findall(r"(?<![\w.])\d+(?:\.\d+)?", item) if isinstance(item, str) else [f"{item:g}"]
            unknown += [(path.name, n) for n in numbers if n not in known]
    assert not unknown, f"figures not in the brief: {unknown[:20]}"


def test_if_not_recorded_names_a_known_detail_and_a_flag_of_the_same_severity(broken: Path) -> None:
    def change(data: dict) -> None:
        flag = next(f for f in data["red_flags"] if f["id"] == "no_conservative_trial")
        flag["if_not_recorded"] = {"detail": "conservative_cares", "flag": "possible_pseudoachalasia"}

    _edit(broken / "vocabulary/brief.yaml", change)
    reasons = [p.reason for p in _problems(broken)]
    assert any("unknown detail 'conservative_cares'" in r for r in reasons), reasons
    assert any("'possible_pseudoachalasia' is not a red flag of the same severity" in r for r in reasons), reasons
