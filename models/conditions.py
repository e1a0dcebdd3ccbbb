"""The WHEN language of rule files, checked and explained in plain Python.

A rule's `when` maps a finding to a test; all must hold. A test is a value (equality) or one
operator: eq, ne, is_not, in, not_in, gt, gte, lt, lte, missing. `any_of` takes a list of such maps, one of
which must hold. Comparisons on a finding that was not recorded are false, as in durable-rules;
only `missing: true` and `is_not` (not recorded, or recorded with another value) match an
absent finding. `rules/engine.py` compiles the same clauses for
durable-rules, and a test checks that both agree.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from typing import Any, Iterator

OPERATORS = ("eq", "ne", "is_not", "in", "not_in", "gt", "gte", "lt", "lte", "missing")
ANY_OF = "any_of"


@dataclass(frozen=True)
class Clause:
    field: str
    op: str
    value: Any

    def __post_init__(self) -> None:
        # `holds` is compiled once per clause into a closure for its operator: rules, definitions,
        # "why not" and needs evaluate clauses hundreds of times per assessment, and the generic
        # method below spent most of its time choosing the branch (see BENCHMARKS.md).
        object.__setattr__(self, "holds", _compiled(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Clause, (self.field, self.op, self.value))  # the compiled closure is rebuilt, not pickled

    def holds(self, facts: dict[str, Any]) -> bool:  # the reference; each instance uses `_compiled`
        present = self.field in facts
        if self.op == "missing":
            return present != bool(self.value)
        if self.op == "is_not":
            return not present or facts[self.field] != self.value
        if not present:
            return False
        actual = facts[self.field]
        if self.op == "eq":
            return actual == self.value
        if self.op == "ne":
            return actual != self.value
        if self.op == "in":
            return actual in self.value
        if self.op == "not_in":
            return actual not in self.value
        if isinstance(actual, bool) or not isinstance(actual, (int, float)):
            return False
        return {
            "gt": actual > self.value,
            "gte": actual >= self.value,
            "lt": actual < self.value,
            "lte": actual <= self.value,
        }[self.op]

    def describe(self, words_for: "Words | None" = None) -> str:
        """The clause in plain words; `words_for` names findings and values (labels, choice meanings)."""
        name, show = (words_for.name, words_for.value) if words_for else ((lambda f: f), (lambda f, v: _show(v)))
        words = {
            "eq": "is",
            "ne": "is recorded and is not",
            "is_not": "is not recorded as",
            "in": "is one of",
            "not_in": "is recorded and is none of",
            "gt": ">",
            "gte": "≥",
            "lt": "<",
            "lte": "≤",
        }
        if words_for and self.field in words_for.definitions and self.op == "eq" and isinstance(self.value, bool):
            return name(self.field) if self.value else f"not ({name(self.field)})"
        if self.op == "missing":
            return f"{name(self.field)} {'is not recorded' if self.value else 'is recorded'}"
        values = self.value if isinstance(self.value, list) else [self.value]
        return f"{name(self.field)} {words[self.op]} {', '.join(show(self.field, v) for v in values)}"


@dataclass(frozen=True)
class AnyOf:
    options: tuple[tuple[Clause, ...], ...]

    def holds(self, facts: dict[str, Any]) -> bool:
        for option in self.options:
            for clause in option:
                if not clause.holds(facts):
                    break
            else:
                return True
        return False

    def describe(self, words_for: "Words | None" = None) -> str:
        return "either " + " or ".join(
            "(" + " and ".join(c.describe(words_for) for c in option) + ")" for option in self.options
        )


Test = Clause | AnyOf


@dataclass(frozen=True)
class Words:
    """How a presentation names its findings and their values, for "why not" in words."""

    names: dict[str, str]
    values: dict[tuple[str, Any], str]
    definitions: frozenset[str] = frozenset()

    def name(self, field: str) -> str:
        return self.names.get(field, field)

    def value(self, field: str, value: Any) -> str:
        return self.values.get((field, value), _show(value))


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def parse(when: dict[str, Any]) -> tuple[Test, ...]:
    """Parse a rule's `when` map; raises ValueError naming the field that is malformed."""
    tests: list[Test] = []
    for field, test in when.items():
        if field == ANY_OF:
            if not isinstance(test, list) or len(test) < 2:
                raise ValueError("any_of needs a list of at least two alternatives")
            tests.append(AnyOf(tuple(_parse_all(option) for option in test)))
        else:
            tests.append(_parse_one(field, test))
    return tuple(tests)


def _parse_all(when: Any) -> tuple[Clause, ...]:
    if not isinstance(when, dict) or not when or ANY_OF in when:
        raise ValueError("each any_of alternative is a non-empty map of finding to test")
    return tuple(_parse_one(field, test) for field, test in when.items())


def _parse_one(field: str, test: Any) -> Clause:
    if not isinstance(test, dict):
        _check_scalar(field, test)
        return Clause(field, "eq", test)
    if len(test) != 1:
        raise ValueError(f"{field}: a test has exactly one operator, got {sorted(test)}")
    op, value = next(iter(test.items()))
    if op not in OPERATORS:
        raise ValueError(f"{field}: unknown operator {op!r}; use one of {', '.join(OPERATORS)}")
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise ValueError(f"{field}: {op} needs a non-empty list")
        for item in value:
            _check_scalar(field, item)
    elif op in ("gt", "gte", "lt", "lte"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{field}: {op} needs a number")
    elif op == "missing":
        if not isinstance(value, bool):
            raise ValueError(f"{field}: missing needs true or false")
    else:
        _check_scalar(field, value)
    return Clause(field, op, value)


def _check_scalar(field: str, value: Any) -> None:
    if not isinstance(value, (bool, int, float, str)):
        raise ValueError(f"{field}: expected a single value, got {type(value).__name__}")


def clauses(tests: tuple[Test, ...]) -> Iterator[Clause]:
    """Every clause of a rule, those inside any_of options included, in order."""
    for test in tests:
        if isinstance(test, Clause):
            yield test
        else:
            for option in test.options:
                yield from option


def fields(tests: tuple[Test, ...]) -> Iterator[str]:
    """Every finding a rule reads, in order."""
    return (clause.field for clause in clauses(tests))


def holds(tests: tuple[Test, ...], facts: dict[str, Any]) -> bool:
    for test in tests:
        if not test.holds(facts):
            return False
    return True


_ABSENT = object()  # equal to no value: a comparison on a finding that was not recorded is false


def _compiled(clause: Clause) -> Any:
    """`Clause.holds` for one clause, with its operator chosen once; the same answers as the
    reference method (tests/test_engine.py compares them on generated findings)."""
    name, op, value = clause.field, clause.op, clause.value
    if op == "missing":
        if value:
            return lambda facts: name not in facts
        return lambda facts: name in facts
    if op == "is_not":
        return lambda facts: facts.get(name, _ABSENT) != value
    if op == "eq":
        return lambda facts: facts.get(name, _ABSENT) == value
    if op == "ne":
        return lambda facts: (actual := facts.get(name, _ABSENT)) is not _ABSENT and actual != value
    if op in ("in", "not_in"):
        values = tuple(value) if isinstance(value, list) else value
        if op == "in":
            return lambda facts: facts.get(name, _ABSENT) in values
        return lambda facts: (actual := facts.get(name, _ABSENT)) is not _ABSENT and actual not in values
    compare = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}.get(op)
    if compare is None:
        return functools.partial(Clause.holds, clause)  # an operator parse() refuses: keep the reference

    def number(facts: dict[str, Any]) -> bool:
        actual = facts.get(name)
        if type(actual) is bool or not isinstance(actual, (int, float)):
            return False
        return compare(actual, value)

    return number


def unmet(tests: tuple[Test, ...], facts: dict[str, Any]) -> tuple[str, ...]:
    """The conditions that do not hold, in plain words: the answer to "why not?"."""
    return tuple(test.describe() for test in tests if not test.holds(facts))
