"""Ids in a plan said in words: finding labels, choice meanings, option names, flag meanings.

The plan names findings, options and flags by id so that it can be checked; a clinician reads
words. Everything here is a lookup in the knowledge base, so the screen says exactly what the
knowledge files say and computes nothing clinical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models import conditions
from models.loader import AGE_FACTS, PRIOR_PREFIX, KnowledgeBase
from models.presentation import OUTCOME_WORDS
from rules.planner import STRENGTH_WORDS

SEVERITY_WORDS = {"stop": "Stop", "do_first": "Do first", "caution": "Caution"}
_AGE_WORDS = {"age_years": "age in years", "age_months": "age in months", "age_weeks": "age in weeks"}
_OP_WORDS = {
    "eq": "is",
    "ne": "is recorded and is not",
    "is_not": "is not recorded as",
    "in": "is one of",
    "not_in": "is recorded and is none of",
    "gt": "is over",
    "gte": "is at least",
    "lt": "is under",
    "lte": "is at most",
}


def strength(value: str) -> str:
    """The strength of an option as a heading says it: 'Preferred', 'Later, if the step before fails'."""
    text = STRENGTH_WORDS[value]
    return text[:1].upper() + text[1:]


def yes_no(value: object) -> str:
    return "yes" if value is True else "no" if value is False else str(value)


@dataclass(frozen=True)
class Words:
    kb: KnowledgeBase

    def option(self, oid: str) -> str:
        found = self.kb.options.get(oid)
        return found.name if found else oid

    def flag(self, fid: str) -> str:
        found = self.kb.flags.get(fid)
        return found.meaning if found else fid

    def presentation(self, pid: str) -> str:
        found = self.kb.presentations.get(pid)
        return found.name if found else pid

    def fact(self, pid: str, name: str) -> str:
        """A finding the rules read: a detail's label, a named definition's meaning, a prior treatment."""
        if name in _AGE_WORDS:
            return _AGE_WORDS[name]
        detail = self.kb.detail(pid, name) if pid in self.kb.details else None
        if detail is not None:
            return detail.label
        definitions = self.kb.definitions.get(pid)
        for ident, meaning, _ in definitions.items if definitions else ():
            if ident == name:
                return meaning
        if name.startswith(PRIOR_PREFIX) and name[len(PRIOR_PREFIX):] in self.kb.options:
            return f"previous {self.option(name[len(PRIOR_PREFIX):])}"
        return name.replace("_", " ")

    def value(self, pid: str, name: str, value: Any) -> str:
        """A recorded value as the form offered it: yes/no, a choice's meaning, an outcome, a number with its unit."""
        if isinstance(value, bool):
            return yes_no(value)
        if name.startswith(PRIOR_PREFIX) and value in OUTCOME_WORDS:
            return OUTCOME_WORDS[value]
        detail = self.kb.detail(pid, name) if pid in self.kb.details else None
        if detail is not None and detail.choices:
            return next((c.meaning for c in detail.choices if c.id == value), str(value))
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        unit = detail.unit if detail is not None else None
        if unit == "%":
            return f"{shown}%"
        return f"{shown} {unit}" if unit else shown

    def finding(self, pid: str, name: str, value: Any) -> str:
        return f"{self.fact(pid, name)}: {self.value(pid, name, value)}"

    def clause(self, pid: str, clause: conditions.Clause) -> str:
        label = self.fact(pid, clause.field)
        if clause.op == "missing":
            return f"{label} {'is not recorded' if clause.value else 'is recorded'}"
        values = clause.value if isinstance(clause.value, list) else [clause.value]
        shown = [self.value(pid, clause.field, v) for v in values]
        if clause.field in AGE_FACTS:
            shown = [f"{v:g}" if isinstance(v, float) else str(v) for v in values]
        return f"{label} {_OP_WORDS[clause.op]} {' or '.join(shown)}"

    def test(self, pid: str, test: conditions.Test) -> str:
        if isinstance(test, conditions.Clause):
            return self.clause(pid, test)
        return "either " + ", or ".join(" and ".join(self.clause(pid, c) for c in option) for option in test.options)

    def unmet(self, pid: str, rule_id: str, described: str) -> str:
        """An unmet condition of "why not" in words: the rule's test whose description it is."""
        for test in self.kb.tests.get(rule_id, ()):
            if test.describe() == described:
                return self.test(pid, test)
        return described
