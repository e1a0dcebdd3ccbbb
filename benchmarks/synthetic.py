"""A temporary copy of data/ with ten times as many rules, for the rule-base growth benchmark.

A rule base grows by refinement: each synthetic rule is a real rule of the same presentation with
its numeric thresholds moved by up to a fifth and one more finding of that presentation required
(a value drawn from the finding's own choices), and the real rule's effects and citations. The
copy passes the loader, and the new rules fire on the same kinds of input as the real ones, less
often. Written only under a temporary directory, never into the repository: not clinical knowledge.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import yaml

from benchmarks.inputs import detail_domain
from rules.conditions import ANY_OF
from rules.knowledge_base import DATA_DIR, KnowledgeBase, load

STATEMENT = (
    "Synthetic refinement of {rule} for the rule-base growth benchmark (its conditions with thresholds moved "
    "and one more finding); not clinical knowledge."
)


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:  # write shared lists out in full, no &anchors
        return True


def _moved(test: Any, rng: random.Random) -> Any:
    if isinstance(test, dict) and len(test) == 1:
        (op, value), = test.items()
        if op in ("gt", "gte", "lt", "lte") and isinstance(value, (int, float)) and not isinstance(value, bool):
            return {op: round(value * rng.uniform(0.8, 1.2), 1)}
    return test


def synthetic_rules(kb: KnowledgeBase, factor: int, *, seed: int) -> list[dict[str, Any]]:
    """`factor` refinements of every real rule."""
    rng = random.Random(seed)
    rules: list[dict[str, Any]] = []
    for pid, pdef in kb.presentations.items():
        real = kb.rules_for(pid)
        details = [d for d in pdef.details if d != "prior_treatments"]
        for index in range(factor * len(real)):
            model = real[index % len(real)]
            when = {name: _moved(test, rng) if name != ANY_OF else test for name, test in model.when.items()}
            extra = [d for d in details if d not in when and any(v is not None for v in detail_domain(kb, pid, d))]
            if extra:
                detail = rng.choice(extra)
                when[detail] = rng.choice([v for v in detail_domain(kb, pid, detail) if v is not None])
            rules.append(
                {
                    "id": f"synthetic_{index}_{pid}"[:64],
                    "version": 1,
                    "presentation": pid,
                    "statement": STATEMENT.format(rule=model.id),
                    "when": when,
                    "then": model.then.model_dump(mode="json", exclude_defaults=True),
                    "citations": list(model.citations),
                }
            )
    return rules


def grown_copy(target: Path, factor: int = 10, *, seed: int = 10) -> tuple[Path, int, int]:
    """Copy data/ to `target` and add `factor` times as many synthetic rules; returns the copy's
    path and the rule counts before and after. The copy is loaded once here, so a rule the loader
    would refuse fails now, with its file and field."""
    source = DATA_DIR
    copy = target / "data"
    shutil.copytree(source, copy)
    kb = load(copy)
    rules = synthetic_rules(kb, factor, seed=seed)
    (copy / "rules" / "zz_synthetic.yaml").write_text(
        "# Synthetic rules for the growth benchmark (benchmarks/synthetic.py); not clinical knowledge.\n"
        + yaml.dump({"rules": rules}, Dumper=_Dumper, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    grown = load(copy)
    return copy, len(kb.rules), len(grown.rules)
