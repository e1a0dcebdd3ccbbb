"""assess(): a presentation in, a plan with its basis out.

The engine only says which rules hold; the plan is assembled here from the rules' effects and the
knowledge base: flags with their severity (a stop flag withholds the options, a do-first flag
becomes a step before them, a flag whose clearing facts are recorded is shown as cleared), the
options of every kind on one strength scale, the steps, the shared decisions, and the details that
would change the answer ("needs"), found by trying each undecided value of a missing detail.

What does not depend on the patient is built once per knowledge base in `_Derived`.

Records derived from rules and the findings they read (an option with its basis, a flag, a "why
not", a needs prompt, the steps) are the same whenever those findings are the same, and building them was most of
an assessment's time (pyinstrument on the teaching cases: why not 16 %, option and basis 15 %,
needs 12 %, flags 7 %). Each is therefore kept in a bounded memo keyed by exactly what it is made
from: the ids of its rules and the recorded values (with their types) of the fields those rules
read, through definitions. The memo holds the planner's own derived records, frozen models that
plans share, never a whole plan: every assessment still validates its input, fires the rules and
assembles its plan. `records_cached(False)` turns the memos off, the reference path a test
compares against byte for byte.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import itertools
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, TypeVar

from pydantic import ValidationError

from models import conditions
from models import plan as out
from models.knowledge import MERGE_PRIORITY, STRENGTH_ORDER, TOP_RANK, Detail, Rule, Strength
from models.loader import AGE_FACTS, AGE_FLAG, PRIOR_PREFIX, KnowledgeBase, load
from models.presentation import Condition, Presentation
from models.problems import did_you_mean, error_reason
from rules.engine import Engine
from rules.masks import Failing
from rules.render import STRENGTH_WORDS

DEFAULT_TIPS = ("patient preference", "local expertise")
PAIR_LIMIT = 64  # value combinations tried for a pair of blank details that a rule reads together
# "why not" lists, for an option not in the plan, the rules that name it nearest to holding: those
# with the fewest unmet conditions (rule-file order among equals), so it reads the same and costs
# about the same whatever the number of rules (the rest are counted, not listed)
WHY_NOT_RULES = 3
MEMO_LIMIT = 2048  # records per kind and knowledge base: about 25 MB in all when every memo is full
_MERGE_RANK = {s: i for i, s in enumerate(MERGE_PRIORITY)}
_STRENGTH_RANK = {s: i for i, s in enumerate(STRENGTH_ORDER)}
_SEVERITY_RANK = {s: i for i, s in enumerate(("stop", "do_first", "caution"))}
_CACHING = [True]


@contextlib.contextmanager
def records_cached(enabled: bool) -> Iterator[None]:
    """Turn the memos of derived records on or off for a `with` block (process-wide; for tests)."""
    before = _CACHING[0]
    _CACHING[0] = enabled
    try:
        yield
    finally:
        _CACHING[0] = before


class _Memo(collections.OrderedDict):  # type: ignore[type-arg]
    """A bounded memo: past its limit the oldest entry goes. Safe under threads: a lost race only
    builds a record twice. An OrderedDict, because `next(iter(d))` on a plain dict that keeps
    losing its first entries walks over every deleted slot (a full memo spent more time evicting
    than it saved on the 10x knowledge base: profile in BENCHMARKS.md)."""

    def __init__(self, limit: int = MEMO_LIMIT) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: Any, value: Any) -> Any:
        if not _CACHING[0]:
            return value
        if len(self) >= self.limit:
            try:
                self.popitem(last=False)
            except (StopIteration, RuntimeError, KeyError):
                pass
        self[key] = value
        return value

    def find(self, key: Any) -> Any:
        return self.get(key) if _CACHING[0] else None


class _Findings(dict):  # type: ignore[type-arg]
    """One condition's findings, with each value also as a memo key: strings as they are, other
    values with their type (True and 1, 0.0 and -0.0 are equal in Python but written differently
    in a plan), floats by their text."""

    def __init__(self, facts: dict[str, Any]) -> None:
        super().__init__(facts)
        self.keys_of = {
            name: value if type(value) is str else (type(value), repr(value) if type(value) is float else value)
            for name, value in facts.items()
        }


def _pattern(facts: _Findings, fields: tuple[str, ...]) -> tuple[Any, ...]:
    """The recorded values of these fields as a memo key (None where absent: no finding is None)."""
    return tuple(map(facts.keys_of.get, fields))


class InputError(ValueError):
    """The input is invalid; `errors` holds (field path, reason) pairs for the user."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{loc}: {msg}" if loc else msg for loc, msg in errors))

    @classmethod
    def from_validation(cls, error: ValidationError) -> "InputError":
        errors = []
        for e in error.errors():
            loc = [str(p) for p in e["loc"]]
            # the discriminated union puts the presentation id after the index: not a field
            if len(loc) > 2 and loc[0] == "conditions" and loc[1].isdigit():
                del loc[2]
            errors.append((".".join(loc), error_reason(e)))
        # a condition that fails leaves the tuple short, and pydantic says so too: that is not news
        if any(loc.startswith("conditions.") for loc, _ in errors):
            errors = [(loc, msg) for loc, msg in errors if not (loc == "conditions" and "at least 1 item" in msg)]
        return cls(errors)


@functools.lru_cache(maxsize=1)
def default_context() -> tuple[KnowledgeBase, Engine]:
    """The knowledge base and engine, built once per process."""
    kb = load()
    return kb, Engine(kb)


def parse_presentation(raw: Presentation | dict[str, Any], kb: KnowledgeBase) -> Presentation:
    if isinstance(raw, Presentation) and type(raw) is kb.input_model:
        return raw
    if isinstance(raw, Presentation):
        raw = raw.model_dump(exclude_none=True)
    if not isinstance(raw, dict):
        raise InputError([("", f"expected a JSON object, got {type(raw).__name__}")])
    unknown = []
    conds = raw.get("conditions")
    if isinstance(conds, (list, tuple)):
        for i, cond in enumerate(conds):
            pid = cond.get("presentation") if isinstance(cond, dict) else None
            if isinstance(pid, str) and pid not in kb.presentations:
                unknown.append((f"conditions.{i}.presentation", f"unknown presentation {pid!r}" + did_you_mean(pid, kb.presentations)))
    if unknown:
        raise InputError(unknown)
    try:
        return kb.input_model.model_validate(raw)
    except ValidationError as error:
        raise InputError.from_validation(error) from None


def _check(presentation: Presentation, kb: KnowledgeBase, facts: list[dict[str, Any]]) -> None:
    """What the input model cannot know alone: age requirements and declared constraints."""
    errors: list[tuple[str, str]] = []
    for index, (cond, found) in enumerate(zip(presentation.conditions, facts)):
        pdef = kb.presentations[cond.presentation]
        if pdef.requires_age and presentation.age is None:
            errors.append(("age", f"age is required for {pdef.name}"))
        if pdef.max_age_years is not None and presentation.age is not None and presentation.age.years > pdef.max_age_years:
            errors.append(("age", f"{pdef.name} is not a diagnosis at {presentation.age.value:g} {presentation.age.unit}"))
        for tests, message in kb.constraints[cond.presentation]:
            if conditions.holds(tests, found):
                errors.append((f"conditions.{index}", message))
    if errors:
        raise InputError(list(dict.fromkeys(errors)))


def facts_of(condition: Condition, presentation: Presentation, kb: KnowledgeBase) -> dict[str, Any]:
    """Flatten one condition into the findings the rules test, named definitions included."""
    facts: dict[str, Any] = {}
    if presentation.age is not None:
        facts["age_years"] = round(presentation.age.years, 3)
        facts["age_months"] = round(presentation.age.months, 2)
        facts["age_weeks"] = round(presentation.age.weeks, 2)
    for name, value in condition.recorded_details().items():
        if isinstance(value, tuple):
            continue
        # durable-rules cannot parse numbers written with an exponent (1e-07): 4 decimals keep
        # every bounded input in plain notation, and both the engine and "why not" see the same value
        facts[name] = round(value, 4) if isinstance(value, float) else value
    for prior in condition.treatments_given():
        facts[PRIOR_PREFIX + prior.treatment] = prior.outcome
    kb.definitions[condition.presentation].apply(facts)
    return facts


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


class _Derived:
    """Everything about a knowledge base that a plan reads but does not change, built once."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.order = {rule.id: i for i, rule in enumerate(kb.rules)}
        self.rule = {rule.id: rule for rule in kb.rules}
        self.rules_for = {pid: kb.rules_for(pid) for pid in kb.presentations}
        self.fields = {rule.id: tuple(_unique(conditions.fields(kb.tests[rule.id]))) for rule in kb.rules}
        definitions = {pid: {i: tests for i, _, tests in kb.definitions[pid].items} for pid in kb.presentations}
        self.definition_meaning = {i: m for pid in kb.presentations for i, m, _ in kb.definitions[pid].items}
        # what a rule reads, through its definitions: the details a missing value can change it by
        self.reads: dict[str, tuple[str, ...]] = {}
        for rule in kb.rules:
            self.reads[rule.id] = _closure(self.fields[rule.id], definitions[rule.presentation])
        self.read = {
            pid: tuple(_unique(f for r in rules for f in self.reads[r.id] if f not in definitions[pid]))
            for pid, rules in self.rules_for.items()
        }
        # what a rule reads that a person records (not previous treatments, not the age's units)
        self.askable = {
            pid: tuple(f for f in read if not f.startswith(PRIOR_PREFIX) and f not in AGE_FACTS) for pid, read in self.read.items()
        }
        self.citation = {
            key: out.CitationRef(key=key, label=c.reference, year=c.year, grade=c.grade, url=c.urls[0] if c.urls else None)
            for key, c in kb.citations.items()
        }
        self.risks = {
            oid: tuple(out.Statement(text=r.text, citations=self.cite(r.citations), uncertain=r.uncertain) for r in o.risks)
            for oid, o in kb.options.items()
        }
        self.caveat = {
            id(c): out.Statement(text=c.text, citations=self.cite(c.citations), uncertain=c.uncertain)
            for rule in kb.rules
            for c in rule.then.caveats
        }
        self.evidence = {
            rule.id: tuple(out.Evidence(**e.model_dump()) for e in rule.evidence) for rule in kb.rules
        }
        self.workup = {w: out.Term(id=w, meaning=meaning) for w, meaning in kb.workup.items()}
        self.info = {
            pid: out.PresentationInfo(id=pid, name=p.name, purpose=p.purpose, intended_use=p.intended_use, misuse=p.misuse)
            for pid, p in kb.presentations.items()
        }
        self.source_caveats = tuple(
            (
                c.applies_to,
                c.patients,
                out.SourceCaveat(
                    id=c.id, source=c.source, quote=c.quote, patients=c.patients, audit=c.audit,
                    audit_citations=self.cite(c.audit.citations) if c.audit else (),
                ),
            )
            for c in kb.source_caveats
        )
        words = {pid: _words(kb, pid) for pid in kb.presentations}
        self.definition_tests = {pid: {i: tests for i, _, tests in kb.definitions[pid].items} for pid in kb.presentations}
        self.described = {id(t): t.describe(words[rule.presentation]) for rule in kb.rules for t in kb.tests[rule.id]}
        self.described.update(
            {id(t): t.describe(words[pid]) for pid in kb.presentations for _, _, tests in kb.definitions[pid].items for t in tests}
        )
        self.naming = {
            (pid, oid): tuple(r for r in rules if any(e.option == oid for e in r.then.options))
            for pid, rules in self.rules_for.items()
            for oid in kb.presentations[pid].options
        }
        self.procedures = {
            pid: tuple(o for o in p.options if kb.options[o].kind == "procedure") for pid, p in kb.presentations.items()
        }
        self.effects = {rule.id: tuple((e.option, e.strength) for e in rule.then.options) for rule in kb.rules}
        self.probes = {pid: tuple(self._probes(pid, definitions[pid])) for pid in kb.presentations}
        self.pairs = {pid: tuple(self._pairs(pid, probes)) for pid, probes in self.probes.items()}
        self.option_order = {pid: {o: i for i, o in enumerate(p.options)} for pid, p in kb.presentations.items()}
        # every test of a presentation's rules and definitions, any_of's own clauses included
        self.failing = {
            pid: Failing(_all_tests([*(kb.tests[r.id] for r in rules), *(tests for _, _, tests in kb.definitions[pid].items)]))
            for pid, rules in self.rules_for.items()
        }
        # the bits of everything a rule reads (any_of clauses too), and of every definition's tests
        self.read_bits = {r.id: self.failing[r.presentation].mask(_all_tests([kb.tests[r.id]])) for r in kb.rules}
        self.definition_reach = {
            pid: self.failing[pid].mask(_all_tests([t for _, _, t in kb.definitions[pid].items])) for pid in kb.presentations
        }
        self.naming_bits = {key: self._naming_bits(key[0], rules) for key, rules in self.naming.items()}
        self.definition_bits = {
            pid: tuple((ident, self.failing[pid].mask(tests)) for ident, _, tests in kb.definitions[pid].items)
            for pid in kb.presentations
        }
        # the values a need tries for a detail: one of each group whose own tests fail alike, since
        # they change the same rules (through definitions too: their tests on the detail have bits)
        self.trial_values: dict[tuple[str, str], tuple[Any, ...]] = {}
        for pid, singles in self.probes.items():
            for probe in singles:
                groups: dict[int, Any] = {}
                for value in probe.values:
                    groups.setdefault(self.failing[pid].value_bits(probe.detail.id, value), value)
                self.trial_values[(pid, probe.detail.id)] = tuple(groups.values())
        # by (presentation, detail) and (presentation, detail, detail) for a pair
        self.need_bits = {
            (pid, *(p.detail.id for p in probes)): self._need_bits(pid, probes)
            for pid, singles in self.probes.items()
            for probes in [*((p,) for p in singles), *((first, second) for first, second, _ in self.pairs[pid])]
        }
        # each presentation's rule tests that a named definition should hold: their bits and the definition's tests
        self.openable = {
            pid: tuple(
                {failing.mask((t,)): inner for r in self.rules_for[pid] for t in kb.tests[r.id] if (inner := self._opened(pid, t))}.items()
            )
            for pid, failing in self.failing.items()
        }
        self.clear_fields = {
            fid: tuple(_unique(f for tests in clears for f in conditions.fields(tests))) for fid, clears in kb.flag_clears.items()
        }
        self.used: _Memo = _Memo()  # rule ids -> the fields their basis shows
        self.options: _Memo = _Memo()
        self.option_templates: _Memo = _Memo()  # an option record without the patient's inputs, see _option
        self.flags: _Memo = _Memo()
        self.flag_templates: _Memo = _Memo()  # a flag record without the patient's inputs, see _flags
        self.why: _Memo = _Memo()
        # (option, presentation, withheld by, failing bits read) -> the record: a key and a shared record
        # each, and several keys per record (a 10x knowledge base filled 2,048 and went round evicting)
        self.why_bits: _Memo = _Memo(4 * MEMO_LIMIT)
        self.unmet: _Memo = _Memo(4 * MEMO_LIMIT)  # (rule id, its unmet words) -> its part of a "why not"; small records
        self.words: _Memo = _Memo(4 * MEMO_LIMIT)  # (rule id, bits of its tests that fail) -> its unmet words
        self.basis: _Memo = _Memo()  # (rule ids, extra citations) -> a validated template, see _basis
        self.unmet_steps: dict[int, tuple[tuple[Any, str, Any], ...]] = {}  # see _unmet
        self.needs: _Memo = _Memo(4 * MEMO_LIMIT)  # small records, several plans' worth per presentation
        self.pair_needs: _Memo = _Memo(4 * MEMO_LIMIT)  # its own memo, so pairs never evict single needs
        self.steps: _Memo = _Memo()
        self.passages: _Memo = _Memo()  # (presentations, adult or not) -> the source passages shown
        self._splits: dict[tuple[str, frozenset[str]], tuple[tuple[str, int, int], ...]] = {}

    def _need_bits(self, pid: str, probes: tuple["_Probe", ...]) -> int:
        """The bits of every test a need for these probes' details reads: the affected rules' tests
        and, when a value goes through a definition, every definition's. The need is the same
        whenever these bits and the related rules that fire are (see `_needs`)."""
        found = self.definition_reach[pid] if any(p.via_definition for p in probes) else 0
        for probe in probes:
            for rule in probe.affected:
                found |= self.read_bits[rule.id]
        return found

    def _naming_bits(self, pid: str, rules: tuple[Rule, ...]) -> "_NamingBits":
        failing = self.failing[pid]
        opened: dict[int, list[int]] = {}
        for index, rule in enumerate(rules):
            for test in self.kb.tests[rule.id]:
                if self._opened(pid, test) is not None:
                    opened.setdefault(failing.mask((test,)), []).append(index)
        return _NamingBits(
            tests=tuple(failing.mask(self.kb.tests[r.id]) for r in rules),
            opened={bit: tuple(indices) for bit, indices in opened.items()},
            reach=(reach := tuple(self._reach(pid, self.kb.tests[r.id]) for r in rules)),
            everything=functools.reduce(int.__or__, reach, 0),
        )

    def _reach(self, pid: str, tests: tuple[conditions.Test, ...]) -> int:
        """The bits of these tests and, for each definition they say should hold, of its own tests:
        everything a rule's unmet conditions in words depend on."""
        found = self.failing[pid].mask(tests)
        for test in tests:
            inner = self._opened(pid, test)
            if inner is not None:
                found |= self._reach(pid, inner)
        return found

    def _opened(self, pid: str, test: conditions.Test) -> tuple[conditions.Test, ...] | None:
        """A named definition's tests when `test` says it should hold, else None."""
        inner = self.definition_tests[pid].get(test.field) if isinstance(test, conditions.Clause) else None
        return inner if inner is not None and test.op == "eq" and test.value is True else None

    def splits(self, pid: str, probes: tuple["_Probe", ...]) -> tuple[tuple[str, int, int], ...]:
        """For each rule these probes' details can change: its id, the bits of its tests that no value
        of those details can change (steady) and of the others (varying), through definitions. Worked
        out once per set of details (they come from the knowledge base, so the dict stays bounded)."""
        details = frozenset(p.detail.id for p in probes)
        key = (pid, details)
        found = self._splits.get(key)
        if found is None:
            made = []
            for rule in _unique_rules(r for p in probes for r in p.affected):
                steady: list[Any] = []
                varying: list[Any] = []
                for test in self.kb.tests[rule.id]:
                    reads = _closure(conditions.fields((test,)), self.definition_tests[pid])
                    (varying if details.intersection(reads) else steady).append(test)
                made.append((rule.id, self.failing[pid].mask(steady), self.failing[pid].mask(varying)))
            found = self._splits[key] = tuple(made)
        return found

    def used_fields(self, rule_ids: tuple[str, ...]) -> tuple[str, ...]:
        found = self.used.find(rule_ids)
        if found is None:
            found = self.used.put(rule_ids, tuple(_unique(f for r in rule_ids for f in self.reads[r])))
        return found

    def _probes(self, pid: str, definitions: dict[str, Any]) -> Iterable["_Probe"]:
        """For each detail that decides options: the values worth trying and the rules it can change."""
        for detail in self.kb.details[pid]:
            if not detail.decides or detail.type == "treatments":
                continue
            affected = tuple(r for r in self.rules_for[pid] if detail.id in self.reads[r.id])
            if not affected:
                continue
            if detail.type == "yes_no":
                values: tuple[Any, ...] = (True, False)
            elif detail.type == "choice":
                values = tuple(c.id for c in detail.choices)
            else:
                step = 1 if detail.type == "integer" else 0.5
                found: list[Any] = []
                for rule in affected:
                    for clause in conditions.clauses(self.kb.tests[rule.id]):
                        if clause.field == detail.id and clause.op not in ("missing",):
                            for v in clause.value if isinstance(clause.value, list) else [clause.value]:
                                found += [v - step, v, v + step]
                lo, hi = detail.min, detail.max
                values = tuple(v for v in dict.fromkeys(found) if (lo is None or v >= lo) and (hi is None or v <= hi))
            via = any(detail.id in _closure(conditions.fields(t), definitions) for t in definitions.values())
            ids = frozenset(r.id for r in affected)
            # the answer depends on the fields the affected rules read and on which rules fire that
            # name the same options (they set the strengths a change is measured against)
            named = {oid for r in affected for oid, _ in self.effects[r.id]}
            related = ids | {r.id for oid in named for r in self.naming.get((pid, oid), ())}
            yield _Probe(detail, values, affected, ids, via, frozenset(related))

    def _pairs(self, pid: str, probes: tuple["_Probe", ...]) -> Iterable[tuple["_Probe", "_Probe", frozenset[str]]]:
        """Pairs of deciding details that one rule reads together (through definitions), so that a rule
        needing both is found when both are blank; bounded to PAIR_LIMIT value combinations each."""
        for i, first in enumerate(probes):
            for second in probes[i + 1:]:
                if first.affected_ids & second.affected_ids and len(first.values) * len(second.values) <= PAIR_LIMIT:
                    yield first, second, first.related | second.related

    def cite(self, keys: Iterable[str]) -> tuple[out.CitationRef, ...]:
        return tuple(self.citation[key] for key in dict.fromkeys(keys))


def _words(kb: KnowledgeBase, pid: str) -> conditions.Words:
    """Labels of details, meanings of choices and of named definitions, for "why not" in words."""
    names = {"age_years": "age (years)", "age_months": "age (months)", "age_weeks": "age (weeks)"}
    values: dict[tuple[str, Any], str] = {}
    for detail in kb.details[pid]:
        names[detail.id] = detail.label
        for choice in detail.choices:
            values[(detail.id, choice.id)] = choice.meaning
    for ident, meaning, _ in kb.definitions[pid].items:
        names[ident] = meaning
    for oid, option in kb.options.items():
        names[PRIOR_PREFIX + oid] = f"previous {option.name}"
    return conditions.Words(names, values, frozenset(i for i, _, _ in kb.definitions[pid].items))


@dataclass(frozen=True)
class _NamingBits:
    """For "why not", the rules naming an option (rules/masks.py has the bits):"""

    tests: tuple[int, ...]  # each rule's test bits
    opened: dict[int, tuple[int, ...]]  # the bit of a test that a definition should hold -> the rules with it
    reach: tuple[int, ...]  # each rule's test bits with its definitions' own: all its words depend on
    everything: int  # every rule's reach: all the record depends on


@dataclass(frozen=True)
class _Probe:
    """A detail that decides options, the values worth trying, and the rules it can change."""

    detail: Detail
    values: tuple[Any, ...]
    affected: tuple[Rule, ...]
    affected_ids: frozenset[str]
    via_definition: bool
    related: frozenset[str]  # the affected rules and every other rule naming an option they name


def _all_tests(groups: Iterable[tuple[conditions.Test, ...]]) -> list[conditions.Test]:
    """These tests and the clauses inside their any_of tests."""
    found: list[conditions.Test] = []
    for tests in groups:
        found += tests
        found += (c for t in tests if isinstance(t, conditions.AnyOf) for c in conditions.clauses((t,)))
    return found


def _closure(fields: Iterable[str], definitions: dict[str, Any]) -> tuple[str, ...]:
    """The fields read, through definitions, in a fixed order (a set's order changes with the
    process's hash seed, and "inputs missing" must read the same in every process)."""
    found: dict[str, None] = {}
    todo = list(fields)[::-1]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found[name] = None
        if name in definitions:
            todo.extend(list(conditions.fields(definitions[name]))[::-1])
    return tuple(found)


_DERIVED: dict[int, _Derived] = {}  # by id(kb); each entry holds its kb, so the id cannot be reused
_DERIVED_LOCK = threading.Lock()
_DERIVED_MAX = 8


def _derived(kb: KnowledgeBase) -> _Derived:
    found = _DERIVED.get(id(kb))
    if found is not None and found.kb is kb:
        return found
    with _DERIVED_LOCK:
        found = _DERIVED.get(id(kb))
        if found is None or found.kb is not kb:
            found = _Derived(kb)
            if len(_DERIVED) >= _DERIVED_MAX:
                _DERIVED.pop(next(iter(_DERIVED)))
            _DERIVED[id(kb)] = found
        return found


def forget_records(kb: KnowledgeBase) -> None:
    """Empty the memos of derived records for this knowledge base (benchmarks start them cold)."""
    d = _derived(kb)
    for memo in vars(d).values():
        if isinstance(memo, _Memo):
            memo.clear()
    for failing in d.failing.values():
        failing.forget()


def prepare(kb: KnowledgeBase) -> None:
    """Build what the planner derives from a knowledge base now (a batch does it once before it
    forks its workers, which then share it instead of each building its own)."""
    _derived(kb)


def merge(strengths: Iterable[Strength]) -> Strength:
    """The strength of an option named by several rules (see MERGE_PRIORITY)."""
    return min(strengths, key=_MERGE_RANK.__getitem__)


def _merged(rules: Iterable[Rule]) -> dict[str, Strength]:
    named: dict[str, list[Strength]] = {}
    for rule in rules:
        for effect in rule.then.options:
            named.setdefault(effect.option, []).append(effect.strength)
    return {oid: merge(s) for oid, s in named.items()}


ADULT_YEARS = 18.0  # a passage about children is not shown from this age on, one about adults not before it


def _source_caveats(d: _Derived, presentation: Presentation) -> tuple[out.SourceCaveat, ...]:
    """The passages that apply to this patient: general or for a presentation assessed, and not about
    children for an adult or about adults for a child (with no age given, both show). Each names the
    assessed presentations it belongs to, so that a reader knows why it is there."""
    present = tuple(c.presentation for c in presentation.conditions)
    years = presentation.age.years if presentation.age is not None else None
    adult = None if years is None else years >= ADULT_YEARS
    key = (present, adult)  # all that decides the passages shown
    found = d.passages.find(key)
    if found is None:
        found = d.passages.put(key, _new_source_caveats(d, present, adult))
    return found


def _new_source_caveats(d: _Derived, present: tuple[str, ...], adult: bool | None) -> tuple[out.SourceCaveat, ...]:
    shown = []
    for applies_to, patients, caveat in d.source_caveats:
        belongs = tuple(pid for pid in dict.fromkeys(present) if pid in applies_to)
        if applies_to and not belongs:
            continue
        if adult is not None and (patients == "children" and adult or patients == "adults" and not adult):
            continue
        shown.append(caveat.model_copy(update={"presentations": belongs}) if belongs else caveat)
    return tuple(shown)


def assess(raw: Presentation | dict[str, Any], *, context: tuple[KnowledgeBase, Engine] | None = None,
           why_not: bool = True) -> out.Plan:
    """Assess a presentation. Raises InputError for invalid input, RuleExecutionError if a rule fails.
    `why_not=False` leaves `Plan.why_not` empty and everything else the same, for a caller that never
    shows it (the cohort screen's table)."""
    kb, engine = context or default_context()
    presentation = parse_presentation(raw, kb)
    all_facts = [facts_of(c, presentation, kb) for c in presentation.conditions]
    _check(presentation, kb, all_facts)
    d = _derived(kb)
    parts = [_plan_one(d, engine, cond.presentation, facts, why_not)
             for cond, facts in zip(presentation.conditions, all_facts)]

    steps: list[out.PlanStep] = []
    for part in parts:  # each part's steps are numbered from 1; a second condition's follow on
        offset = len(steps)
        steps += part["steps"] if not offset else [s.model_copy(update={"order": s.order + offset}) for s in part["steps"]]
    options = sorted((o for part in parts for o in part["options"]), key=lambda o: _STRENGTH_RANK[o.strength])
    flags = sorted((f for part in parts for f in part["flags"]), key=_flag_order)
    workup: dict[str, out.Term] = {}
    for step in steps:
        for term in step.workup:
            workup.setdefault(term.id, term)
    return out.Plan(
        presentations=tuple(d.info[c.presentation] for c in presentation.conditions),
        stopped=any(part["stopped"] for part in parts),
        flags=tuple(flags),
        steps=tuple(steps),
        options=tuple(options),
        shared_decisions=tuple(s for part in parts for s in part["shared"]),
        needs=tuple(n for part in parts for n in part["needs"]),
        workup=tuple(workup.values()),
        why_not=tuple(w for part in parts for w in part["why_not"]),
        source_caveats=_source_caveats(d, presentation),
        fired_rules=tuple(r for part in parts for r in part["fired"]),
        knowledge_base=out.KnowledgeBaseStamp(version=kb.version, content_hash=kb.content_hash),
    )


def _flag_order(flag: out.Flag) -> tuple[int, int]:
    return (flag.status != "standing", _SEVERITY_RANK[flag.severity])


def _plan_one(d: _Derived, engine: Engine, pid: str, facts: dict[str, Any], why_not: bool = True) -> dict[str, Any]:
    kb = d.kb
    pdef = kb.presentations[pid]
    facts = _Findings(facts)
    fired = engine.fire(pid, facts)
    rules = [d.rule[r] for r in fired]
    missing = tuple(f for f in d.askable[pid] if f not in facts)

    flags = _flags(d, rules, pid, facts, missing)
    age_flag = _age_flag(d, pid, facts)
    if age_flag is not None:
        flags = sorted([*flags, age_flag], key=_flag_order)
    standing = [f for f in flags if f.status == "standing"]
    stop_flags = [f for f in standing if f.severity == "stop"]
    do_first = [f for f in standing if f.severity == "do_first"]
    cautions = [f for f in standing if f.severity == "caution"]

    by_option: dict[str, list[Rule]] = {}
    steps_of: dict[str, str] = {}
    for rule in rules:
        for effect in rule.then.options:
            by_option.setdefault(effect.option, []).append(rule)
            if effect.step == "first":
                steps_of[effect.option] = "first"
    strengths = _merged(rules)

    options: list[out.PlanOption] = []
    withheld: dict[str, tuple[str, ...]] = {}
    for oid in pdef.options:
        if oid not in strengths:
            continue
        strength = strengths[oid]
        step: out.StepKind = "first" if steps_of.get(oid) == "first" else ("if_that_fails" if strength == "later" else "treatment")
        if stop_flags and strength != "not_indicated" and step != "first":
            # a stop flag withholds the treatment; corrections and first actions go on beside the urgent work-up
            withheld[oid] = tuple(f.id for f in stop_flags)
            continue
        after = tuple(f.id for f in do_first if oid in f.concerns) if step != "first" else ()
        # a caution that concerns the option (e.g. unfit for anaesthesia) keeps it off the top rank
        capped = tuple(f.id for f in cautions if oid in f.concerns) if strength in TOP_RANK else ()
        if capped:
            strength = "alternative"
        options.append(_option(d, oid, pid, strength, step, after, capped, by_option[oid], facts, missing))

    steps = _steps(d, pid, rules, flags, options, stop_flags)
    top = [o.id for o in options if o.step == "treatment" and o.strength in TOP_RANK]
    shared = []
    if len(top) > 1:
        tips = _unique(t for r in rules if r.then.shared_decision for t in r.then.shared_decision.tips) or list(DEFAULT_TIPS)
        shared.append(out.SharedDecision(presentation=pid, options=tuple(top), tips=tuple(tips)))
    failing = d.failing[pid].of(facts)
    unmet = []
    if why_not:
        # a definition that should hold and does not counts its own unmet parts in "why not"
        opened = {bit: len(_unmet(d, pid, inner, facts)) - 1 for bit, inner in d.openable[pid] if failing & bit}
        unmet = [
            _why_not(d, oid, pid, facts, failing, opened, withheld.get(oid, ()))
            for oid in pdef.options if oid not in strengths or oid in withheld
        ]
    needs = [] if stop_flags else _needs(d, pid, facts, failing, set(fired), strengths)
    return {"flags": flags, "options": options, "steps": steps, "shared": shared, "why_not": unmet,
            "needs": needs, "fired": fired, "stopped": bool(stop_flags)}


def _basis(d: _Derived, rules: list[Rule], facts: dict[str, Any], missing: tuple[str, ...], extra: tuple[str, ...] = ()) -> out.Basis:
    # a named definition is shown with the details it rests on, so the basis can be checked
    ids = tuple(r.id for r in rules)
    used = d.used_fields(ids)
    # what the rules alone decide is validated once per set of rules (a template), and each basis
    # is that template with this patient's inputs: building and validating the whole record per
    # option and flag was most of their cost (profile in BENCHMARKS.md)
    template = d.basis.find((ids, extra))
    if template is None:
        template = d.basis.put((ids, extra), out.Basis(
            rule_ids=ids,
            rule_versions={r.id: r.version for r in rules},
            statements=tuple(r.statement for r in rules),
            inputs_used={},
            inputs_missing=(),
            citations=d.cite([*(k for r in rules for k in r.citations), *extra]),
            evidence=tuple(e for r in rules for e in d.evidence[r.id]),
            uncertain=any(r.uncertain for r in rules),
        ))
    inputs_used = {f: facts[f] for f in used if f in facts}
    if not _CACHING[0]:  # the reference path validates every record whole
        return out.Basis(**{**dict(template), "inputs_used": inputs_used, "inputs_missing": missing})
    return template.model_copy(update={"inputs_used": inputs_used, "inputs_missing": tuple(missing)})


def _flags(d: _Derived, rules: list[Rule], pid: str, facts: dict[str, Any], missing: tuple[str, ...]) -> list[out.Flag]:
    kb = d.kb
    raised: dict[str, tuple[list[Rule], list[str]]] = {}
    for rule in rules:
        for effect in rule.then.flags:
            fid = effect.id
            instead = kb.flags[fid].if_not_recorded
            if instead is not None and instead.detail not in facts:  # a blank is not the value the flag asserts
                fid = instead.flag
            entry = raised.setdefault(fid, ([], []))
            entry[0].append(rule)
            entry[1].extend(effect.concerns or d.procedures[pid])
    found = []
    for fid, (flag_rules, concerns) in raised.items():
        ids = tuple(r.id for r in flag_rules)
        key = (fid, pid, ids, tuple(concerns), missing, _pattern(facts, d.used_fields(ids)), _pattern(facts, d.clear_fields[fid]))
        flag = d.flags.find(key)
        if flag is None:
            if not _CACHING[0]:  # the reference path builds and validates every record whole
                flag = _new_flag(d, fid, pid, flag_rules, concerns, facts, missing)
            else:  # as options: a template copied with the patient's inputs
                template_key = (fid, pid, ids, tuple(concerns), _cleared(d, fid, facts))
                template = d.flag_templates.find(template_key)
                if template is None:
                    template = d.flag_templates.put(template_key, _new_flag(d, fid, pid, flag_rules, concerns, facts, ()))
                flag = d.flags.put(key, _with_inputs(d, template, ids, facts, missing))
        found.append(flag)
    return sorted(found, key=_flag_order)


def _age_flag(d: _Derived, pid: str, facts: dict[str, Any]) -> out.Flag | None:
    """The shared caution when the age lies outside the presentation's usual ages (presentation.yaml
    `usual_age`, with its source). It concerns no option, so it changes nothing else in the plan."""
    usual = d.kb.presentations[pid].usual_age
    years = facts.get("age_years")
    if usual is None or years is None or not usual.unusual(years):
        return None
    lo, hi = usual.min_years, usual.max_years
    usual_words = (
        f"{lo:g} years or older" if hi is None else f"up to {hi:g} years" if lo is None else f"{lo:g} to {hi:g} years"
    )
    statement = f"Usual age for {d.kb.presentations[pid].name}: {usual_words}. {usual.note}"
    used = {"age_years": years, **({"diagnosis_confirmed": facts["diagnosis_confirmed"]} if "diagnosis_confirmed" in facts else {})}
    basis = out.Basis(
        rule_ids=(), rule_versions={}, statements=(statement,), inputs_used=used, inputs_missing=(),
        citations=d.cite(usual.citations),
    )
    return _flag(d, AGE_FLAG, pid, facts, concerns=(), workup=d.kb.flags[AGE_FLAG].workup, basis=basis)


def _new_flag(
    d: _Derived, fid: str, pid: str, flag_rules: list[Rule], concerns: list[str], facts: dict[str, Any], missing: tuple[str, ...]
) -> out.Flag:
    workup = _unique([*d.kb.flags[fid].workup, *(w for r in flag_rules for w in r.then.workup)])
    return _flag(d, fid, pid, facts, concerns=_unique(concerns), workup=workup,
                 basis=_basis(d, flag_rules, facts, missing))


def _flag(
    d: _Derived, fid: str, pid: str, facts: dict[str, Any], *, concerns: Iterable[str], workup: Iterable[str], basis: out.Basis
) -> out.Flag:
    """A flag as the vocabulary defines it, standing or cleared by what the facts record."""
    definition = d.kb.flags[fid]
    cleared = _cleared(d, fid, facts)
    return out.Flag(
        id=fid,
        meaning=definition.meaning,
        severity=definition.severity,
        status="cleared" if cleared else "standing",
        presentation=pid,
        concerns=tuple(concerns),
        workup=tuple(d.workup[w] for w in workup),
        cleared_by=(definition.cleared_meaning or "the recorded work-up") if cleared else None,
        basis=basis,
    )


def _cleared(d: _Derived, fid: str, facts: dict[str, Any]) -> bool:
    return any(conditions.holds(tests, facts) for tests in d.kb.flag_clears[fid])


_Record = TypeVar("_Record", out.PlanOption, out.Flag)


def _with_inputs(d: _Derived, template: _Record, ids: tuple[str, ...], facts: dict[str, Any], missing: tuple[str, ...]) -> _Record:
    """A record validated once for its rules, copied with this patient's inputs in its basis (a copy
    costs about a third of a validation)."""
    inputs = {"inputs_used": {f: facts[f] for f in d.used_fields(ids) if f in facts}, "inputs_missing": missing}
    return template.model_copy(update={"basis": template.basis.model_copy(update=inputs)})


def _option(
    d: _Derived, oid: str, pid: str, strength: Strength, step: out.StepKind, after: tuple[str, ...],
    capped: tuple[str, ...], rules: list[Rule], facts: dict[str, Any], missing: tuple[str, ...],
) -> out.PlanOption:
    ids = tuple(r.id for r in rules)
    key = (oid, pid, strength, step, after, capped, ids, missing, _pattern(facts, d.used_fields(ids)))
    found = d.options.find(key)
    if found is None:
        if not _CACHING[0]:  # the reference path builds and validates every record whole
            return _new_option(d, oid, pid, strength, step, after, capped, rules, facts, missing)
        # the same rules and place give the same record but for the patient's inputs in its basis
        template_key = key[:-2]
        template = d.option_templates.find(template_key)
        if template is None:
            template = d.option_templates.put(
                template_key, _new_option(d, oid, pid, strength, step, after, capped, rules, {}, ())
            )
        found = d.options.put(key, _with_inputs(d, template, ids, facts, missing))
    return found


def _new_option(
    d: _Derived, oid: str, pid: str, strength: Strength, step: out.StepKind, after: tuple[str, ...],
    capped: tuple[str, ...], rules: list[Rule], facts: dict[str, Any], missing: tuple[str, ...],
) -> out.PlanOption:
    option = d.kb.options[oid]
    pname = d.kb.presentations[pid].name
    reason = " ".join(_unique(r.statement for r in rules))
    if after:
        reason += " Once the step before is done: " + ", ".join(d.kb.flags[f].meaning for f in after) + "."
    if capped:
        ranked = merge(e.strength for r in rules for e in r.then.options if e.option == oid)  # before the cap
        would = "Would be preferred" if ranked == "preferred" else "Would rank with the top options"
        reason += f" {would}, but not while this stands: " + ", ".join(d.kb.flags[f].meaning for f in capped) + "."
    summary = f"{option.name}: {STRENGTH_WORDS[strength]} ({pname})"
    caveats = {c.text: c for r in rules for c in r.then.caveats}
    return out.PlanOption(
        id=oid,
        name=option.name,
        kind=option.kind,
        procedure_class=option.procedure_class,
        presentation=pid,
        strength=strength,
        step=step,
        summary=summary if len(summary) <= 139 else summary[:138] + "…",
        reason=reason,
        after=after,
        capped_by=capped,
        target_muscle=option.target_muscle,
        approaches=option.approaches,
        risks=d.risks[oid],
        caveats=tuple(d.caveat[id(c)] for c in caveats.values()),
        basis=_basis(d, rules, facts, missing, tuple(option.citations)),
    )


_STEP_TITLES = {
    "urgent": "Stop: urgent action before anything else",
    "first": "Check or correct first",
    "treatment": "Treatment options",
    "if_that_fails": "If that fails",
}


def _steps(
    d: _Derived, pid: str, rules: list[Rule], flags: list[out.Flag], options: list[out.PlanOption], stop_flags: list[out.Flag]
) -> list[out.PlanStep]:
    """The steps, numbered from 1; the same rules, flags and options give the same steps. Within a
    step the options read strongest first (preferred before an alternative)."""
    options = sorted(options, key=lambda o: _STRENGTH_RANK[o.strength])
    key = (
        pid, tuple(r.id for r in rules), tuple((f.id, f.status, f.workup) for f in flags),
        tuple((o.id, o.step, o.strength) for o in options),
    )
    found = d.steps.find(key)
    if found is None:
        found = d.steps.put(key, tuple(_new_steps(d, pid, rules, flags, options, stop_flags)))
    return list(found)


def _new_steps(
    d: _Derived, pid: str, rules: list[Rule], flags: list[out.Flag], options: list[out.PlanOption], stop_flags: list[out.Flag]
) -> list[out.PlanStep]:
    def workup_of(ids: Iterable[str]) -> tuple[out.Term, ...]:
        return tuple(d.workup[w] for w in _unique(ids))

    # a rule whose every flag is cleared has had its work-up: it is not asked for again (the flag stays
    # visible as cleared, with what cleared it); a rule that raises no flag keeps its work-up
    raised: dict[str, bool] = {}
    for flag in flags:
        for rule_id in flag.basis.rule_ids:
            raised[rule_id] = raised.get(rule_id, True) and flag.status == "cleared"
    rule_workup = [w for r in rules if not raised.get(r.id, False) for w in r.then.workup]

    if stop_flags:
        stop_rules = [r for r in rules if any(f.id in {s.id for s in stop_flags} for f in r.then.flags)]
        ids = [t.id for f in stop_flags for t in f.workup] + [w for r in stop_rules for w in r.then.workup]
        steps = [out.PlanStep(order=1, kind="urgent", presentation=pid, title=_STEP_TITLES["urgent"], workup=workup_of(ids))]
        urgent = set(ids)
        rest = [w for w in [*rule_workup, *(t.id for f in flags if f.status == "standing" for t in f.workup)] if w not in urgent]
        first = tuple(o.id for o in options if o.step == "first")
        if first or rest:
            steps.append(out.PlanStep(order=2, kind="first", presentation=pid, title="Meanwhile", workup=workup_of(rest), options=first))
        return steps
    steps = []
    first_workup = rule_workup + [t.id for f in flags if f.status == "standing" for t in f.workup]
    first_options = tuple(o.id for o in options if o.step == "first")
    if first_workup or first_options:
        steps.append(out.PlanStep(order=1, kind="first", presentation=pid, title=_STEP_TITLES["first"], workup=workup_of(first_workup), options=first_options))
    for kind in ("treatment", "if_that_fails"):
        ids = tuple(o.id for o in options if o.step == kind and o.strength != "not_indicated")
        if ids:
            title = _STEP_TITLES[kind] + (" (once the step before is done)" if kind == "treatment" and steps else "")
            steps.append(out.PlanStep(order=len(steps) + 1, kind=kind, presentation=pid, title=title, options=ids))
    return steps


def _needs(
    d: _Derived, pid: str, facts: _Findings, failing: int, fired: set[str], strengths: dict[str, Strength]
) -> list[out.Need]:
    """Details not recorded whose value would change an option's place in the plan.

    Only the rules that read the detail (directly or through a definition) can change, so only
    they are re-evaluated, and only the options they name are merged again. Then, for two blank
    details that a rule reads together and neither of which was found alone, every pair of their
    values is tried: a rule that needs both is otherwise never found (each need names the other).
    A need is kept by what decides it: which of the tests it reads fail (`_Derived._need_bits`) and
    which related rules fire."""
    needs = []
    for probe in d.probes[pid]:
        if probe.detail.id in facts:
            continue
        key = (pid, probe.detail.id, failing & d.need_bits[(pid, probe.detail.id)], frozenset(fired & probe.related))
        need = d.needs.find(key)
        if need is None:
            need = d.needs.put(key, _need(d, pid, (probe,), failing, fired, strengths) or False)
        if need:
            needs.append(need)
    asked = {n.detail for n in needs}
    for first, second, related in d.pairs[pid]:
        if first.detail.id in facts or second.detail.id in facts or first.detail.id in asked or second.detail.id in asked:
            continue
        ids = (pid, first.detail.id, second.detail.id)
        key = (*ids, failing & d.need_bits[ids], frozenset(fired & related))
        pair = d.pair_needs.find(key)
        if pair is None:
            pair = d.pair_needs.put(key, _need(d, pid, (first, second), failing, fired, strengths) or False)
        if pair:
            needs += [n for n in pair if n.detail not in asked]
            asked |= {n.detail for n in pair}
    return needs


def _need(
    d: _Derived, pid: str, probes: tuple["_Probe", ...], failing: int, fired: set[str], strengths: dict[str, Strength],
) -> out.Need | tuple[out.Need, ...] | None:
    """The need for one probe's detail (a Need), or for two details together (a pair of Needs that
    name each other), or None when no value (no pair of values) changes an option. It reads the
    findings only through `failing`, the bits of the tests that do not hold (rules/masks.py)."""
    kb = d.kb
    affected_ids = frozenset().union(*(p.affected_ids for p in probes))
    via = any(p.via_definition for p in probes)
    before = fired & affected_ids
    kept = fired - affected_ids
    # only a rule that fires now, or whose tests on other details all hold, can change with a value
    # of these details, and then only its tests on them can (every affected rule was evaluated
    # whole for every value: most of the needs' cost on a large knowledge base); `failing` has the
    # bits of the tests that do not hold (rules/masks.py)
    candidates = [
        (rule_id, varying) for rule_id, steady, varying in d.splits(pid, probes) if rule_id in before or not steady & failing
    ]
    changed: list[str] = []
    if not candidates:
        return None
    bits = d.failing[pid]
    names = [p.detail.id for p in probes]
    definitions = d.definition_bits[pid] if via else ()
    for values in itertools.product(*(d.trial_values[(pid, name)] for name in names)):
        trial_failing = bits.trial(failing, zip(names, values), definitions)
        after = {rule_id for rule_id, varying in candidates if not varying & trial_failing}
        if after == before:
            continue
        active = kept | after
        for rule_id in before ^ after:
            for oid, _ in d.effects[rule_id]:
                if oid in changed:
                    continue
                named = [st for rule_id in active for o, st in d.effects[rule_id] if o == oid]  # merge is order-free
                if (merge(named) if named else None) != strengths.get(oid):
                    changed.append(oid)
    if not changed:
        return None
    changed.sort(key=d.option_order[pid].__getitem__)
    made = tuple(
        out.Need(
            presentation=pid,
            detail=p.detail.id,
            label=p.detail.label,
            decides=tuple(changed),
            decides_names=tuple(kb.options[o].name for o in changed),
            together_with=tuple(o.detail.id for o in probes if o is not p),
            together_labels=tuple(o.detail.label for o in probes if o is not p),
        )
        for p in probes
    )
    return made[0] if len(probes) == 1 else made


def _unique_rules(rules: Iterable[Rule]) -> Iterator[Rule]:
    seen: set[str] = set()
    for rule in rules:
        if rule.id not in seen:
            seen.add(rule.id)
            yield rule


def _unmet(d: _Derived, pid: str, tests: tuple[conditions.Test, ...], facts: dict[str, Any]) -> list[str]:
    """The conditions that do not hold, in words; a named definition that should hold is opened up
    into its own unmet parts, so "why not" names the detail to look at."""
    steps = d.unmet_steps.get(id(tests))  # the tests' tuples live as long as the knowledge base
    if steps is None:
        steps = d.unmet_steps[id(tests)] = tuple((t.holds, d.described[id(t)], d._opened(pid, t)) for t in tests)
    found: list[str] = []
    for holds, words, inner in steps:
        if holds(facts):
            continue
        if inner is None:
            found.append(words)
        else:
            found += _unmet(d, pid, inner, facts)
    return found


def _words_unmet(d: _Derived, pid: str, rule: Rule, failing: int, facts: dict[str, Any]) -> tuple[str, ...]:
    """A rule's unmet conditions in words, kept by the bits of its tests that fail (they decide them)."""
    key = (rule.id, failing)
    found = d.words.find(key)
    if found is None:
        found = d.words.put(key, tuple(_unmet(d, pid, d.kb.tests[rule.id], facts)))
    return found


def _why_not(
    d: _Derived, oid: str, pid: str, facts: dict[str, Any], failing: int, opened: dict[int, int], withheld: tuple[str, ...]
) -> out.WhyNot:
    # kept by what the record says (the option, what withheld it, each listed rule's unmet
    # conditions in words), not by the findings it was read from: working out the unmet
    # conditions is cheaper than a key of every finding the naming rules read, and far fewer
    # records differ than findings do (profile in BENCHMARKS.md)
    bits = d.naming_bits[(pid, oid)]
    # the record depends on the findings only through the bits of the naming rules' tests (and their
    # definitions') that fail: kept by them, it is found again without counting anything
    early = (oid, pid, withheld, failing & bits.everything)
    record = d.why_bits.find(early)
    if record is not None:
        return record
    rules = d.naming[(pid, oid)]
    # each naming rule's number of unmet conditions from the bits of the tests that fail
    # (rules/masks.py); a definition that should hold counts its own unmet parts (`opened`)
    counts = [(mask & failing).bit_count() for mask in bits.tests]
    for bit, extra in opened.items():
        for index in bits.opened.get(bit, ()):
            counts[index] += extra
    order = sorted(range(len(counts)), key=counts.__getitem__)  # stable: rule-file order among equals
    holding = counts.count(0)  # these rules hold: nothing to say
    nearest = order[holding:holding + WHY_NOT_RULES]
    unmet = tuple((rules[i], _words_unmet(d, pid, rules[i], bits.reach[i] & failing, facts)) for i in nearest)
    further = len(counts) - holding - len(unmet)
    key = (oid, pid, withheld, tuple((r.id, found) for r, found in unmet), further)
    record = d.why.find(key)
    if record is None:
        record = d.why.put(key, _new_why_not(d, oid, pid, withheld, unmet, further))
    return d.why_bits.put(early, record)


def _new_why_not(
    d: _Derived, oid: str, pid: str, withheld: tuple[str, ...], unmet: tuple[tuple[Rule, tuple[str, ...]], ...],
    further: int,
) -> out.WhyNot:
    rules = []
    for r, found in unmet:  # one rule's part recurs in many records (10x knowledge base: most of their cost)
        part = d.unmet.find((r.id, found))
        if part is None:
            part = d.unmet.put((r.id, found), out.UnmetRule(rule_id=r.id, statement=r.statement, unmet=found))
        rules.append(part)
    return out.WhyNot(
        option=oid, name=d.kb.options[oid].name, presentation=pid, withheld_by=withheld, rules=tuple(rules),
        further_rules=further,
    )
