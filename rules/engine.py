"""The only module that touches durable-rules.

What durable-rules does on this machine, and how this module answers it (see design.md):
- not thread-safe, and a failing action under threads can crash the process: one process-wide
  lock guards every call into it;
- an exception inside an action is swallowed into the session state: no Python action runs inside
  durable-rules at all. Its C core does the matching; the names of the rules it activates are read
  back under the lock, and the Python side of each rule (the action hook) runs afterwards, its
  errors raised as `RuleExecutionError`, as is any error of the C core;
- a fact that no rule matches raises: every ruleset has a catch-all rule for its presentation.
  Reading the C core's "not handled" answer as "no rule fired" instead saves an activation
  (about 0.8 of 16 µs) but crashed the process (segmentation fault in delete_state) on the 10x
  knowledge base of benchmarks/ (measured): the catch-all stays;
- the C core walks the alternatives below a node with a fixed-size stack and fails (error 303,
  then heap corruption) past about 60 of them: a presentation whose rules add more is split over
  several rulesets (SHARD_PATHS), the one fact asserted into each;
- state lives per sid until deleted, and a sid that collects facts slows and then fails: each
  engine asserts under one sid of its own and retracts the fact once its activations are read, so
  the state stays empty between assessments (a fresh sid per fact, built and deleted each time,
  cost the C core about a third of the fire: 18.7 against 13.1 µs per achalasia decision, measured;
  `tests/test_engine.py` checks the state is empty afterwards and the same rules fire). When a
  retraction fails, the sid's state is deleted instead;
- asserting a fact costs per ruleset, and more with the ruleset's size, whether or not its rules
  can match: a presentation that needs several rulesets is indexed on one decisive finding (a
  choice or yes/no that many of its rules require to equal one value, e.g. a subtype). Its rules
  are grouped by that value, each group sharded as above, and a fact is asserted only into the
  rulesets of its own value and those of the rules that do not test it (`_index`). A rule that
  requires `subtype == type_iii` cannot match a fact whose subtype is anything else, so the
  rules that fire are the same;
- registration is lazy and racy: every ruleset is created in the C core when the engine is built;
- rulesets are process-wide by name: names carry the knowledge base hash and an engine number, so
  two engines never share one.
- a rule made only of negative tests (`-m.field`, "not recorded") loops forever inside
  assert_fact (measured: 100% CPU, never returns): every rule is anchored on its presentation id.
Why the C core and not durable's Python `Host`: the Host dispatches every activation through
several JSON round trips, a closure and a timestamp per rule (about three quarters of the rule
step's time: 52 µs against 15 µs per achalasia assessment, measured on this machine while writing
benchmarks/), and it starts two timer threads that call
into the C core every 0.2 s without any lock, which could take an activation away from the
assessment that caused it. Conclusions are collected on the Python side, not asserted back as facts.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import durable_rules_engine as core
from durable import lang

from models.knowledge import Rule
from models import conditions
from models.loader import KnowledgeBase

_LOCK = threading.RLock()
_ENGINES = itertools.count(1)
_ACTION = re.compile(r'\s*\{\s*"([^"]+)"')  # the activated rule's name opens the C core's message
_NOT_HANDLED = 1
# The C core walks the paths below a node with a fixed-size stack: about 60 alternatives below one
# presentation's anchor work, about 100 fail with error 303 (ERR_MAX_STACK_SIZE), and a failure
# there was followed by heap corruption (measured on a 10x knowledge base). Rulesets stay below:
SHARD_PATHS = 48
# The C encoder of the json module, called directly: the whole fact in one C call, compact, as
# `json.dumps(fact, separators=(",", ":"), ensure_ascii=False)` writes it, without the Python layers
# of JSONEncoder around it (a third of the Python-side cost of a fire was the hand-written encoder
# this replaces, cProfile in BENCHMARKS.md). Findings are flat scalars: no circular-reference check.
_C_ENCODE = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
    None, json.JSONEncoder().default, json.encoder.encode_basestring, None, ":", ",", False, False, True
) if json.encoder.c_make_encoder is not None else None  # type: ignore[attr-defined]
_ENCODE_ANY = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _encode(fact: dict[str, Any]) -> str:
    """The fact as compact JSON for the C core."""
    if _C_ENCODE is None:
        return _ENCODE_ANY(fact)
    return "".join(_C_ENCODE(fact, 0))


class RuleExecutionError(RuntimeError):
    """A rule failed while running: the assessment is incomplete and must not be shown as whole."""


def _compile(test: conditions.Test) -> Any:
    if isinstance(test, conditions.AnyOf):
        options = [_all(option) for option in test.options]
        expr = options[0]
        for option in options[1:]:
            expr = expr | option
        return expr
    return _clause(test)


def _all(clauses: tuple[conditions.Clause, ...]) -> Any:
    expr = _clause(clauses[0])
    for clause in clauses[1:]:
        expr = expr & _clause(clause)
    return expr


def _clause(clause: conditions.Clause) -> Any:
    ref = getattr(lang.m, clause.field)
    op, value = clause.op, clause.value
    if op == "missing":
        return -ref if value else +ref
    if op == "is_not":
        return (-ref) | (ref != value)
    if op in ("in", "not_in"):
        parts = [(ref == v) if op == "in" else (ref != v) for v in value]
        expr = parts[0]
        for part in parts[1:]:
            expr = (expr | part) if op == "in" else (expr & part)
        return expr
    return {
        "eq": lambda: ref == value,
        "ne": lambda: ref != value,
        "gt": lambda: ref > value,
        "gte": lambda: ref >= value,
        "lt": lambda: ref < value,
        "lte": lambda: ref <= value,
    }[op]()


def _definition(expressions: list[Any]) -> str:
    """The C core's JSON for a ruleset: rule `r_<i>` matches one fact against expression i."""
    rules = {}
    for index, expr in enumerate(expressions):
        rule = lang.rule("all", True, expr)  # outside any `with ruleset`: nothing registered globally
        rules[f"r_{index}"] = rule.define()
    return json.dumps(rules, ensure_ascii=False)


def _paths(tests: tuple[conditions.Test, ...]) -> int:
    """How many alternative paths a rule adds below its presentation's anchor in the C core's
    network (its conditions in disjunctive normal form): `is_not` is two, `in` one per value,
    `any_of` the sum of its options."""

    def clause(c: conditions.Clause) -> int:
        if c.op == "is_not":
            return 2
        if c.op == "in":
            return len(c.value)
        return 1

    total = 1
    for test in tests:
        if isinstance(test, conditions.AnyOf):
            options = 0
            for option in test.options:
                product = 1
                for c in option:
                    product *= clause(c)
                options += product
            total *= options
        else:
            total *= clause(test)
    return total


@dataclass(frozen=True)
class _Ruleset:
    handle: int
    names: dict[str, str | None]  # C core rule name -> our rule id (None for the catch-all)


class Engine:
    """Durable-rules rulesets for one knowledge base: one per presentation, or several when its
    rules add more paths than the C core can walk at once (see SHARD_PATHS)."""

    def __init__(self, kb: KnowledgeBase, *, action_hook: Callable[[str], None] | None = None) -> None:
        self._hook = action_hook
        self._rulesets: dict[str, tuple[_Ruleset, ...]] = {}  # asserted into for every fact
        self._keyed: dict[str, tuple[str, dict[tuple[type, Any], tuple[_Ruleset, ...]]]] = {}
        self._order = {rule.id: index for index, rule in enumerate(kb.rules)}
        self._read = {
            pid: frozenset(f for r in kb.rules_for(pid) for f in conditions.fields(kb.tests[r.id]))
            for pid in kb.presentations
        }
        # findings whose value false matches every clause on them as "not recorded" does (only `eq true`
        # and `is_not true` test them): left out of the fact when false, so the C core parses, and
        # writes into each activation, a shorter fact (decision step 0.90x, BENCHMARKS.md)
        self._false_as_absent = {pid: _false_as_absent(kb, pid) for pid in kb.presentations}
        with _LOCK:
            number = next(_ENGINES)
            self._sid = f"e{number}"  # the one sid this engine asserts under (see the module doc)
            for pid in kb.presentations:
                names = (f"myotomy_{pid}_{kb.content_hash[:12]}_{number}_{index}" for index in itertools.count())
                field, groups, rest = _index(kb, kb.rules_for(pid))
                self._rulesets[pid] = tuple(self._define(next(names), pid, kb, rules) for rules in rest)
                if field is not None:
                    self._keyed[pid] = (field, {
                        value: tuple(self._define(next(names), pid, kb, rules) for rules in shards)
                        for value, shards in groups.items()
                    })

    @property
    def ruleset_count(self) -> int:
        """How many rulesets the C core holds for this engine (one per presentation, or more)."""
        return sum(len(shards) for shards in self._rulesets.values()) + sum(
            len(shards) for _, groups in self._keyed.values() for shards in groups.values()
        )

    def held_facts(self) -> int:
        """How many facts the C core still holds for this engine: 0 between assessments (each fact
        is retracted once read), so memory stays flat however many assessments run."""
        held = 0
        with _LOCK:
            for ruleset in self._every_ruleset():
                try:
                    held += len(json.loads(core.get_facts(ruleset.handle, self._sid) or "[]"))
                except core.error:
                    pass  # no state for this sid in a ruleset never asserted into: nothing held
        return held

    def _every_ruleset(self) -> Iterator[_Ruleset]:
        for shards in self._rulesets.values():
            yield from shards
        for _, groups in self._keyed.values():
            for shards in groups.values():
                yield from shards

    def _define(self, name: str, presentation: str, kb: KnowledgeBase, rules: list[Rule]) -> _Ruleset:
        anchor = lang.m.presentation == presentation  # see the module doc
        expressions: list[Any] = [anchor]
        ids: list[str | None] = [None]
        for rule in rules:
            expr = lang.m.presentation == presentation
            for test in kb.tests[rule.id]:
                expr = expr & _compile(test)
            expressions.append(expr)
            ids.append(rule.id)
        try:
            handle = core.create_ruleset(name, _definition(expressions))
        except core.error as error:
            raise RuleExecutionError(f"the rules of {presentation!r} cannot be compiled: {error}") from None
        return _Ruleset(handle, {f"r_{index}": rule_id for index, rule_id in enumerate(ids)})

    def fire(self, presentation: str, facts: dict[str, Any]) -> list[str]:
        """The ids of the rules whose conditions hold for these findings, in rule-file order."""
        rulesets = self._rulesets[presentation]
        keyed = self._keyed.get(presentation)
        if keyed is not None:
            field, groups = keyed
            if field in facts:
                value = facts[field]
                rulesets = rulesets + groups.get((type(value), value), ())
        read = self._read[presentation]
        # only the findings some rule of this presentation tests: the others cannot change a match
        drop = self._false_as_absent[presentation]
        fact = {name: value for name, value in facts.items() if name in read and (value is not False or name not in drop)}
        fact["presentation"] = presentation
        sid = fact["sid"] = self._sid
        payload = _encode(fact)
        fired: list[str] = []
        with _LOCK:
            for ruleset in rulesets:
                _run(ruleset, payload, sid, fired)
        if len(fired) > 1:  # the C core activates a rule once per any_of alternative that holds: one firing per rule
            fired = sorted(set(fired), key=self._order.__getitem__)
        if self._hook is not None:
            for rule_id in fired:
                try:
                    self._hook(rule_id)
                except Exception as error:  # raised, never dropped; see the module doc
                    raise RuleExecutionError(f"rule {rule_id} failed: {type(error).__name__}: {error}") from None
        return fired


def _run(ruleset: _Ruleset, payload: str, sid: str, fired: list[str]) -> None:
    """Assert the one fact into one ruleset under the engine's sid, add the ids of the rules it
    activates to `fired`, and retract the fact whatever happens (or, failing that, delete the sid's
    state), so the state is empty for the next fact. Called with the lock held. The
    activations are named as they come (one pass, no list of messages: cProfile in BENCHMARKS.md)."""
    handle, names = ruleset.handle, ruleset.names
    try:
        code, state = core.assert_fact(handle, payload)
        if code == _NOT_HANDLED:
            raise RuleExecutionError("no rule handled the findings (the catch-all rule is missing)")
        if code != 0:
            raise RuleExecutionError(f"the rule engine refused the findings (code {code})")
        try:
            result = core.start_action_for_state(handle, state)
            message = result[1] if result else None
            while message:
                rule_id = names.get(message[2 : message.find('"', 2)], _UNKNOWN)
                if rule_id is _UNKNOWN:
                    rule_id = _rule_id(names, message)
                if rule_id is not None:
                    fired.append(rule_id)
                message = core.complete_and_start_action(handle, state)
        except BaseException:
            _abandon(handle, state)
            raise
    except core.error as error:
        raise RuleExecutionError(f"the rule engine failed: {error}") from None
    finally:
        _forget(handle, payload, sid)


def _forget(handle: int, payload: str, sid: str) -> None:
    """Take the fact back out of the sid's state; if that fails, drop the whole state."""
    try:
        core.retract_fact(handle, payload)
    except core.error:
        try:
            core.delete_state(handle, sid)
        except core.error:
            pass  # nothing was stored for this sid


_UNKNOWN = object()


def _rule_id(names: dict[str, str | None], message: str) -> str | None:
    """Our rule id for an activation message that does not open with `{"r_<i>"` as expected."""
    match = _ACTION.match(message)
    name = match.group(1) if match else None
    if name not in names:
        raise RuleExecutionError(f"the rule engine activated an unknown rule: {message[:80]!r}")
    return names[name]


def _shards(kb: KnowledgeBase, rules: tuple[Rule, ...]) -> list[list[Rule]]:
    """The rules of one presentation in file order, cut so that no ruleset adds more than
    SHARD_PATHS paths below its anchor (a single larger rule gets a ruleset of its own)."""
    shards: list[list[Rule]] = [[]]
    load = 0
    for rule in rules:
        paths = _paths(kb.tests[rule.id])
        if shards[-1] and load + paths > SHARD_PATHS:
            shards.append([])
            load = 0
        shards[-1].append(rule)
        load += paths
    return shards


def _index(
    kb: KnowledgeBase, rules: tuple[Rule, ...]
) -> tuple[str | None, dict[tuple[type, Any], list[list[Rule]]], list[list[Rule]]]:
    """The decisive finding of a presentation, its rules' shards grouped by the value they require,
    and the shards of the rules that do not test it; no finding (None) when the rules fit one
    ruleset or no finding saves rulesets. A group's key is the value with its type: True and 1
    are equal in Python but not to the engine."""
    plain = _shards(kb, rules)
    if len(plain) <= 1:
        return None, {}, plain
    best: tuple[int, str, dict[tuple[type, Any], list[list[Rule]]], list[list[Rule]]] | None = None
    candidates = {
        t.field for r in rules for t in kb.tests[r.id]
        if isinstance(t, conditions.Clause) and t.op == "eq" and type(t.value) in (str, bool)
    }
    for field in sorted(candidates):
        grouped: dict[tuple[type, Any], list[Rule]] = {}
        rest: list[Rule] = []
        for rule in rules:
            value = next(
                (t.value for t in kb.tests[rule.id]
                 if isinstance(t, conditions.Clause) and t.field == field and t.op == "eq" and type(t.value) in (str, bool)),
                _NO_VALUE,
            )
            if value is _NO_VALUE:
                rest.append(rule)
            else:
                grouped.setdefault((type(value), value), []).append(rule)
        rest_shards = _shards(kb, tuple(rest)) if rest else []
        group_shards = {value: _shards(kb, tuple(members)) for value, members in grouped.items()}
        touched = len(rest_shards) + max(len(s) for s in group_shards.values())  # rulesets one fact meets at most
        if touched < len(plain) and (best is None or touched < best[0]):
            best = (touched, field, group_shards, rest_shards)
    if best is None:
        return None, {}, plain
    return best[1], best[2], best[3]


_NO_VALUE = object()


def _false_as_absent(kb: KnowledgeBase, presentation: str) -> frozenset[str]:
    """The findings of a presentation for which the value false and "not recorded" give every
    clause that tests them the same answer, so leaving a false one out cannot change a match."""
    found: dict[str, bool] = {}
    for rule in kb.rules_for(presentation):
        for clause in conditions.clauses(kb.tests[rule.id]):
            same = conditions.Clause.holds(clause, {clause.field: False}) == conditions.Clause.holds(clause, {})
            found[clause.field] = found.get(clause.field, True) and same
    return frozenset(field for field, same in found.items() if same)


def _abandon(handle: int, state: int) -> None:
    """Give back an action that was started; deleting a state with an action pending crashes the C core."""
    try:
        core.abandon_action(handle, state)
    except core.error:
        pass
