"""The achalasia decision three ways: the product's engine, CLIPS (clipspy), plain Python `if`s.

The decision step alone: the same plain dict of findings in (what `facts_of` hands the engine),
the options the rules name out, each with its strength after merging (several rules may name one
option; `rules.planner.merge` keeps one strength), as sorted (option, strength) pairs. Input
validation and the rest of the plan (flags withholding or capping options, steps, needs, why not)
are left out of all three.
- product: `Engine.fire("achalasia", findings)`, the fired rules' `then.options` merged as the
  planner merges them;
- CLIPS: the same eleven rules translated by hand (benchmarks/achalasia.clp), merging included,
  one deffunction call that resets, asserts the findings, runs and collects the options;
- floor: the same eleven rules as Python `if` statements, written for this decision only.
Before any timing, all three must give the same options and strengths for every generated input,
and CLIPS the same fired rules and raised flags as the product's engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import clips

from models.loader import KnowledgeBase
from rules.engine import Engine
from rules.planner import merge

CLP = Path(__file__).resolve().parent / "achalasia.clp"
# the order of the arguments of `decide` in achalasia.clp
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
    "prior_pneumatic_dilation",
    "prior_botulinum_toxin_injection",
    "prior_heller_myotomy_fundoplication",
)
PRESENTATION = "achalasia"
Options = tuple[tuple[str, str], ...]
Decide = Callable[[dict[str, Any]], Options]


def product(kb: KnowledgeBase, engine: Engine) -> Decide:
    effects = {r.id: tuple((e.option, e.strength) for e in r.then.options) for r in kb.rules_for(PRESENTATION)}
    fire = engine.fire

    def decide(findings: dict[str, Any]) -> Options:
        named: dict[str, list[str]] = {}
        for rule_id in fire(PRESENTATION, findings):
            for option, strength in effects[rule_id]:
                named.setdefault(option, []).append(strength)
        return tuple(sorted((option, merge(strengths)) for option, strengths in named.items()))  # type: ignore[arg-type]

    return decide


def flags_raised(kb: KnowledgeBase, engine: Engine, findings: dict[str, Any]) -> set[str]:
    """The flags the product's fired rules raise (for the agreement check, not timed)."""
    rules = {r.id: r for r in kb.rules_for(PRESENTATION)}
    return {f.id for rule_id in engine.fire(PRESENTATION, findings) for f in rules[rule_id].then.flags}


class Clips:
    """One CLIPS environment holding the translated rules."""

    def __init__(self) -> None:
        self.env = clips.Environment()
        self.env.load(str(CLP))
        self._decide = self.env.find_function("decide")
        self._fired = self.env.find_function("fired-rules")
        self._flags = self.env.find_function("raised-flags")
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


_FAILED = ("failed", "partial_response")
_RANK = {"not_indicated": 0, "later": 1, "preferred": 2, "equivalent": 3, "alternative": 4}


def floor(findings: dict[str, Any]) -> Options:
    """The eleven achalasia rules as `if` statements (the flag-only rules are evaluated too)."""
    get = findings.get
    named: dict[str, str] = {}
    flags: list[str] = []

    def name(option: str, strength: str) -> None:
        if option not in named or _RANK[strength] < _RANK[named[option]]:
            named[option] = strength

    confirmed = get("diagnosis_confirmed") is True
    subtype = get("subtype")
    not_sigmoid = get("sigmoid_esophagus") is not True
    age = get("age_years")
    if not confirmed:
        flags.append("diagnosis_not_confirmed")
    if get("malignancy_excluded") is not True:
        flags.append("malignancy_not_excluded")
    if (age is not None and age >= 60) or get("rapid_weight_loss") is True or get("difficult_gej_passage") is True:
        flags.append("possible_pseudoachalasia")
    if get("opioid_use") is True:
        name("opioid_withdrawal", "preferred")
        flags.append("opioid_effect_not_excluded")
    if confirmed and subtype is None and not_sigmoid:
        pass  # work-up only: classify the subtype
    if confirmed and subtype == "type_iii":
        name("poem", "preferred")
        name("heller_myotomy_fundoplication", "alternative")
    if confirmed and subtype in ("type_i", "type_ii") and not_sigmoid:
        name("poem", "alternative")
        name("heller_myotomy_fundoplication", "alternative")
        name("pneumatic_dilation", "alternative")
    if confirmed and (get("prior_pneumatic_dilation") in _FAILED or get("prior_botulinum_toxin_injection") in _FAILED):
        name("heller_myotomy_fundoplication", "alternative")
        name("poem", "alternative")
    if confirmed and get("prior_heller_myotomy_fundoplication") in _FAILED:
        name("poem", "preferred")
        name("pneumatic_dilation", "alternative")
    if get("operative_risk") == "high":
        name("botulinum_toxin_injection", "alternative")
        flags.append("high_operative_risk")
    if confirmed and not not_sigmoid:
        name("heller_myotomy_fundoplication", "alternative")
        name("esophagectomy", "alternative")
        flags.append("specialist_mdt_decision")
    return tuple(sorted(named.items()))


def check(kb: KnowledgeBase, engine: Engine, peer: Clips, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    """All three agree on every input, CLIPS fires the product's rules and raises its flags, and
    every rule fires somewhere in the inputs; raises AssertionError naming the first input that
    disagrees."""
    ours = product(kb, engine)
    fired_somewhere: set[str] = set()
    outcomes: set[Options] = set()
    for findings in inputs:
        expected = ours(findings)
        got_clips = peer.decide(findings)
        got_floor = floor(findings)
        if not (expected == got_clips == got_floor):
            raise AssertionError(
                f"decisions differ for {findings}: product {expected}, CLIPS {got_clips}, Python {got_floor}"
            )
        rules = set(engine.fire(PRESENTATION, findings))
        if peer.fired_rules() != rules:
            raise AssertionError(f"fired rules differ for {findings}: product {sorted(rules)}, CLIPS {sorted(peer.fired_rules())}")
        flags = flags_raised(kb, engine, findings)
        if peer.raised_flags() != flags:
            raise AssertionError(f"flags differ for {findings}: product {sorted(flags)}, CLIPS {sorted(peer.raised_flags())}")
        fired_somewhere |= rules
        outcomes.add(expected)
    unfired = {r.id for r in kb.rules_for(PRESENTATION)} - fired_somewhere
    if unfired:
        raise AssertionError(f"no generated input fires {sorted(unfired)}; the check would not cover them")
    return {"inputs": len(inputs), "rules": len(kb.rules_for(PRESENTATION)), "outcomes": sorted(outcomes)}
