"""Golden plans: every teaching case's plan, as JSON, hashed and compared with tests/fixtures/plan_hashes.json.

Performance work changes how a plan is built, never what it says: this catches a change to the
bytes of any teaching case's plan that the memo-free comparison in tests/test_plan.py cannot (both
paths share most of the planner). The hashes belong to one knowledge base (its content hash); when
the knowledge files change, the test fails until the hashes are written again, so that nobody
changes plans without seeing it (`myotomy-cds kb diff` lists what changed). After an intended
change of the knowledge or the planner's output, write them again with

    .venv/bin/python -m tests.test_plan_golden --update
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from models.loader import KnowledgeBase, load_cases
from rules import assess, default_context
from rules.batch import plan_json

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "plan_hashes.json"


def plan_hashes(kb: KnowledgeBase) -> dict[str, str]:
    context = default_context()
    return {
        case.id: hashlib.sha256(plan_json(assess(case.input, context=context))).hexdigest()
        for _, case in load_cases(kb)
    }


def test_teaching_case_plans_match_the_golden_hashes(kb: KnowledgeBase) -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert golden["content_hash"] == kb.content_hash, (
        "the knowledge files changed since the golden hashes were written: check the changed plans with "
        "`myotomy-cds kb diff`, then write the hashes again with `.venv/bin/python -m tests.test_plan_golden --update`"
    )
    found = plan_hashes(kb)
    changed = sorted(cid for cid in found if golden["plans"].get(cid) != found[cid])
    assert not changed, f"plans changed for {len(changed)} teaching case(s), e.g. {changed[:5]}; see the module doc"
    assert set(found) == set(golden["plans"])


def main(argv: list[str]) -> int:
    if argv != ["--update"]:
        print(__doc__)
        return 2
    kb = default_context()[0]
    body = {"content_hash": kb.content_hash, "plans": plan_hashes(kb)}
    GOLDEN.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN} ({len(body['plans'])} plans)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
