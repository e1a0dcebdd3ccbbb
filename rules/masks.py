"""Which of a presentation's rule tests fail for one set of findings, as one integer bitmask.

"Why not" ranks every rule naming an option by its unmet conditions, and the needs prompts keep
only the rules whose other tests hold. Both used to evaluate each test of each rule, so their cost
grew with the rules that exist (on the 10x knowledge base: two thirds of `assess()`, profile in
BENCHMARKS.md). Here each distinct test of a presentation's rules gets one bit. A clause reads one
finding, so the clauses on that finding fail or hold together for one value of it: their bits are
worked out once per value and kept. A rule's failing tests are then `mask & failing`, one integer
operation whatever the number of rules.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from models import conditions

MEMO_LIMIT = 65_536  # (finding, value) pairs kept per presentation; emptied when full (numbers vary)
ABSENT = object()  # the value of a finding not recorded
_Check = tuple[int, Callable[[dict[str, Any]], bool]]  # a test's bit and its reading


def _key(test: conditions.Test) -> Any:
    """Equal tests share a bit (a knowledge base repeats the same test in many rules)."""
    if isinstance(test, conditions.Clause):
        value = tuple(test.value) if isinstance(test.value, list) else (type(test.value), test.value)
        return (test.field, test.op, value)
    return tuple(tuple(_key(c) for c in option) for option in test.options)


class Failing:
    """The bits of one presentation's tests (its rules' and its named definitions'), and which fail
    for given findings. An any_of test has its own bit, and each of its clauses too: it fails when
    every alternative has a failing clause."""

    def __init__(self, tests: Iterable[conditions.Test]) -> None:
        self._bit: dict[Any, int] = {}
        by_field: dict[str, list[_Check]] = {}
        composite: list[tuple[int, tuple[int, ...]]] = []
        for test in tests:
            if isinstance(test, conditions.AnyOf):
                options = tuple(self._add(option, by_field) for option in test.options)
                if _key(test) not in self._bit:
                    composite.append((self._new(test), options))
            else:
                self._add((test,), by_field)
        self._checks = {name: tuple(checks) for name, checks in by_field.items()}
        self._field_bits = {name: sum(bit for bit, _ in checks) for name, checks in by_field.items()}
        self._composite = tuple(composite)
        # the any_of tests with a clause on each finding: worked out again when it changes
        self._composite_of = {
            name: tuple((bit, options) for bit, options in composite if any(o & bits for o in options))
            for name, bits in self._field_bits.items()
        }
        self._memo: dict[tuple[str, type, Any], int] = {}

    def _new(self, test: conditions.Test) -> int:
        bit = self._bit[_key(test)] = 1 << len(self._bit)
        return bit

    def _add(self, clauses: tuple[conditions.Clause, ...], by_field: dict[str, list[_Check]]) -> int:
        """Bits for these clauses (new ones filed under their finding); returns their mask."""
        found = 0
        for clause in clauses:
            bit = self._bit.get(_key(clause))
            if bit is None:
                bit = self._new(clause)
                by_field.setdefault(clause.field, []).append((bit, clause.holds))
            found |= bit
        return found

    def forget(self) -> None:
        """Empty the memo of bits by value (benchmarks start cold)."""
        self._memo.clear()

    def mask(self, tests: Iterable[conditions.Test]) -> int:
        """The bits of these tests (each must be one of the presentation's tests)."""
        found = 0
        for test in tests:
            found |= self._bit[_key(test)]
        return found

    def of(self, facts: dict[str, Any]) -> int:
        """The bits of the tests that do not hold for these findings."""
        failing = 0
        get = facts.get
        for name in self._checks:
            failing |= self.value_bits(name, get(name, ABSENT))
        return self._composites(failing)

    def trial(self, failing: int, values: Iterable[tuple[str, Any]], definitions: Iterable[tuple[str, int]] = ()) -> int:
        """`failing` with these findings set to these values, then these named definitions worked
        out again in order, each from the bits of its own tests (what `Definitions.apply` does to a
        dict of findings, without one)."""
        for name, value in values:
            failing = self._set(failing, name, value)
        for ident, tests in definitions:
            failing = self._set(failing, ident, not failing & tests)
        return failing

    def _set(self, failing: int, name: str, value: Any) -> int:
        bits = self._field_bits.get(name)
        if bits is None:
            return failing
        return self._composites(failing & ~bits | self.value_bits(name, value), self._composite_of[name])

    def value_bits(self, name: str, value: Any) -> int:
        """The bits of the clauses on finding `name` that fail for this value (`ABSENT`: not recorded)."""
        key = (name, value.__class__, value)  # with its type: True and 1 are equal in Python, not here
        found = self._memo.get(key)
        if found is None:
            facts = {} if value is ABSENT else {name: value}  # a clause reads its own finding only
            found = 0
            for bit, holds in self._checks.get(name, ()):
                if not holds(facts):
                    found |= bit
            if len(self._memo) >= MEMO_LIMIT:
                self._memo.clear()
            self._memo[key] = found
        return found

    def _composites(self, failing: int, composite: tuple[tuple[int, tuple[int, ...]], ...] | None = None) -> int:
        """`failing` with these any_of tests (all by default) worked out again from their clauses' bits."""
        for bit, options in self._composite if composite is None else composite:
            for option in options:
                if not option & failing:
                    failing &= ~bit
                    break
            else:
                failing |= bit
        return failing
