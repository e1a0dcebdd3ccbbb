"""The achalasia decision three ways: the product's engine, CLIPS (clipspy), plain Python `if`s.

The decision step alone: the same plain dict of findings in (what `facts_of` hands the engine),
the sorted procedure ids out. Input validation and report building are left out of all three.
- product: `Engine.fire("achalasia", findings)`, the fired rule ids mapped to the procedures their
  `then.suggest` names;
- CLIPS: the same eleven rules translated by hand (benchmarks/achalasia.clp), one deffunction
  call that resets, asserts the findings, runs and collects the suggestions;
- floor: the same eleven rules as Python `if` statements, written for this decision only.
Before any timing, all three must give the same procedures for every generated input, and CLIPS
the same fired rules as the product's engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import clips

from rules.engine import Engine
from rules.knowledge_base import KnowledgeBase

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
Decide = Callable[[dict[str, Any]], tuple[str, ...]]


def product(kb: KnowledgeBase, engine: Engine) -> Decide:
    suggests = {r.id: tuple(s.procedure for s in r.then.suggest) for r in kb.rules_for(PRESENTATION)}
    fire = engine.fire

    def decide(findings: dict[str, Any]) -> tuple[str, ...]:
        return tuple(sorted({p for rule_id in fire(PRESENTATION, findings) for p in suggests[rule_id]}))

    return decide


class Clips:
    """One CLIPS environment holding the translated rules."""

    def __init__(self) -> None:
        self.env = clips.Environment()
        self.env.load(str(CLP))
        self._decide = self.env.find_function("decide")
        self._fired = self.env.find_function("fired-rules")
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

        def decide(findings: dict[str, Any]) -> tuple[str, ...]:
            get = findings.get
            return tuple(sorted(call(*[value(get(slot)) for slot in SLOTS])))

        self.decide = decide

    def fired_rules(self) -> set[str]:
        """The rules the last decision fired."""
        return {str(name) for name in self._fired()}


_FAILED = ("failed", "partial_response")


def floor(findings: dict[str, Any]) -> tuple[str, ...]:
    """The eleven achalasia rules as `if` statements (the red-flag rules are evaluated too)."""
    get = findings.get
    procedures: set[str] = set()
    flags: list[str] = []
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
        flags.append("opioid_effect_not_excluded")
    if confirmed and subtype is None and not_sigmoid:
        flags.append("subtype_unknown")
    if confirmed and subtype == "type_iii":
        procedures.update(("poem", "heller_myotomy_fundoplication"))
    if confirmed and subtype in ("type_i", "type_ii") and not_sigmoid:
        procedures.update(("poem", "heller_myotomy_fundoplication"))
    if confirmed and (get("prior_pneumatic_dilation") in _FAILED or get("prior_botulinum_toxin_injection") in _FAILED):
        procedures.update(("heller_myotomy_fundoplication", "poem"))
    if confirmed and get("prior_heller_myotomy_fundoplication") in _FAILED:
        procedures.add("poem")
    if get("operative_risk") == "high":
        flags.append("high_operative_risk")
    if confirmed and not not_sigmoid:
        procedures.add("heller_myotomy_fundoplication")
    return tuple(sorted(procedures))


def check(kb: KnowledgeBase, engine: Engine, peer: Clips, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    """All three agree on every input, CLIPS fires the product's rules, and every rule fires
    somewhere in the inputs; raises AssertionError naming the first input that disagrees."""
    ours = product(kb, engine)
    fired_somewhere: set[str] = set()
    outcomes: set[tuple[str, ...]] = set()
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
        fired_somewhere |= rules
        outcomes.add(expected)
    unfired = {r.id for r in kb.rules_for(PRESENTATION)} - fired_somewhere
    if unfired:
        raise AssertionError(f"no generated input fires {sorted(unfired)}; the check would not cover them")
    return {"inputs": len(inputs), "rules": len(kb.rules_for(PRESENTATION)), "outcomes": sorted(outcomes)}
