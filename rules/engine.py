"""The only module that touches durable-rules.

What durable-rules does on this machine, and how this module answers it (see design.md):
- not thread-safe, and a failing action under threads can crash the process: one process-wide
  lock guards every call into it;
- an exception inside an action is swallowed into the session state: actions record their own
  errors, the state is checked too, and either raises `RuleExecutionError`;
- a fact that no rule matches raises: every ruleset has a catch-all rule for its presentation;
- state lives per sid until deleted: a fresh sid per assessment, deleted afterwards;
- registration is lazy and racy: every ruleset is registered when the engine is built;
- rulesets are process-wide by name and their actions are bound to the engine that defined them:
  names carry the knowledge base hash and an engine number, so two engines never share one.
- a rule made only of negative tests (`-m.field`, "not recorded") loops forever inside
  assert_fact (measured: 100% CPU, never returns): every rule is anchored on its presentation id.
Conclusions are collected on the Python side, not asserted back as facts.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any, Callable

from durable import engine as durable_engine
from durable import lang

from rules import conditions
from rules.knowledge_base import KnowledgeBase

_LOCK = threading.RLock()
_SIDS = itertools.count(1)
_ENGINES = itertools.count(1)


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


class Engine:
    """Durable-rules rulesets for one knowledge base, one ruleset per presentation."""

    def __init__(self, kb: KnowledgeBase, *, action_hook: Callable[[str], None] | None = None) -> None:
        self._fired: list[str] = []
        self._errors: list[str] = []
        self._hook = action_hook
        with _LOCK:
            number = next(_ENGINES)
            self._names = {pid: f"myotomy_{pid}_{kb.content_hash[:12]}_{number}" for pid in kb.presentations}
            for pid, name in self._names.items():
                self._define(name, pid, kb)
            self._host = lang.get_host()  # registers every ruleset now, before any second thread

    def _define(self, name: str, presentation: str, kb: KnowledgeBase) -> None:
        with lang.ruleset(name):
            lang.when_all(lang.m.presentation == presentation)(lambda c: None)
            for rule in kb.rules_for(presentation):
                expr = lang.m.presentation == presentation  # see the module doc
                for test in kb.tests[rule.id]:
                    expr = expr & _compile(test)
                lang.when_all(expr)(self._action(rule.id))

    def _action(self, rule_id: str) -> Callable[[Any], None]:
        def fire(_c: Any) -> None:
            try:
                if self._hook is not None:
                    self._hook(rule_id)
                self._fired.append(rule_id)
            except Exception as error:  # recorded and re-raised by fire(); see the module doc
                self._errors.append(f"rule {rule_id} failed: {type(error).__name__}: {error}")

        return fire

    def fire(self, presentation: str, facts: dict[str, Any]) -> list[str]:
        """The ids of the rules whose conditions hold for these findings, in rule-file order."""
        name = self._names[presentation]
        with _LOCK:
            sid = f"a{next(_SIDS)}"
            self._fired.clear()
            self._errors.clear()
            try:
                self._host.assert_fact(name, {**facts, "presentation": presentation, "sid": sid})
                state = self._host.get_state(name, sid)
            except durable_engine.MessageNotHandledException as error:
                raise RuleExecutionError(f"no rule handled the findings: {error}") from None
            finally:
                self._host.delete_state(name, sid)
            if self._errors or "exception" in (state or {}):
                raise RuleExecutionError(self._errors[0] if self._errors else str(state["exception"]))
            return list(self._fired)
