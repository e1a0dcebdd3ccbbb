"""The knowledge engineer's tools: the rule-version lock (`kb check`, `kb lock`), `kb diff` between
git revisions, and the JSON Schemas of the knowledge files (`kb schema`)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from models.loader import DATA_DIR, load, load_cases
from rules import kb_check, kb_diff, rule_versions
from rules.json_input import UsageError
from rules.schemas import KNOWLEDGE_FILES, knowledge_schemas

ROOT = Path(__file__).resolve().parent.parent
ACHALASIA_RULES = Path("presentations") / "achalasia" / "rules.yaml"
# The statement of achalasia_type_iii_prefers_poem begins with these words.
TYPE_III_STATEMENT = "In type III (spastic) achalasia, tailored POEM"


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    root = tmp_path / "repo" / "data"
    shutil.copytree(DATA_DIR, root)
    return root


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) >= 1, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _version_line(path: Path, rule_id: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"- id: {rule_id}")
    return next(n for n in range(start, len(lines)) if lines[n].strip().startswith("version:")) + 1


# --- the rule-version lock ---


def test_the_committed_lock_matches_every_rule() -> None:
    assert rule_versions.check(load()) == []


def _version(path: Path, rule_id: str) -> int:
    line = path.read_text(encoding="utf-8").splitlines()[_version_line(path, rule_id) - 1]
    return int(line.split(":")[1])


def test_a_rule_changed_under_the_same_version_is_refused(data: Path) -> None:
    version = _version(data / ACHALASIA_RULES, "achalasia_type_iii_prefers_poem")
    _replace(data / ACHALASIA_RULES, TYPE_III_STATEMENT, "In type III (spastic) achalasia, a tailored POEM")
    [problem] = rule_versions.check(load(data))
    assert str(problem) == (
        f"data/{ACHALASIA_RULES.as_posix()}:{_version_line(data / ACHALASIA_RULES, 'achalasia_type_iii_prefers_poem')}: "
        f"rule achalasia_type_iii_prefers_poem changed but its version is still {version}: bump it"
    )
    err = io.StringIO()
    assert kb_check.check(data, out=io.StringIO(), err=err) == 2
    assert f"changed but its version is still {version}: bump it" in err.getvalue()
    lock_before = (data / "rule_versions.yaml").read_bytes()
    err = io.StringIO()
    assert kb_check.lock(data, out=io.StringIO(), err=err) == 2  # `kb lock` does not paper over it
    assert "bump it" in err.getvalue() and (data / "rule_versions.yaml").read_bytes() == lock_before


def test_after_a_bump_the_lock_is_rewritten_and_check_passes(data: Path) -> None:
    path = data / ACHALASIA_RULES
    _replace(path, TYPE_III_STATEMENT, "In type III (spastic) achalasia, a tailored POEM")
    line = _version_line(path, "achalasia_type_iii_prefers_poem")
    version = _version(path, "achalasia_type_iii_prefers_poem")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[line - 1] = f"  version: {version + 1}\n"
    path.write_text("".join(lines), encoding="utf-8")
    [problem] = rule_versions.check(load(data))
    assert f"is at version {version + 1}, the lock says {version}: run `myotomy-cds kb lock`" in problem.reason
    assert kb_check.lock(data, out=io.StringIO(), err=io.StringIO()) == 0
    assert rule_versions.check(load(data)) == []
    out = io.StringIO()
    assert kb_check.check(data, out=out, err=io.StringIO()) == 0, out.getvalue()


def test_a_version_bump_alone_does_not_change_the_content_hash() -> None:
    rule = load().rules[0]
    assert rule_versions.rule_hash(rule) == rule_versions.rule_hash(rule.model_copy(update={"version": rule.version + 1}))
    assert rule_versions.rule_hash(rule) != rule_versions.rule_hash(rule.model_copy(update={"statement": rule.statement + "!"}))


# --- kb diff ---


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), "-c", "user.name=test", "-c", "user.email=test@example.org",
                           "-c", "commit.gpgsign=false", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _commit_all(repo: Path, message: str) -> None:
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)


@pytest.fixture()
def repo(data: Path) -> Path:
    """A git repository holding a copy of data/, committed."""
    repo = data.parent
    _git(repo, "init", "-q")
    _commit_all(repo, "knowledge as it is")
    return repo


def _raise_pseudoachalasia_age(data: Path) -> None:
    """achalasia_features_of_pseudoachalasia: `age_years: {gte: 60}` -> 75."""
    path = data / ACHALASIA_RULES
    text = path.read_text(encoding="utf-8")
    block = "    any_of:\n    - age_years:\n        gte: 60\n    - symptom_duration_months:\n"
    assert text.count(block) == 1
    path.write_text(text.replace(block, block.replace("gte: 60", "gte: 75")), encoding="utf-8")


# Determined by reading the cases: of the achalasia cases (the only ones the rule reads), the rule
# holds on age alone where the age is 60 to 74 and no short history, rapid weight loss or hard GEJ is
# recorded: achalasia_type_iii_on_opioids (60), achalasia_type_iii_with_reflux_still_poem (63, 48
# months) and achalasia_type_ii_unfit_no_dilation (70, 48 months). Each flag was raised and cleared
# (malignancy excluded); at 75 it is not raised at all. achalasia_older_patient_weight_loss (72) has
# rapid weight loss and a 4-month history, so the rule still holds; every other case is under 60.
# achalasia_older_long_history_features_blank_stays_stopped (70, 24 months, weight loss and GEJ passage
# blank) keeps the flag standing at 60 (a blank is not an absence); at 75 the flag is not raised, so its
# options return and it is no longer stopped.
CHANGED_BY_THE_AGE_THRESHOLD = {
    "achalasia_type_iii_on_opioids", "achalasia_type_iii_with_reflux_still_poem", "achalasia_type_ii_unfit_no_dilation",
    "achalasia_older_long_history_features_blank_stays_stopped",
}


def test_diff_against_the_working_tree_reports_exactly_the_cases_the_change_affects(repo: Path) -> None:
    data = repo / "data"
    _raise_pseudoachalasia_age(data)
    old = kb_diff.side("HEAD", kb_diff.knowledge_at("HEAD", data, repo.parent / "old"))
    new = kb_diff.side(kb_diff.WORKING_TREE, data)
    report = kb_diff.diff(old, new)
    assert set(report.changed) == CHANGED_BY_THE_AGE_THRESHOLD
    assert report.cases == len(load_cases(root=DATA_DIR))
    file, lines = report.changed["achalasia_type_iii_on_opioids"]
    assert file == "data/presentations/achalasia/cases.yaml"
    assert lines == ["flag possible_pseudoachalasia removed (was cleared)"]


def test_kb_diff_between_two_revisions_prints_the_changes_and_a_summary(repo: Path) -> None:
    data = repo / "data"
    _raise_pseudoachalasia_age(data)
    _commit_all(repo, "pseudoachalasia from 75")
    out = io.StringIO()
    assert kb_diff.run("HEAD~1", "HEAD", data=data, out=out) == 0
    text = out.getvalue()
    assert text.splitlines()[0].startswith("kb diff: HEAD~1 (knowledge base ")
    assert "achalasia_type_iii_on_opioids (data/presentations/achalasia/cases.yaml)\n" \
           "  flag possible_pseudoachalasia removed (was cleared)\n" in text
    assert text.splitlines()[-1] == (
        f"4 of {len(load_cases(root=DATA_DIR))} teaching cases changed "
        "(flag removed: 4, needs changed: 4, option added: 3, stopped changed: 1)"
    )


def test_kb_diff_reports_a_strength_change(repo: Path) -> None:
    """POEM no longer preferred in type III achalasia. By reading the cases: the rule holds in the type
    III cases with the diagnosis confirmed. Where it made POEM preferred (type_iii_poem_preferred,
    type_iii_on_opioids, type_iii_failed_dilation_poem_still_preferred) POEM drops to alternative, and
    reflux or hiatal hernia, unrecorded there, now decides between POEM and Heller, so it is asked for; in type_iii_unfit a caution already kept
    POEM off the top rank, so only the question is new; type_iii_with_reflux_still_poem records
    reflux, so its own rule keeps POEM preferred."""
    data = repo / "data"
    path = data / ACHALASIA_RULES
    text = path.read_text(encoding="utf-8")
    at = text.index("- id: achalasia_type_iii_prefers_poem")
    head, rest = text[:at], text[at:]
    path.write_text(head + rest.replace("    - option: poem\n      strength: preferred\n", "    - option: poem\n      strength: alternative\n", 1), encoding="utf-8")
    old = kb_diff.side("HEAD", kb_diff.knowledge_at("HEAD", data, repo.parent / "old"))
    report = kb_diff.diff(old, kb_diff.side(kb_diff.WORKING_TREE, data))
    asks = "now asks for reflux_or_hiatal_hernia"
    assert {case: lines for case, (_, lines) in report.changed.items()} == {
        "achalasia_type_iii_poem_preferred": ["option poem: preferred → alternative", asks],
        "achalasia_type_iii_on_opioids": ["option poem: preferred → alternative", asks],
        "achalasia_type_iii_unfit": [asks],
        "achalasia_type_iii_failed_dilation_poem_still_preferred": ["option poem: preferred → alternative", asks],
    }


def test_kb_diff_on_an_old_layout_says_so(tmp_path: Path) -> None:
    repo = tmp_path / "old"
    (repo / "data" / "rules").mkdir(parents=True)
    (repo / "data" / "rules" / "achalasia.yaml").write_text("rules: []\n", encoding="utf-8")
    (repo / "data" / "presentations").mkdir()
    (repo / "data" / "presentations" / "achalasia.yaml").write_text("presentations: []\n", encoding="utf-8")
    _git(repo, "init", "-q")
    _commit_all(repo, "old layout")
    with pytest.raises(UsageError, match="old format .*presentations/<id>/"):
        kb_diff.knowledge_at("HEAD", repo / "data", tmp_path / "x")


def test_kb_diff_command_exits_2_with_a_message_for_an_unknown_revision(repo: Path) -> None:
    import os
    import sys

    done = subprocess.run([sys.executable, "-m", "rules.cli", "kb", "diff", "no-such-rev"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "MYOTOMY_CDS_DATA": str(repo / "data")}, cwd=ROOT)
    assert done.returncode == 2 and "'no-such-rev' is not a revision" in done.stderr and "Traceback" not in done.stderr


# --- JSON Schemas of the knowledge files ---


def test_committed_schemas_are_what_kb_schema_generates() -> None:
    folder = ROOT / "docs" / "schema"
    generated = knowledge_schemas()
    assert sorted(p.name for p in folder.glob("*.json")) == sorted(generated)
    for name, text in generated.items():
        assert (folder / name).read_text(encoding="utf-8") == text, f"{name} is stale: run `myotomy-cds kb schema docs/schema`"


def test_every_knowledge_file_validates_against_its_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    for name, text in knowledge_schemas().items():
        validator = jsonschema.Draft202012Validator(json.loads(text))
        pattern = KNOWLEDGE_FILES[name][1].removeprefix("data/").replace("<id>", "*")
        paths = sorted(DATA_DIR.glob(pattern))
        assert paths, pattern
        for path in paths:
            errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text(encoding="utf-8")))]
            assert not errors, f"{path}: {errors[:3]}"


def test_kb_schema_writes_the_files(tmp_path: Path) -> None:
    import sys

    done = subprocess.run([sys.executable, "-m", "rules.cli", "kb", "schema", str(tmp_path)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(KNOWLEDGE_FILES)
