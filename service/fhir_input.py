"""Read the FHIR R4 prefetch of a patient-view call into a `Presentation` dict.

Only what the knowledge base gives a coded meaning to is read: a Condition's SNOMED CT, ICD-10-CM or
ICD-10 code, matched by models/terminology.py against the `codes:` of each
data/presentations/<id>/presentation.yaml; the Patient's birth date; and a number detail from an
Observation whose LOINC code the detail's declaration lists (models/observations.py). Each
presentation's input is built from its declared details (`kb.details`); the details the record does
not hold are listed with the reading. Nothing else is guessed:
- a code without a system is not read, nor one listed for two presentations (ICD-10-CM K22.5);
- an Observation is read only for a detail that declares its LOINC code (none does yet: no code could
  be verified), otherwise it is counted and left unparsed;
- a Condition's verificationStatus is not read as `diagnosis_confirmed`, which the knowledge base
  defines by a specific objective test (e.g. high-resolution manometry), not by record status;
- a Condition resolved, inactive or in remission, or refuted or entered in error (read from the
  codings of its clinicalStatus and verificationStatus) is left out; a deceased Patient
  (deceasedBoolean true or a deceasedDateTime) gets no presentation at all.
The FHIR models come from `fhir.resources` (its R4B package: for Patient and Condition, R4B has the
same elements as R4 4.0.1). Only what is read is validated: the Patient's id, birth date and
deceased flag; each Condition's subject, code and statuses. Those elements in their plainly valid
shapes are read by a light reader without building the model (same values, a subset of what the
model accepts); anything else goes through the model, which names what is wrong. A Bundle is walked as JSON: an entry
of another type, a malformed entry or an Observation no detail asks for is never parsed, only
counted, so one odd resource among many does not turn the call into an error. A Condition with a
modifierExtension (which could change its meaning) is skipped and counted, never read.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Iterable, Mapping

import orjson
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError

from models import observations as obslib
from models.knowledge import Detail
from models.loader import KnowledgeBase
from models.presentation import MAX_AGE_YEARS
from models.terminology import ICD10_WHO, ICD10CM, SNOMED_CT, SYSTEM_NAMES, Mapped, Terminology, system_of

__all__ = ["ICD10CM", "ICD10_WHO", "SNOMED_CT", "Terminology", "code_map"]


def code_map(kb: KnowledgeBase) -> Terminology:
    """Built from each presentation's `codes:` (models/terminology.py), so a presentation added to data/ is mapped."""
    return Terminology(kb.presentations)

# Condition statuses that take a coded diagnosis out of the current picture.
NOT_CURRENT = frozenset({"inactive", "remission", "resolved"})
NOT_VALID = frozenset({"refuted", "entered-in-error"})
CLINICAL_STATUS = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
REQUIRED_KEYS = ("patient", "conditions")
# The elements read from each resource; nothing else of it is parsed.
PATIENT_READ = ("resourceType", "id", "birthDate", "deceasedBoolean", "deceasedDateTime")
CONDITION_READ = ("resourceType", "id", "subject", "code", "clinicalStatus", "verificationStatus")


class FhirInputError(ValueError):
    """The request's FHIR content is malformed or of another FHIR version (HTTP 400)."""


class PrefetchMissing(LookupError):
    """Data the service needs was not prefetched, and it does not fetch it itself (HTTP 412)."""


@dataclass(frozen=True)
class NotMapped:
    """A coded condition the service did not turn into a presentation, and why."""

    codes: str
    reason: str


@dataclass(frozen=True)
class FhirReading:
    """What the prefetch said, as the engine's input, and what it did not say."""

    presentation: dict[str, Any] | None
    mapped_codes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # presentation -> codes
    not_held: dict[str, tuple[Detail, ...]] = field(default_factory=dict)  # presentation -> declared details not read
    observed: dict[str, tuple[obslib.Observed, ...]] = field(default_factory=dict)  # presentation -> details read
    not_mapped: tuple[NotMapped, ...] = ()  # coded conditions that map to no presentation (counted only)
    age_note: str | None = None
    observations: int = 0
    not_current: int = 0  # conditions resolved, inactive, in remission, refuted or entered in error
    skipped: int = 0  # entries not read: another resource type, malformed, or with a modifierExtension
    deceased: bool = False


def _where(prefix: str, loc: tuple[Any, ...]) -> str:
    return ".".join([prefix, *(str(part) for part in loc)])


# The light reader: the few shapes of the read elements that are plainly valid FHIR R4, read without
# building the FHIR model (most of a cohort screen's reading time went into fhir.resources' validators).
# It only ever accepts a subset of what the model accepts, and gives the same values; anything else
# (a partial birth date, a deceasedDateTime, an empty string, an element it does not know, a null)
# goes to the FHIR model, which accepts it or names the error. tests/test_fhir_light.py holds it to that.
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_FULL_DATE = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])")
_CODE = re.compile(r"[^\s]+(\s[^\s]+)*")
_URI = re.compile(r"\S+")
_CODING_KEYS = frozenset({"system", "version", "code", "display", "userSelected"})
_CONCEPT_KEYS = frozenset({"coding", "text"})
_SUBJECT_KEYS = frozenset({"reference", "display"})
_PATIENT_LIGHT = frozenset({"resourceType", "id", "birthDate", "deceasedBoolean"})
_CONDITION_LIGHT = frozenset(CONDITION_READ)


@dataclass(frozen=True, slots=True)
class _Coding:
    system: str | None
    code: str | None
    display: str | None


@dataclass(frozen=True, slots=True)
class _Concept:
    coding: tuple[_Coding, ...]
    text: str | None


@dataclass(frozen=True, slots=True)
class _LightPatient:
    id: str | None
    birthDate: date | None
    deceasedBoolean: bool | None
    deceasedDateTime: None = None


@dataclass(frozen=True, slots=True)
class _LightCondition:
    id: str | None
    code: _Concept | None
    clinicalStatus: _Concept | None
    verificationStatus: _Concept | None


def _text(value: Any) -> bool:
    """A FHIR string that is plainly valid: a str with something other than whitespace."""
    return type(value) is str and value != "" and not value.isspace()


def _light_id(raw: dict[str, Any]) -> bool:
    return "id" not in raw or (type(raw["id"]) is str and _ID.fullmatch(raw["id"]) is not None)


# A record, and a cohort, repeat the same few concepts (status codings, coded diagnoses): reading each
# was a fifth of the reading time in a cohort screen's profile (BENCHMARKS.md, issue 16, second pass).
# So each process remembers what the light reader made of a concept, by its JSON text (orjson: about
# 0.2 us against 3.5 us to read it). Two values orjson may write alike (NaN and null) make a concept
# unreadable by the light reader either way; what orjson cannot write is read without the memo.
CONCEPT_MEMO = 4096
_CONCEPTS: dict[bytes, _Concept | None] = {}
_UNSEEN: Any = object()


def _light_concept(value: Any) -> _Concept | None:
    """A CodeableConcept of codings (system, code, display, version, userSelected) and text, or None."""
    try:
        key = orjson.dumps(value)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, a key that is not a string, ...
        return _read_concept(value)
    found = _CONCEPTS.get(key, _UNSEEN)
    if found is _UNSEEN:
        if len(_CONCEPTS) >= CONCEPT_MEMO:
            _CONCEPTS.clear()
        found = _CONCEPTS[key] = _read_concept(value)
    return found


# What a condition's concepts come to (the presentation its code maps to; whether its statuses take it out
# of the current picture) depends on nothing else, and the light reader gives one object per concept text
# (_light_concept): so it is remembered by the identity of those objects (2 us of the 30 us a screened
# patient's reading took, against 5-6 us to work it out). An entry holds its objects, so their ids are
# not reused while it is there; emptied when full, as the concept memo is.
_MAPPED: dict[tuple[int, ...], tuple[tuple[Any, ...], Any]] = {}
_NOT_CURRENT: dict[tuple[int, ...], tuple[tuple[Any, ...], Any]] = {}


def _by_concepts(memo: dict[tuple[int, ...], tuple[tuple[Any, ...], Any]], held: tuple[Any, ...], work: Any) -> Any:
    key = tuple(map(id, held))
    found = memo.get(key)
    if found is None or any(a is not b for a, b in zip(found[0], held)):
        if len(memo) >= CONCEPT_MEMO:
            memo.clear()
        found = memo[key] = (held, work())
    return found[1]


def _read_concept(value: Any) -> _Concept | None:
    if type(value) is not dict or not value or not value.keys() <= _CONCEPT_KEYS:
        return None
    text = value.get("text")
    if "text" in value and not _text(text):
        return None
    codings = value.get("coding", ())
    if "coding" in value and (type(codings) is not list or not codings):
        return None
    out = []
    for coding in codings:
        if type(coding) is not dict or not coding or not coding.keys() <= _CODING_KEYS:
            return None
        system, code = coding.get("system"), coding.get("code")
        if ("system" in coding and (type(system) is not str or not _URI.fullmatch(system))
                or "code" in coding and (type(code) is not str or not _CODE.fullmatch(code))
                or any(k in coding and not _text(coding[k]) for k in ("display", "version"))
                or "userSelected" in coding and type(coding["userSelected"]) is not bool):
            return None
        out.append(_Coding(system, code, coding.get("display")))
    return _Concept(tuple(out), text)


def _light_patient(raw: dict[str, Any]) -> _LightPatient | None:
    if not raw.keys() <= _PATIENT_LIGHT or not _light_id(raw):
        return None
    born, deceased = raw.get("birthDate"), raw.get("deceasedBoolean")
    if "deceasedBoolean" in raw and type(deceased) is not bool:
        return None
    if "birthDate" in raw:
        if type(born) is not str or not _FULL_DATE.fullmatch(born):
            return None
        try:
            born = date.fromisoformat(born)
        except ValueError:
            return None
    return _LightPatient(raw.get("id"), born, deceased)


def _light_condition(raw: dict[str, Any]) -> _LightCondition | None:
    if not raw.keys() <= _CONDITION_LIGHT or not _light_id(raw):
        return None
    subject = raw.get("subject")
    if type(subject) is not dict or not subject or not subject.keys() <= _SUBJECT_KEYS:
        return None
    if not all(_text(v) for v in subject.values()):
        return None
    concepts = {}
    for name in ("code", "clinicalStatus", "verificationStatus"):
        if name in raw:
            concepts[name] = _light_concept(raw[name])
            if concepts[name] is None:
                return None
    return _LightCondition(raw.get("id"), concepts.get("code"), concepts.get("clinicalStatus"),
                           concepts.get("verificationStatus"))


def _validate(model: type[Any], raw: Any, where: str) -> Any:
    """Parse with the FHIR model; every failure is the client's, reported with its path.
    What the light reader accepts is plainly valid and gives the same values: the model is skipped."""
    if not isinstance(raw, dict):
        raise FhirInputError(f"{where}: expected a FHIR resource (a JSON object), got {type(raw).__name__}")
    expected = model.get_resource_type()
    if raw.get("resourceType") != expected:
        raise FhirInputError(f"{where}.resourceType: expected {expected!r}, got {raw.get('resourceType')!r}")
    light = _LIGHT.get(expected)
    if light is not None and (read := light(raw)) is not None:
        return read
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        reason = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            reason = "not an element of FHIR R4 (this service reads FHIR R4, 4.0.1; another FHIR version?)"
        raise FhirInputError(f"{_where(where, first['loc'])}: {reason}") from None
    except Exception as error:  # the library raises KeyError for an unknown resourceType, among others
        raise FhirInputError(f"{where}: cannot be read as FHIR R4 ({type(error).__name__}: {error})") from None


_LIGHT = {"Patient": _light_patient, "Condition": _light_condition}


def _reference_patient(resource: dict[str, Any]) -> str | None:
    """The patient id of `subject.reference` when it is a Patient reference; None if there is none."""
    subject = resource.get("subject")
    reference = subject.get("reference") if isinstance(subject, dict) else None
    if isinstance(reference, str) and reference.startswith(("Patient/", "http")) and "Patient/" in reference:
        return reference.split("Patient/", 1)[1].split("/", 1)[0]
    return None


def _entries(
    raw: Any, where: str, kind: str, patient_id: str, partial_ok: bool = False
) -> tuple[list[tuple[int, dict[str, Any]]], int]:
    """The Bundle's search matches of one kind for this patient, as JSON, and how many entries were skipped.

    OperationOutcome and included entries are left out; an entry that is not a `kind` resource, or is
    malformed, is skipped and counted. A `kind` resource about another patient is an error: the
    client mixed patients, and nothing it sent can be trusted.
    """
    if not isinstance(raw, dict):
        raise FhirInputError(f"{where}: expected a FHIR Bundle (a JSON object), got {type(raw).__name__}")
    if raw.get("resourceType") != "Bundle":
        raise FhirInputError(f"{where}.resourceType: expected 'Bundle', got {raw.get('resourceType')!r}")
    links = raw.get("link")
    paged = isinstance(links, list) and any(isinstance(link, dict) and link.get("relation") == "next" for link in links)
    if paged and not partial_ok:
        raise PrefetchMissing(
            f"prefetch {where.removeprefix('prefetch.')!r} is one page of a longer result (it has a 'next' link); "
            "send every result at once, or fhirServer with fhirAuthorization so that this service reads the rest"
        )
    entries = raw.get("entry")
    if entries is None:
        return [], 0
    if not isinstance(entries, list):
        raise FhirInputError(f"{where}.entry: expected a list of entries, got {type(entries).__name__}")
    found: list[tuple[int, dict[str, Any]]] = []
    skipped = 0
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            skipped += 1
            continue
        kind_here = resource.get("resourceType")
        if kind_here == "OperationOutcome":
            continue
        search = entry.get("search")
        if isinstance(search, dict) and search.get("mode") in ("include", "outcome"):
            continue  # not a search match (e.g. an _include of the patient)
        if kind_here != kind:
            skipped += 1
            continue
        subject = _reference_patient(resource)
        if subject is not None and subject != patient_id:
            raise FhirInputError(
                f"{where}.entry.{index}.resource.subject: Patient/{subject} is not the "
                f"patient in context (Patient/{patient_id})"
            )
        found.append((index, resource))
    return found, skipped


def _codes(condition: Condition | _LightCondition) -> list[tuple[str, str, str]]:
    """(system, code, display) of every coding of the condition."""
    out = []
    for coding in (condition.code.coding if condition.code else None) or ():
        if coding.code:
            out.append((coding.system or "", coding.code, coding.display or ""))
    return out


def _statuses(concept: Any, system: str) -> set[str]:
    """The status codes of a CodeableConcept: codings of the FHIR status system, or with no system."""
    return {
        str(coding.code)
        for coding in (concept.coding if concept else None) or ()
        if coding.code and coding.system in (None, system)
    }


def _describe(codes: list[tuple[str, str, str]], condition: Condition | _LightCondition) -> str:
    if not codes:
        text = condition.code.text if condition.code and condition.code.text else None
        return f"no code ({text})" if text else "no code"
    shown = []
    for system, code, display in codes:
        name = SYSTEM_NAMES.get(system_of(system) or "", system or "no system")
        shown.append(f"{name} {code} ({display})" if display else f"{name} {code}")
    return "; ".join(shown)


def _read_condition(condition: Condition | _LightCondition, terms: Terminology) -> tuple[str, str] | NotMapped:
    """(presentation id, code as read) for a condition that maps to exactly one presentation, else why not.
    What a light reader's concept maps to is remembered with it (see _by_concepts)."""
    if type(condition) is _LightCondition:
        return _by_concepts(_MAPPED, (condition.code, terms), lambda: _map_condition(condition, terms))
    return _map_condition(condition, terms)


def _map_condition(condition: Condition | _LightCondition, terms: Terminology) -> tuple[str, str] | NotMapped:
    codes = _codes(condition)
    result = terms.resolve((system, code) for system, code, _ in codes)
    if isinstance(result, Mapped):
        return result.presentation, result.code
    return NotMapped(_describe(codes, condition), result.reason)


def _completed_years(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _age_on(born: date, today: date) -> dict[str, Any] | None:
    days = (today - born).days
    if days < 0:
        return None
    years = _completed_years(born, today)
    if years < 1:  # infants in weeks, so that rules on age in weeks can work
        return {"value": round(days / 7, 2), "unit": "weeks"}
    return {"value": years, "unit": "years"}


def age_from_birth_date(birth: date | str | None, today: date) -> tuple[dict[str, Any] | None, str | None]:
    """(age for the Presentation, or None; a note on how it was read or why it was not).

    A partial birth date (year, or year and month) is used only when every possible day in it
    gives the same age on `today`.
    """
    if birth is None:
        return None, "the Patient resource has no birth date"
    if isinstance(birth, date):
        earliest = latest = birth
        shown = birth.isoformat()
    else:
        shown = str(birth)
        parts = [int(p) for p in shown.split("-")]
        year = parts[0]
        if len(parts) == 1:
            earliest, latest = date(year, 1, 1), date(year, 12, 31)
        else:
            month = parts[1]
            earliest = date(year, month, 1)
            latest = date(year, month, calendar.monthrange(year, month)[1])
    first = _age_on(latest, today)
    last = first if earliest == latest else _age_on(earliest, today)
    if first is None or last is None:
        return None, f"birth date {shown} is after the date of this request ({today.isoformat()}): age not used"
    if first != last:
        return None, (
            f"birth date {shown} is not given to the day, and the age on {today.isoformat()} depends on the day "
            f"({first['value']:g} {first['unit']} to {last['value']:g} {last['unit']}): age not used"
        )
    if first["unit"] == "years" and first["value"] > MAX_AGE_YEARS:
        return None, f"birth date {shown} gives an age over {MAX_AGE_YEARS} years: age not used"
    return first, f"age {first['value']:g} {first['unit']} on {today.isoformat()}, from birth date {shown}"


def reads_observations(kb: KnowledgeBase) -> bool:
    """Whether any declared detail is read from an Observation (a `loinc:` entry in data).
    Remembered per knowledge base object (a screen asks once per patient)."""
    held = _READS_OBSERVATIONS.get(id(kb))
    if held is None or held[0] is not kb:
        if len(_READS_OBSERVATIONS) > 16:
            _READS_OBSERVATIONS.clear()
        held = _READS_OBSERVATIONS[id(kb)] = (kb, any(d.loinc for details in kb.details.values() for d in details))
    return held[1]


_READS_OBSERVATIONS: dict[int, tuple[Any, bool]] = {}


def condition_input(
    pid: str, kb: KnowledgeBase, observed: Mapping[str, obslib.Observed] | None = None
) -> tuple[dict[str, Any], tuple[Detail, ...]]:
    """One presentation's condition input from the record, and the declared details it does not hold.

    The input is built over the presentation's declared details (`kb.details[pid]`), so a detail added
    to the knowledge base is listed here. A detail is filled only from an Observation with a LOINC code
    its declaration lists (models/observations.py); every other one is left out, which is "not
    recorded": the plan names it as a need where it would change the answer, where a guessed value
    would change the answer silently.
    """
    condition: dict[str, Any] = {"presentation": pid}
    for detail_id, item in (observed or {}).items():
        condition[detail_id] = item.value
    return condition, tuple(d for d in kb.details[pid] if d.id not in condition)


def not_current(condition: Condition | _LightCondition) -> bool:
    """Resolved, inactive or in remission, or refuted or entered in error: not part of the current picture."""
    if type(condition) is _LightCondition:
        return _by_concepts(_NOT_CURRENT, (condition.clinicalStatus, condition.verificationStatus),
                            lambda: _not_current(condition))
    return _not_current(condition)


def _not_current(condition: Condition | _LightCondition) -> bool:
    return bool(
        _statuses(condition.clinicalStatus, CLINICAL_STATUS) & NOT_CURRENT
        or _statuses(condition.verificationStatus, VERIFICATION_STATUS) & NOT_VALID
    )


def _read_only(raw: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: raw[name] for name in names if name in raw}


def read_prefetch(
    prefetch: dict[str, Any] | None, patient_id: str, kb: KnowledgeBase, codes_map: Terminology, today: date
) -> FhirReading:
    """Turn the prefetch into a Presentation dict plus what could not be read.

    Raises PrefetchMissing (412) when the patient or the conditions were not prefetched, and
    FhirInputError (400) when what is read is malformed, or is about another patient.
    """
    prefetch = prefetch or {}
    missing = [key for key in REQUIRED_KEYS if key not in prefetch]
    if missing:
        raise PrefetchMissing(
            f"prefetch {', '.join(repr(k) for k in missing)} missing: send the prefetch its discovery entry asks "
            "for, or fhirServer with fhirAuthorization so that this service reads it from the record"
        )
    if prefetch["patient"] is None:
        raise PrefetchMissing("prefetch 'patient' is null: this service needs the Patient resource for the age")
    raw_patient = prefetch["patient"]
    if not isinstance(raw_patient, dict):
        raise FhirInputError(
            f"prefetch.patient: expected a FHIR resource (a JSON object), got {type(raw_patient).__name__}"
        )
    patient = read_patient(raw_patient, patient_id)
    skipped = 0
    conditions: list[tuple[int, dict[str, Any]]] = []
    if prefetch["conditions"] is not None:  # null: the client holds no data for this key
        conditions, skipped = _entries(prefetch["conditions"], "prefetch.conditions", "Condition", patient_id)
    read, left_out = read_conditions(conditions)
    found_obs: list[tuple[int, dict[str, Any]]] = []
    if prefetch.get("observations") is not None:
        # A first page is enough only when no detail is read from Observations (fhir_fetch completes the
        # rest when the knowledge reads some and the call gives server access).
        found_obs, skipped_obs = _entries(
            prefetch["observations"], "prefetch.observations", "Observation", patient_id,
            partial_ok=not reads_observations(kb),
        )
        skipped += skipped_obs
    return read_record(patient, read, found_obs, kb, codes_map, today, skipped + left_out)


def read_patient(raw: dict[str, Any], patient_id: str) -> Patient | _LightPatient:
    """The Patient resource of the prefetch (a JSON object), validated; raises FhirInputError."""
    patient = _validate(Patient, _read_only(raw, PATIENT_READ), "prefetch.patient")
    if patient.id is not None and patient.id != patient_id:
        raise FhirInputError(f"prefetch.patient.id: {patient.id!r} is not the patient in context ({patient_id!r})")
    return patient


def read_conditions(entries: Iterable[tuple[int, dict[str, Any]]]) -> tuple[list[Condition | _LightCondition], int]:
    """The Condition resources, each with its index in its Bundle (for the path of an error), validated;
    and how many were skipped (a modifierExtension). Raises FhirInputError."""
    read: list[Condition | _LightCondition] = []
    skipped = 0
    for index, raw in entries:
        if raw.get("modifierExtension") is not None:
            skipped += 1  # a modifier could reverse the meaning; never read as if it were absent
            continue
        read.append(_validate(Condition, _read_only(raw, CONDITION_READ), f"prefetch.conditions.entry.{index}.resource"))
    return read, skipped


def read_record(patient: Patient | _LightPatient, conditions: list[Condition | _LightCondition],
                observations: list[tuple[int, dict[str, Any]]], kb: KnowledgeBase, codes_map: Terminology,
                today: date, skipped: int = 0) -> FhirReading:
    """The reading of a validated patient and conditions (read_patient, read_conditions) and of the
    patient's Observations: what read_prefetch does once it has taken them out of the prefetch's
    Bundles. The cohort screen, whose resources come one per line, calls the three directly.
    `skipped`: entries of the Bundles left out already."""
    deceased = patient.deceasedBoolean is True or patient.deceasedDateTime is not None
    mapped: dict[str, list[str]] = {}
    not_mapped: list[NotMapped] = []
    ignored = 0
    for condition in conditions:
        if not_current(condition):
            ignored += 1
            continue
        result = _read_condition(condition, codes_map)
        if isinstance(result, NotMapped):
            not_mapped.append(result)
        else:
            pid, code = result
            codes = mapped.setdefault(pid, [])
            if code not in codes:
                codes.append(code)

    age, age_note = age_from_birth_date(patient.birthDate, today)
    presentation: dict[str, Any] | None = None
    asked = obslib.wanted({pid: kb.details[pid] for pid in mapped})
    observed = obslib.read((raw for _, raw in observations), asked, today) if asked and not deceased else {}
    inputs = {pid: condition_input(pid, kb, observed.get(pid)) for pid in mapped}
    if mapped and not deceased:
        presentation = {"conditions": [condition for condition, _ in inputs.values()]}
        if age is not None:
            presentation["age"] = age
    return FhirReading(
        presentation=presentation,
        mapped_codes={pid: tuple(codes) for pid, codes in mapped.items()},
        not_held={pid: not_held for pid, (_, not_held) in inputs.items()},
        observed={pid: tuple(values.values()) for pid, values in observed.items()},
        not_mapped=tuple(not_mapped),
        age_note=age_note,
        observations=len(observations),
        not_current=ignored,
        skipped=skipped,
        deceased=deceased,
    )
