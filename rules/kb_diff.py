"""`myotomy-cds kb diff REV [REV2]`: what a change of the knowledge does to every teaching case.

The data/ folder at REV (and at REV2, or the working tree) is loaded as its own knowledge base with
its own engine; every teaching case of either side (by id) is assessed with both, and each case
whose plan differs is listed with what changed: options added or removed, strengths, flags raised,
cleared or removed, whether the plan stops, the details it asks for. A reviewer sees the clinical
effect of a rule change before it is merged, not only the YAML that changed.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from models.knowledge import TeachingCase
from models.loader import DATA_DIR, KnowledgeBase, load_with_cases
from models.plan import Plan
from models.problems import KnowledgeBaseError
from rules.engine import Engine
from rules.json_input import UsageError
from rules.planner import InputError, assess

WORKING_TREE = "the working tree"


@dataclass
class Side:
    """One knowledge base to compare: its label, knowledge, engine and teaching cases by id."""

    label: str
    kb: KnowledgeBase
    engine: Engine
    cases: dict[str, tuple[str, TeachingCase]]

    def assess(self, raw: dict[str, Any]) -> Plan | str:
        try:
            return assess(raw, context=(self.kb, self.engine))
        except InputError as error:
            return f"invalid input: {error}"


def _git(top: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(top), *args], capture_output=True, timeout=120)


def _repository(data: Path) -> tuple[Path, str]:
    """The git work tree holding `data` and the data folder's path inside it."""
    found = _git(data, "rev-parse", "--show-toplevel") if data.is_dir() else None
    if found is None or found.returncode != 0:
        raise UsageError(f"{data} is not inside a git repository; kb diff compares git revisions")
    top = Path(found.stdout.decode().strip())
    return top, data.resolve().relative_to(top.resolve()).as_posix()


def knowledge_at(rev: str, data: Path, into: Path) -> Path:
    """Extract the data folder as it is at `rev` into `into`; returns the extracted data folder."""
    top, rel = _repository(data)
    if _git(top, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").returncode != 0:
        raise UsageError(f"{rev!r} is not a revision of {top}")
    archive = _git(top, "archive", "--format=tar", rev, "--", rel)
    if archive.returncode != 0:
        raise UsageError(f"{rev} has no {rel}/ folder: {archive.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    root = into / rel
    folders = root / "presentations"
    if not folders.is_dir() or not any((d / "presentation.yaml").is_file() for d in folders.iterdir() if d.is_dir()):
        raise UsageError(
            f"the knowledge at {rev} is in the old format (no {rel}/presentations/<id>/ folders with a "
            "presentation.yaml): kb diff compares revisions of the presentation-folder layout only"
        )
    return root


def side(label: str, root: Path) -> Side:
    try:
        kb, cases = load_with_cases(root)
    except KnowledgeBaseError as error:
        lines = "\n  ".join(str(p) for p in error.problems)
        raise UsageError(f"the knowledge at {label} does not load ({len(error.problems)} problems):\n  {lines}") from None
    return Side(label, kb, Engine(kb), {case.id: (file, case) for file, case in cases})


def _view(plan: Plan) -> dict[str, Any]:
    """What a change is reported on, keyed by (presentation, id)."""
    return {
        "options": {(o.presentation, o.id): o.strength for o in plan.options},
        "flags": {(f.presentation, f.id): f.status for f in plan.flags},
        "stopped": plan.stopped,
        "needs": {(n.presentation, n.detail) for n in plan.needs},
    }


@dataclass
class Change:
    kind: str  # the counter the summary adds it to
    text: str


def _name(key: tuple[str, str], several: bool) -> str:
    return f"{key[1]} ({key[0]})" if several else key[1]


def compare(before: Plan | str, after: Plan | str, several: bool) -> list[Change]:
    """Every difference between the plan before and after, in words."""
    if isinstance(before, str) or isinstance(after, str):
        if before == after:
            return []
        was = before if isinstance(before, str) else "a plan"
        now = after if isinstance(after, str) else "a plan"
        return [Change("input", f"was {was}; now {now}")]
    b, a = _view(before), _view(after)
    changes = []
    for key in [*b["options"], *(k for k in a["options"] if k not in b["options"])]:
        old, new = b["options"].get(key), a["options"].get(key)
        name = _name(key, several)
        if old is None:
            changes.append(Change("option added", f"option {name} added ({new})"))
        elif new is None:
            changes.append(Change("option removed", f"option {name} removed (was {old})"))
        elif old != new:
            changes.append(Change("strength changed", f"option {name}: {old} → {new}"))
    for key in [*b["flags"], *(k for k in a["flags"] if k not in b["flags"])]:
        old, new = b["flags"].get(key), a["flags"].get(key)
        name = _name(key, several)
        if old == new:
            continue
        if old is None:
            changes.append(Change("flag raised", f"flag {name} raised" + (" (and cleared)" if new == "cleared" else "")))
        elif new is None:
            changes.append(Change("flag removed", f"flag {name} removed (was {old})"))
        elif new == "cleared":
            changes.append(Change("flag cleared", f"flag {name} cleared"))
        else:
            changes.append(Change("flag raised", f"flag {name} stands again (was cleared)"))
    if b["stopped"] != a["stopped"]:
        changes.append(Change("stopped changed", f"stopped: {_yes(b['stopped'])} → {_yes(a['stopped'])}"))
    for key in sorted(a["needs"] - b["needs"]):
        changes.append(Change("needs changed", f"now asks for {_name(key, several)}"))
    for key in sorted(b["needs"] - a["needs"]):
        changes.append(Change("needs changed", f"no longer asks for {_name(key, several)}"))
    return changes


def _yes(value: bool) -> str:
    return "yes" if value else "no"


@dataclass
class Report:
    cases: int = 0
    changed: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # case id -> (file, lines)
    counts: Counter[str] = field(default_factory=Counter)


def diff(old: Side, new: Side) -> Report:
    report = Report()
    for case_id in sorted(old.cases.keys() | new.cases.keys()):
        file, case = new.cases.get(case_id) or old.cases[case_id]
        notes = []
        if case_id not in old.cases:
            notes.append(f"case only in {new.label}")
        elif case_id not in new.cases:
            notes.append(f"case only in {old.label}")
        elif old.cases[case_id][1].input != case.input:
            notes.append(f"input differs between the two; both assessed with the input of {new.label}")
        several = len(case.input.get("conditions", ())) > 1
        changes = compare(old.assess(case.input), new.assess(case.input), several)
        report.cases += 1
        if changes:
            report.counts.update(c.kind for c in changes)
            report.changed[case_id] = (file, [*notes, *(c.text for c in changes)])
    return report


def write(report: Report, old: Side, new: Side, out: IO[str]) -> None:
    print(f"kb diff: {_stamp(old)} → {_stamp(new)}", file=out)
    for case_id, (file, lines) in report.changed.items():
        print(f"{case_id} ({file})", file=out)
        for line in lines:
            print(f"  {line}", file=out)
    counts = ", ".join(f"{kind}: {n}" for kind, n in sorted(report.counts.items()))
    print(f"{len(report.changed)} of {report.cases} teaching cases changed" + (f" ({counts})" if counts else ""), file=out)


def _stamp(s: Side) -> str:
    return f"{s.label} (knowledge base {s.kb.version}, {s.kb.content_hash[:12]})"


def run(rev: str, rev2: str | None = None, data: Path | None = None, out: IO[str] | None = None) -> int:
    """Compare the knowledge at `rev` with `rev2` (default: the working tree's data folder)."""
    data = Path(data or DATA_DIR)
    with tempfile.TemporaryDirectory(prefix="kb-diff-") as tmp:
        old = side(rev, knowledge_at(rev, data, Path(tmp) / "old"))
        new = side(rev2, knowledge_at(rev2, data, Path(tmp) / "new")) if rev2 else side(WORKING_TREE, data)
        write(diff(old, new), old, new, out or sys.stdout)
    return 0
