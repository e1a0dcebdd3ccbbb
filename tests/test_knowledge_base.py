"""The knowledge base is sourced and consistent; a broken file fails with file, field and reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from rules.knowledge_base import DATA_DIR, KnowledgeBase, KnowledgeBaseError, load

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


def test_every_procedure_and_rule_names_a_known_citation(kb: KnowledgeBase) -> None:
    for proc in kb.procedures.values():
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
    for proc in kb.procedures.values():
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


def _expect(root: Path, file: str, where: str, reason: str) -> None:
    with pytest.raises(KnowledgeBaseError) as info:
        load(root)
    error = info.value
    assert error.file.endswith(file), str(error)
    assert where in error.where, str(error)
    assert reason in error.reason, str(error)


def test_invalid_yaml(broken: Path) -> None:
    (broken / "rules" / "achalasia.yaml").write_text("rules:\n  - id: [unclosed\n", encoding="utf-8")
    _expect(broken, "rules/achalasia.yaml", "line", "invalid YAML")


def test_missing_field(broken: Path) -> None:
    _edit(broken / "rules" / "achalasia.yaml", lambda d: d["rules"][0].pop("statement"))
    _expect(broken, "rules/achalasia.yaml", "rules[0].statement", "Field required")


def test_rule_naming_unknown_procedure(broken: Path) -> None:
    def change(d):
        rule = next(r for r in d["rules"] if r["then"].get("suggest"))
        rule["then"]["suggest"][0]["procedure"] = "poemm"

    _edit(broken / "rules" / "achalasia.yaml", change)
    _expect(broken, "rules/achalasia.yaml", "procedure", "'poemm'")


def test_quote_not_in_source(broken: Path) -> None:
    _edit(broken / "source_caveats.yaml", lambda d: d["caveats"][0].update(quote="Myotomy cures everything."))
    _expect(broken, "source_caveats.yaml", "caveats[0].quote", "not found word for word")


def test_duplicate_id(broken: Path) -> None:
    _edit(broken / "rules" / "achalasia.yaml", lambda d: d["rules"].append(d["rules"][0]))
    _expect(broken, "rules/achalasia.yaml", ".id", "duplicate rule id")


def test_unknown_citation(broken: Path) -> None:
    _edit(broken / "rules" / "achalasia.yaml", lambda d: d["rules"][0].update(citations=["SMITH99"]))
    _expect(broken, "rules/achalasia.yaml", "rules[0].citations[0]", "unknown citation 'SMITH99'")


def test_rule_testing_a_detail_the_presentation_lacks(broken: Path) -> None:
    _edit(broken / "rules" / "achalasia.yaml", lambda d: d["rules"][0]["when"].update(gmfcs_level=3))
    _expect(broken, "rules/achalasia.yaml", "when.gmfcs_level", "not a finding of 'achalasia'")


def test_unknown_operator(broken: Path) -> None:
    _edit(broken / "rules" / "achalasia.yaml", lambda d: d["rules"][0]["when"].update(subtype={"like": "type"}))
    _expect(broken, "rules/achalasia.yaml", "rules[0].when", "unknown operator 'like'")


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
    skip = frozenset({"id", "citations", "procedure", "presentation", "icd10", "version", "source", "urls",
                      "reference", "key", "year", "concerns", "cases"})
    unknown = []
    for path in sorted(DATA_DIR.rglob("*.yaml")):
        if path.name in ("citations.yaml", "cases.yaml"):
            continue
        for item in _strings_and_numbers(yaml.safe_load(path.read_text(encoding="utf-8")), skip):
            numbers = re.findall(r"(?<![\w.])\d+(?:\.\d+)?", item) if isinstance(item, str) else [f"{item:g}"]
            unknown += [(path.name, n) for n in numbers if n not in known]
    assert not unknown, f"figures not in the brief: {unknown[:20]}"
