"""The achalasia decision three ways: the product's engine, CLIPS (clipspy), plain Python `if`s.

The decision step alone: the same plain dict of recorded findings in (what `facts_of` hands the
engine, without the named definitions, which each contender works out itself), the options the
rules name out, each with its strength after merging (several rules may name one option;
the planner keeps one by MERGE_PRIORITY), as sorted (option, strength) pairs. Input validation and
the rest of the plan (flags withholding or capping options, steps, needs, why not) are left out of
all three.
- product: the presentation's named definitions applied as `facts_of` applies them, then
  `Engine.fire("achalasia", findings)`, the fired rules' `then.options` merged as the planner
  merges them;
- CLIPS: the same 19 rules and 5 definitions translated by hand (benchmarks/achalasia.clp),
  merging included, one deffunction call that resets, asserts the findings, runs and collects;
- floor: the same rules and definitions as Python `if` statements, written for this decision only;
  it also lists the rules it fired and the flags they raise.
Before any timing, all three must give the same options and strengths for every generated input,
and CLIPS and the floor the same fired rules and raised flags as the product's engine
(tests/test_decision_translations.py checks the same on every teaching case, so a changed rule
that is not translated again fails a test, not only the benchmark).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import clips

from models.knowledge import MERGE_PRIORITY
from models.loader import KnowledgeBase
from rules.engine import Engine

CLP = Path(__file__).resolve().parent / "achalasia.clp"
# the order of the arguments of `decide` in achalasia.clp: every finding the rules read
SLOTS = (
    "diagnosis_confirmed",
    "malignancy_excluded",
    "subtype",
    "operative_risk",
    "sigmoid_esophagus",
    "rapid_weight_loss",
    "difficult_gej_passage",
    "opioid_use",
    "age_years",
    "symptom_duration_months",
    "reflux_or_hiatal_hernia",
    "prior_pneumatic_dilation",
    "prior_botulinum_toxin_injection",
    "prior_heller_myotomy_fundoplication",
    "prior_poem",
)
PRESENTATION = "achalasia"
Options = tuple[tuple[str, str], ...]
Decide = Callable[[dict[str, Any]], Options]


def recorded(kb: KnowledgeBase, facts: dict[str, Any]) -> dict[str, Any]:
    """`facts_of`'s findings without the named definitions: what each contender starts from."""
    names = {ident for ident, _, _ in kb.definitions[PRESENTATION].items}
    return {k: v for k, v in facts.items() if k not in names}


def product(kb: KnowledgeBase, engine: Engine) -> Decide:
    effects = {r.id: tuple((e.option, e.strength) for e in r.then.options) for r in kb.rules_for(PRESENTATION)}
    fire = engine.fire
    apply = kb.definitions[PRESENTATION].apply
    rank = {s: i for i, s in enumerate(MERGE_PRIORITY)}

    def decide(findings: dict[str, Any]) -> Options:
        facts = dict(findings)
        apply(facts)
        named: dict[str, str] = {}
        for rule_id in fire(PRESENTATION, facts):
            for option, strength in effects[rule_id]:
                if option not in named or rank[strength] < rank[named[option]]:
                    named[option] = strength  # the planner's merge: MERGE_PRIORITY, first wins a tie
        return tuple(sorted(named.items()))

    return decide


def product_fired(kb: KnowledgeBase, engine: Engine, findings: dict[str, Any]) -> tuple[set[str], set[str], set[str]]:
    """The rules the product fires, the flags they raise and the definitions that hold (not timed)."""
    facts = dict(findings)
    kb.definitions[PRESENTATION].apply(facts)
    rules = {r.id: r for r in kb.rules_for(PRESENTATION)}
    fired = engine.fire(PRESENTATION, facts)
    held = {ident for ident, _, _ in kb.definitions[PRESENTATION].items if facts[ident]}
    return set(fired), {f.id for rule_id in fired for f in rules[rule_id].then.flags}, held


class Clips:
    """One CLIPS environment holding the translated rules."""

    def __init__(self) -> None:
        self.env = clips.Environment()
        self.env.load(str(CLP))
        self._decide = self.env.find_function("decide")
        self._fired = self.env.find_function("fired-rules")
        self._flags = self.env.find_function("raised-flags")
        self._held = self.env.find_function("held-definitions")
        nil, true, false = clips.Symbol("nil"), clips.Symbol("TRUE"), clips.Symbol("FALSE")
        symbol = clips.Symbol

        def value(v: Any) -> Any:
            if v is None:
                return nil
            if v is True:
                return true
            if v is False:
                return false
            if isinstance(v, str):
                return symbol(v)
            return v

        call = self._decide

        def decide(findings: dict[str, Any]) -> Options:
            get = findings.get
            flat = call(*[value(get(slot)) for slot in SLOTS])
            return tuple(sorted((str(flat[i]), str(flat[i + 1])) for i in range(0, len(flat), 2)))

        self.decide = decide

    def fired_rules(self) -> set[str]:
        """The rules the last decision fired."""
        return {str(name) for name in self._fired()}

    def raised_flags(self) -> set[str]:
        """The flags the last decision raised."""
        return {str(name) for name in self._flags()}

    def held_definitions(self) -> set[str]:
        """The named definitions that held in the last decision."""
        return {str(name) for name in self._held()}


_FAILED = ("failed", "partial_response")
_RANK = {"not_indicated": 0, "later": 1, "preferred": 2, "equivalent": 3, "alternative": 4}


def _name(named: dict[str, str], option: str, strength: str) -> None:
    if option not in named or _RANK[strength] < _RANK[named[option]]:
        named[option] = strength


def floor(findings: dict[str, Any]) -> tuple[Options, list[str], list[str]]:
    """The 19 achalasia rules and their 5 definitions as `if` statements: the merged options, the
    rules fired and the flags raised. A comparison on an absent finding is false, as in the product."""
    get = findings.get
    named: dict[str, str] = {}
    fired: list[str] = []
    flags: list[str] = []
    # named definitions
    heller, poem = get("prior_heller_myotomy_fundoplication"), get("prior_poem")
    previous_myotomy_failed = heller in _FAILED or poem in _FAILED
    confirmed = get("diagnosis_confirmed") is True
    subtype = get("subtype")
    sigmoid = get("sigmoid_esophagus") is True
    first_therapy = confirmed and not sigmoid and not previous_myotomy_failed
    classic = first_therapy and subtype in ("type_i", "type_ii")
    spastic = first_therapy and subtype == "type_iii"
    age = get("age_years")
    younger_than_40 = age is not None and age < 40
    reflux = get("reflux_or_hiatal_hernia") is True
    # rules, in file order
    if not confirmed:
        fired.append("achalasia_diagnosis_not_confirmed_needs_manometry")
        flags.append("diagnosis_not_confirmed")
    if get("malignancy_excluded") is not True:
        fired.append("achalasia_malignancy_not_excluded_needs_endoscopy")
        flags.append("malignancy_not_excluded")
    months = get("symptom_duration_months")
    if ((age is not None and age >= 60) or (months is not None and months < 12)
            or get("rapid_weight_loss") is True or get("difficult_gej_passage") is True):
        fired.append("achalasia_features_of_pseudoachalasia")
        flags.append("possible_pseudoachalasia")
    if get("opioid_use") is True:
        fired.append("achalasia_opioid_use_repeat_manometry_off_opioids")
        _name(named, "opioid_withdrawal", "preferred")
        flags.append("opioid_effect_not_excluded")
    if confirmed and subtype is None and not sigmoid:
        fired.append("achalasia_subtype_unknown_needs_classification")  # work-up only
    if spastic:
        fired.append("achalasia_type_iii_prefers_poem")
        _name(named, "poem", "preferred")
        _name(named, "heller_myotomy_fundoplication", "alternative")
        if reflux:
            fired.append("achalasia_type_iii_with_reflux_counsel")
            _name(named, "poem", "preferred")
    if classic:
        fired.append("achalasia_type_i_ii_heller_myotomy_comparable")
        _name(named, "heller_myotomy_fundoplication", "equivalent")
        if reflux:
            fired.append("achalasia_type_i_ii_reflux_favours_heller_with_fundoplication")
            _name(named, "poem", "alternative")
            _name(named, "heller_myotomy_fundoplication", "equivalent")
        else:
            fired.append("achalasia_type_i_ii_poem_comparable")
            _name(named, "poem", "equivalent")
        if younger_than_40:
            fired.append("achalasia_younger_patient_dilation_less_durable")
            _name(named, "pneumatic_dilation", "alternative")
        elif get("prior_pneumatic_dilation") != "failed":
            fired.append("achalasia_type_i_ii_dilation_comparable")
            _name(named, "pneumatic_dilation", "equivalent")
    if confirmed and subtype != "type_iii" and (
        get("prior_pneumatic_dilation") in _FAILED or get("prior_botulinum_toxin_injection") in _FAILED
    ):
        fired.append("achalasia_failed_dilation_or_toxin_myotomy")
        _name(named, "heller_myotomy_fundoplication", "equivalent")
        _name(named, "poem", "equivalent")
    if confirmed and heller in _FAILED:
        fired.append("achalasia_failed_heller_poem_or_dilation")
        _name(named, "poem", "preferred")
        _name(named, "pneumatic_dilation", "alternative")
    if confirmed and poem in _FAILED:
        fired.append("achalasia_failed_poem_redo_myotomy")
        _name(named, "poem", "equivalent")
        _name(named, "heller_myotomy_fundoplication", "equivalent")
        _name(named, "pneumatic_dilation", "alternative")
    if get("operative_risk") == "high":
        fired.append("achalasia_unfit_botulinum_toxin_first")
        _name(named, "botulinum_toxin_injection", "preferred")
        _name(named, "pneumatic_dilation", "not_indicated")
        flags.append("high_operative_risk")
    if confirmed and sigmoid:
        fired.append("achalasia_sigmoid_end_stage_specialist_decision")
        _name(named, "heller_myotomy_fundoplication", "equivalent")
        _name(named, "esophagectomy", "later")
        flags.append("specialist_mdt_decision")
        fired.append("achalasia_sigmoid_poem_option")
        _name(named, "poem", "equivalent")
    if age is not None and age < 18:
        fired.append("achalasia_child_adult_guideline_specialist_review")
        flags.append("adult_guideline_in_child")
    return tuple(sorted(named.items())), fired, flags


def disagreement(kb: KnowledgeBase, engine: Engine, peer: Clips, findings: dict[str, Any]) -> str | None:
    """What the three disagree on for these findings (recorded, without definitions), or None."""
    expected = product(kb, engine)(findings)
    got_clips = peer.decide(findings)
    got_floor, floor_fired, floor_flags = floor(findings)
    if not (expected == got_clips == got_floor):
        return f"decisions differ for {findings}: product {expected}, CLIPS {got_clips}, Python {got_floor}"
    rules, flags, held = product_fired(kb, engine, findings)
    for who, (got_rules, got_flags) in (("CLIPS", (peer.fired_rules(), peer.raised_flags())),
                                        ("Python", (set(floor_fired), set(floor_flags)))):
        if got_rules != rules:
            return f"fired rules differ for {findings}: product {sorted(rules)}, {who} {sorted(got_rules)}"
        if got_flags != flags:
            return f"flags differ for {findings}: product {sorted(flags)}, {who} {sorted(got_flags)}"
    if peer.held_definitions() != held:
        return f"definitions differ for {findings}: product {sorted(held)}, CLIPS {sorted(peer.held_definitions())}"
    return None


def check(kb: KnowledgeBase, engine: Engine, peer: Clips, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    """All three agree on every input (options, fired rules, flags), and every rule fires somewhere
    in the inputs; raises AssertionError naming the first input that disagrees."""
    unknown = set(SLOTS) ^ read_fields(kb)
    if unknown:
        raise AssertionError(f"the translations read other findings than the rules: {sorted(unknown)}")
    ours = product(kb, engine)
    fired_somewhere: set[str] = set()
    outcomes: set[Options] = set()
    for findings in inputs:
        problem = disagreement(kb, engine, peer, findings)
        if problem is not None:
            raise AssertionError(problem)
        fired_somewhere |= product_fired(kb, engine, findings)[0]
        outcomes.add(ours(findings))
    unfired = {r.id for r in kb.rules_for(PRESENTATION)} - fired_somewhere
    if unfired:
        raise AssertionError(f"no generated input fires {sorted(unfired)}; the check would not cover them")
    return {"inputs": len(inputs), "rules": len(kb.rules_for(PRESENTATION)), "outcomes": sorted(outcomes)}


def read_fields(kb: KnowledgeBase) -> set[str]:
    """Every recorded finding the achalasia rules read, through their definitions."""
    from models import conditions

    definitions = {ident: tests for ident, _, tests in kb.definitions[PRESENTATION].items}
    found: set[str] = set()
    todo = [f for r in kb.rules_for(PRESENTATION) for f in conditions.fields(kb.tests[r.id])]
    while todo:
        name = todo.pop()
        if name in definitions:
            todo.extend(conditions.fields(definitions[name]))
        else:
            found.add(name)
    return found
