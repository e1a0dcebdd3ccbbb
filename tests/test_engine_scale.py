"""The engine stays correct on a knowledge base ten times the size (many sharded rulesets).

Run in a child process: a fault in durable-rules' C core (one segfaulted in delete_state on this
knowledge base during development) must fail this test, not end the pytest run.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import inputs, synthetic
from models import conditions
from models.loader import load, load_cases
from rules import assess, planner
from rules.engine import Engine
from tests.test_engine import _values_for
from tests.test_plan import check_why_not

ROOT = Path(__file__).resolve().parents[1]


def check_grown_knowledge_base() -> None:
    """Build the 10x knowledge base, compare every firing with the plain reading, run assessments
    (with and without the planner's memos) and check their "why not"."""
    with tempfile.TemporaryDirectory() as tmp:
        grown_dir, before, after = synthetic.grown_copy(Path(tmp) / "grown")
        big = load(grown_dir)
        cases = [case.input for _, case in load_cases(big)]
    assert after >= 10 * before
    engine = Engine(big)
    assert engine.ruleset_count > len(big.presentations), "no presentation was sharded: the test covers less"
    rng = random.Random(7)
    none_fired = 0
    for pid in big.presentations:
        rules = big.rules_for(pid)
        fields = sorted({f for r in rules for f in conditions.fields(big.tests[r.id])})
        for _ in range(40):
            facts = {f: rng.choice(vs) for f in fields if (vs := _values_for(big, f)) and rng.random() < 0.7}
            expected = {r.id for r in rules if conditions.holds(big.tests[r.id], facts)}
            assert set(engine.fire(pid, facts)) == expected, (pid, facts)
            none_fired += not expected
    assert none_fired > 0
    synthetic_fired = 0
    raws = list(inputs.variations(big, cases, 1000, seed=99))
    for raw in raws:
        synthetic_fired += sum(r.startswith("synthetic_") for r in assess(raw, context=(big, engine)).fired_rules)
    assert synthetic_fired > 0, "no synthetic rule fired in 1,000 assessments"
    # the memos (needs kept by failing test bits, unmet words by rule and bits) change nothing here
    # either, where many rules share tests and a bit stands for a test in several rules
    with planner.records_cached(False):
        reference = [assess(raw, context=(big, engine)).model_dump_json() for raw in raws[:300]]
    planner.forget_records(big)
    assert [assess(raw, context=(big, engine)).model_dump_json() for raw in raws[:300]] == reference
    assert check_why_not(big, raws[:300], (big, engine)) > 0
    print("checked", after, "rules in", engine.ruleset_count, "rulesets")


def test_ten_times_the_rules_fire_as_written_without_crashing() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c",
         "from tests.test_engine_scale import check_grown_knowledge_base as c; c()"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    assert "checked" in result.stdout
