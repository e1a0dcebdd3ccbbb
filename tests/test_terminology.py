"""The terminology module (models/terminology.py) and the value sets in data.

Every presentation must be reachable from at least one SNOMED CT and one ICD-10-CM code, unless it is
named below with the reason: a code is listed only when it was verified with the search tool (the
`source` of each entry), never invented.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from models.loader import load
from models.terminology import (
    ICD10_WHO,
    ICD10CM,
    SNOMED_CT,
    Mapped,
    Terminology,
    Unmapped,
    markdown_table,
)

KB = load()
TERMS = Terminology(KB.presentations)
README = Path(__file__).resolve().parent.parent / "README.md"

NO_VERIFIED = "no code could be verified with the search tool; none is invented"
K225 = (
    "its only ICD-10-CM code, K22.5 (diverticulum of oesophagus, acquired), covers Zenker and epiphrenic "
    "diverticula alike, so it maps to neither; no more specific ICD-10-CM code was found"
)
# presentation -> reason it has no SNOMED CT code that maps to it alone
NO_SNOMED = {
    "arthrogryposis_contracture": NO_VERIFIED + " (the IPS free set has only contracture of multiple joints 202264009, which is wider)",
    "chronic_anal_fissure": NO_VERIFIED + " (anal fissure 30037006 was found, but an unspecified fissure is not the chronic one)",
    "congenital_muscular_torticollis": NO_VERIFIED + " (torticollis 70070008 and congenital torticollis 268240006 were found; both include non-muscular causes)",
    "cosmetic_face_neck_request": "a request, not a diagnosis; " + NO_VERIFIED,
    "cp_hip_displacement": NO_VERIFIED,
    "cricopharyngeal_dysfunction": NO_VERIFIED,
    "duchenne_contracture": NO_VERIFIED + " (the IPS free set has muscular dystrophy 73297009, which is wider)",
    "egj_outflow_obstruction": NO_VERIFIED,
    "epiphrenic_diverticulum": NO_VERIFIED,
    "hypercontractile_esophagus": NO_VERIFIED,
    "idiopathic_toe_walking": NO_VERIFIED,
    "internal_anal_sphincter_achalasia": NO_VERIFIED + " (no code search was done in the time given)",
    "muscle_contracture": NO_VERIFIED + " (the IPS free set has joint and tendon contractures, not a contracture of muscle)",
    "volkmann_ischaemic_contracture": NO_VERIFIED,
}
# presentation -> reason it has no ICD-10-CM code that maps to it alone
NO_ICD10CM = {
    "cosmetic_face_neck_request": "a request, not a diagnosis; " + NO_VERIFIED,
    "cp_hip_displacement": "ICD-10-CM codes cerebral palsy and hip displacement separately; " + NO_VERIFIED,
    "duchenne_contracture": "Duchenne muscular dystrophy and a contracture are coded separately (the code list read has G71.0 muscular dystrophy, wider); " + NO_VERIFIED,
    "cricopharyngeal_dysfunction": "the clinical brief says there is no specific code (dysphagia R13.1- is a symptom)",
    "egj_outflow_obstruction": "a manometric (Chicago v4.0) diagnosis; " + NO_VERIFIED,
    "epiphrenic_diverticulum": K225,
    "hypercontractile_esophagus": "K22.4 (dyskinesia of oesophagus) is listed for distal oesophageal spasm, as the brief gives it; " + NO_VERIFIED,
    "idiopathic_toe_walking": NO_VERIFIED,
    "internal_anal_sphincter_achalasia": NO_VERIFIED + " (no code search was done in the time given)",
    "laryngeal_dystonia_adductor": "the brief's J38.3 (other diseases of vocal cords) is wider than the presentation; " + NO_VERIFIED,
    "volkmann_ischaemic_contracture": "T79.6 (traumatic ischaemia of muscle) names the acute injury, not the contracture; " + NO_VERIFIED,
    "zenker_diverticulum": K225,
}


def _reachable(system: str) -> set[str]:
    return {p for item in TERMS.listings() if item.system == system and len(item.presentations) == 1 for p in item.presentations}


@pytest.mark.parametrize(("system", "exempt"), [(SNOMED_CT, NO_SNOMED), (ICD10CM, NO_ICD10CM)], ids=["snomed", "icd10cm"])
def test_every_presentation_is_reachable_or_exempt_with_a_reason(system: str, exempt: dict[str, str]) -> None:
    reachable = _reachable(system)
    missing = sorted(set(KB.presentations) - reachable - set(exempt))
    assert not missing, f"no {system} code reaches {missing}: verify one, or exempt it here with the reason"
    stale = sorted(set(exempt) & reachable)
    assert not stale, f"{stale} are reachable now: take them off the exemption list"
    assert set(exempt) <= set(KB.presentations) and all(len(r) > 20 for r in exempt.values())


def test_every_listed_code_names_where_it_was_verified() -> None:
    for pdef in KB.presentations.values():
        for entry in (*pdef.codes.snomed, *pdef.codes.icd10cm, *pdef.codes.icd10_who):
            source = entry.source
            assert (
                source.startswith(("http://", "https://"))
                or source in KB.citations
                or source.startswith("listed before the terminology module")
            ), f"{pdef.id}: {entry.code} has source {source!r}, neither a citation key nor a URL"


def test_systems_are_matched_by_uri_or_oid_and_never_guessed() -> None:
    achalasia = Mapped("achalasia", "SNOMED CT 45564002")
    assert TERMS.resolve([(SNOMED_CT, "45564002")]) == achalasia
    assert TERMS.resolve([("urn:oid:2.16.840.1.113883.6.96", "45564002")]) == achalasia
    assert TERMS.resolve([("urn:oid:2.16.840.1.113883.6.90", "K22.0")]) == Mapped("achalasia", "ICD-10-CM K22.0")
    assert TERMS.resolve([(ICD10_WHO, "K22.0")]) == Mapped("achalasia", "ICD-10 (WHO) K22.0")
    assert TERMS.resolve([("urn:oid:2.16.840.1.113883.6.3", "K22.0")]).presentation == "achalasia"
    for codings in ([(None, "K22.0")], [("", "45564002")], [("http://loinc.org", "K22.0")], [(ICD10CM, "45564002")]):
        assert isinstance(TERMS.resolve(codings), Unmapped), codings


def test_issue_codes_map_as_decided() -> None:
    """H50.9 -> strabismus; G80.1 spastic diplegic CP -> spasticity; K22.5 -> none (Zenker or epiphrenic)."""
    assert TERMS.resolve([(ICD10CM, "H50.9")]) == Mapped("strabismus", "ICD-10-CM H50.9")
    assert TERMS.resolve([(SNOMED_CT, "22066006")]).presentation == "strabismus"
    assert TERMS.resolve([(ICD10CM, "G80.1")]) == Mapped("spasticity", "ICD-10-CM G80.1")
    assert isinstance(TERMS.resolve([(SNOMED_CT, "128188000")]), Unmapped)  # CP of any type is not spasticity
    ambiguous = TERMS.resolve([(ICD10CM, "K22.5")])
    assert isinstance(ambiguous, Unmapped) and "more than one presentation" in ambiguous.reason
    assert TERMS.resolve([(ICD10CM, "K22.5"), (SNOMED_CT, "399291005")]).reason  # still ambiguous with K22.5 in it


def test_obstructive_hcm_is_reachable_from_its_snomed_code_only() -> None:
    """45227007 (DICOM CID 3700) names the obstructive form; the non-obstructive 195020003 is not listed."""
    assert TERMS.resolve([(SNOMED_CT, "45227007")]) == Mapped("hypertrophic_obstructive_cardiomyopathy", "SNOMED CT 45227007")
    assert isinstance(TERMS.resolve([(SNOMED_CT, "195020003")]), Unmapped)


@pytest.mark.parametrize(
    ("system", "code", "pid"),
    [
        (SNOMED_CT, "74333002", "cervical_dystonia"),  # Spasmodic torticollis (IPS free set)
        (SNOMED_CT, "59026006", "benign_essential_blepharospasm"),  # Blepharospasm
        (SNOMED_CT, "397932003", "clubfoot"),  # Talipes equinovarus
        (SNOMED_CT, "79962008", "distal_esophageal_spasm"),  # Diffuse spasm of esophagus
        (SNOMED_CT, "29003001", "laryngeal_dystonia_adductor"),  # Spastic dysphonia
        (ICD10CM, "M62.461", "muscle_contracture"),  # Contracture of muscle, right lower leg
        (ICD10CM, "M62.40", "muscle_contracture"),
    ],
)
def test_codes_verified_in_the_second_pass_map_to_their_presentation(system: str, code: str, pid: str) -> None:
    assert TERMS.resolve([(system, code)]) == Mapped(pid, f"{'SNOMED CT' if system == SNOMED_CT else 'ICD-10-CM'} {code}")


def test_wider_codes_seen_in_the_sources_are_not_listed() -> None:
    """Congenital torticollis, anal fissure, muscular dystrophy, hemifacial spasm: wider or other concepts."""
    for code in ("268240006", "30037006", "73297009", "13753008", "233873004"):
        assert isinstance(TERMS.resolve([(SNOMED_CT, code)]), Unmapped), code


def test_codings_naming_two_presentations_map_to_none() -> None:
    result = TERMS.resolve([(ICD10CM, "K22.0"), (ICD10CM, "H50.9")])
    assert isinstance(result, Unmapped) and "different presentations" in result.reason


def test_readme_table_is_generated_from_data() -> None:
    table = markdown_table(KB.presentations)
    assert table in README.read_text(), "README code table is stale: regenerate it (see README, 'Which codes map')"
    assert re.search(r"\| Oesophageal achalasia \| 45564002 ", table)


def test_listed_descendants_match_and_nothing_else_is_inferred() -> None:
    """In memory, for the matching rule only: the test asserts no SNOMED CT hierarchy."""
    from types import SimpleNamespace

    from models.knowledge import Codes

    codes = Codes.model_validate({"snomed": [{"code": "22066006", "display": "Strabismus", "source": "test",
                                              "descendants": [{"code": "16054791000119103",
                                                               "display": "Bilateral infantile esotropia of eyes"}]}]})
    terms = Terminology({"squint": SimpleNamespace(id="squint", name="squint", codes=codes)})
    assert terms.resolve([(SNOMED_CT, "16054791000119103")]) == Mapped("squint", "SNOMED CT 16054791000119103")
    assert isinstance(terms.resolve([(SNOMED_CT, "16054791000119104")]), Unmapped)  # not listed: not inferred
