"""A temporary copy of data/ with ten times as many rules, for the rule-base growth benchmark.

A rule base grows by refinement: each synthetic rule is a real rule of the same presentation with
its numeric thresholds moved by up to a fifth (kept within the detail's declared bounds) and one
more declared detail of that presentation required (a value drawn from the detail's own choices or
marks, `benchmarks/inputs.py`), with the real rule's effects (`then: options: [...]`, flags,
work-up, caveats) and citations. The rules are appended to each presentation folder's rules.yaml;
the copy passes the loader, and the new rules fire on the same kinds of input as the real ones,
less often. Written only under a temporary directory, never into the repository: not clinical
knowledge.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import yaml

from benchmarks.inputs import choices
from models.conditions import ANY_OF
from models.loader import DATA_DIR, KnowledgeBase, load

STATEMENT = (
    "Synthetic refinement of {rule} for the rule-base growth benchmark (its conditions with thresholds moved "
    "and one more finding); not clinical knowledge."
)
HEADER = "# Synthetic rules added for the growth benchmark (benchmarks/synthetic.py); not clinical knowledge.\n"


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:  # write shared lists out in full, no &anchors
        return True


def _moved(kb: KnowledgeBase, pid: str, field: str, test: Any, rng: random.Random) -> Any:
    if isinstance(test, dict) and len(test) == 1:
        (op, value), = test.items()
        if op in ("gt", "gte", "lt", "lte") and isinstance(value, (int, float)) and not isinstance(value, bool):
            moved = round(value * rng.uniform(0.8, 1.2), 1)
            detail = kb.detail(pid, field)
            if detail is not None:
                low = detail.min if detail.min is not None else moved
                high = detail.max if detail.max is not None else moved
                moved = min(max(moved, low), high)
            return {op: moved}
    return test


def synthetic_rules(kb: KnowledgeBase, factor: int, *, seed: int) -> dict[str, list[dict[str, Any]]]:
    """`factor` refinements of every real rule, by presentation."""
    rng = random.Random(seed)
    found: dict[str, list[dict[str, Any]]] = {}
    for pid in kb.presentations:
        real = kb.rules_for(pid)
        details = [d for d in kb.details[pid] if d.type != "treatments"]
        rules = found.setdefault(pid, [])
        for index in range(factor * len(real)):
            model = real[index % len(real)]
            when = {name: test if name == ANY_OF else _moved(kb, pid, name, test, rng) for name, test in model.when.items()}
            extra = [d for d in details if d.id not in when]
            if extra:
                detail = rng.choice(extra)
                when[detail.id] = rng.choice(choices(kb, pid, detail))
            rules.append(
                {
                    "id": f"synthetic_{index}_{pid}"[:64],
                    "version": 1,
                    "statement": STATEMENT.format(rule=model.id),
                    "when": when,
                    "then": model.then.model_dump(mode="json", exclude_defaults=True),
                    "citations": list(model.citations),
                }
            )
    return found


def grown_copy(target: Path, factor: int = 10, *, seed: int = 10) -> tuple[Path, int, int]:
    """Copy data/ to `target` and add `factor` times as many synthetic rules to every presentation
    folder's rules.yaml; returns the copy's path and the rule counts before and after. The copy is
    loaded once here, so a rule the loader would refuse fails now, with its file and field."""
    copy = target / "data"
    shutil.copytree(DATA_DIR, copy)
    kb = load(copy)
    for pid, rules in synthetic_rules(kb, factor, seed=seed).items():
        path = copy / "presentations" / pid / "rules.yaml"
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw["rules"] = [*raw["rules"], *rules]
        path.write_text(
            HEADER + yaml.dump(raw, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120), encoding="utf-8"
        )
    grown = load(copy)
    return copy, len(kb.rules), len(grown.rules)
