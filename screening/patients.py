"""One patient's resources -> table rows: read the way the CDS Hooks service reads a prefetch
(service/fhir_input.py, models/terminology.py) and assessed the way it assesses
(service/record_assessment.py), so that a screen and a card say the same thing about a record.

Runs inside Dask workers. The knowledge base and rules engine are built once per worker process
(`rules.default_context()` is cached per process; durable-rules cannot be pickled, so it is never
sent), the first time a task needs it.
"""

from __future__ import annotations

import functools
import operator
import pickle
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Iterable

import fsspec
import orjson

from models.knowledge import TOP_RANK
from models.plan import Plan
from models.terminology import Terminology
from rules.engine import RuleExecutionError
from rules.planner import default_context
from screening.export import parse_json
from screening.tally import Tally
from service.cards import card_summary
from service.fhir_input import (FhirInputError, FhirReading, code_map, read_conditions, read_patient, read_record,
                                reads_observations)
from service.record_assessment import NotAssessed, assess_reading

SEVERITY_ORDER = ("stop", "do_first", "caution")
_PLACE = operator.itemgetter(3, 4)  # a record's file and line: the order of the export


@functools.lru_cache(maxsize=1)
def context() -> tuple[Any, Any, Terminology]:
    """The worker's knowledge base, engine and terminology, built on first use in this process."""
    kb, engine = default_context()
    return kb, engine, code_map(kb)


def _ids(flags: Iterable[Any]) -> list[str]:
    return [f.id for f in flags]


def _row(pid: str, status: str, presentation: str | None, kb: Any, **values: Any) -> dict[str, Any]:
    row = {
        "patient_id": pid, "status": status, "presentation": presentation,
        "presentation_name": kb.presentations[presentation].name if presentation else None,
        "codes": [], "age": None, "stopped": None, "summary": None, "top_options": [], "top_strength": None,
        "standing_flags": [], "worst_flag": None, "needs": [], "reason": None,
        "knowledge_version": kb.version, "knowledge_hash": kb.content_hash,
    }
    row.update(values)
    return row


@dataclass(frozen=True)
class Part:
    """What a plan says about one of its presentations, as the table and the counts take it."""

    stopped: bool
    summary: str
    top_options: tuple[str, ...]
    top_strength: str | None
    standing_flags: tuple[str, ...]
    worst_flag: str | None
    needs: tuple[str, ...]
    flag_keys: tuple[tuple[str, str, str], ...]  # (presentation, severity, flag id)
    top_keys: tuple[tuple[str, str, str], ...]  # (presentation, option name, strength)
    need_keys: tuple[tuple[str, str], ...]  # (presentation, detail label)


def plan_part(plan: Plan, p: str) -> Part:
    flags = [f for f in plan.flags if f.presentation == p and f.status == "standing"]
    severities = {f.severity for f in flags}
    options = [o for o in plan.options if o.presentation == p and o.strength in TOP_RANK]
    treatment = [o for o in options if o.step == "treatment"] or options
    return Part(
        stopped="stop" in severities, summary=card_summary(plan, p), top_options=tuple(o.name for o in treatment),
        top_strength=treatment[0].strength if treatment else None, standing_flags=tuple(_ids(flags)),
        worst_flag=next((s for s in SEVERITY_ORDER if s in severities), None),
        needs=tuple(n.label for n in plan.needs if n.presentation == p),
        flag_keys=tuple((p, f.severity, f.id) for f in flags), top_keys=tuple((p, o.name, o.strength) for o in treatment),
        need_keys=tuple((p, n.label) for n in plan.needs if n.presentation == p),
    )


@dataclass
class Assessed:
    """One input's outcome: whether the planner made a plan, the plan itself only when plans are written
    (--full), the presentations the planner refused, and the parts of the plan by presentation."""

    planned: bool
    plan: Plan | None
    refused: list[NotAssessed]
    parts: dict[str, Part]


# The same input gives the same plan (a frozen model; nothing in it depends on the time or the
# patient), and a population repeats inputs a lot: ages in years times a few presentations, while
# no detail is read from the record. So each worker keeps what the table takes from the plans of the
# inputs it has seen (the row parts, about 2 KB an input; the plans themselves, about 10 KB, only
# with --full), least recently used out first; the table is the same as assessing every patient.
# At 100,000 generated patients a worker sees about 8,000 different inputs: PARTS_MEMO holds them all
# (an earlier memo of 4,096 plans, emptied when full, assessed most of them several times).
# Those inputs have far fewer outcomes (about 1,150 at 100,000 patients, with 30 different parts: ages
# that differ by a month or a year mostly fall in the same band), so the memo keeps one object per
# outcome (_OUTCOMES): a worker's memory grew by about 4.8 KB for each input it held, 33 MB at 100,000
# patients, which made it grow with the export (BENCHMARKS.md).
PARTS_MEMO = 16384
PLAN_MEMO = 4096
_MEMO: dict[bytes, Assessed] = {}
_OUTCOMES: dict[tuple, Assessed] = {}


def _one_of_each(found: Assessed) -> Assessed:
    """The memo's one object for this outcome (not with a plan: --full keeps each plan)."""
    if found.plan is not None:
        return found
    key = (found.planned, tuple(found.refused), tuple(found.parts.items()))
    if len(_OUTCOMES) >= PARTS_MEMO and key not in _OUTCOMES:  # a cohort of unusual variety: start again
        _OUTCOMES.clear()
    return _OUTCOMES.setdefault(key, found)


def assessed(reading: FhirReading, kb: Any, engine: Any, keep_plan: bool = False) -> Assessed:
    """The outcome of the reading's input, from this worker's memo, from another worker's (_Exchange), or
    assessed now (raises RuleExecutionError). `keep_plan`: the plan is needed too (--full)."""
    key = kb.content_hash.encode() + orjson.dumps(reading.presentation, option=orjson.OPT_SORT_KEYS)
    found = _MEMO.pop(key, None)
    if found is None and not keep_plan:
        found = _EXCHANGE.take(key)
        if found is not None:
            found = _one_of_each(found)
    if found is None or (keep_plan and found.planned and found.plan is None):
        plan, refused = assess_reading(reading, (kb, engine), why_not=keep_plan)  # the table shows no why-not
        found = _one_of_each(Assessed(plan is not None, plan if keep_plan else None, refused,
                                      {i.id: plan_part(plan, i.id) for i in plan.presentations} if plan else {}))
        _EXCHANGE.keep(key, found)
        cap = PLAN_MEMO if keep_plan else PARTS_MEMO
        while len(_MEMO) >= cap:
            del _MEMO[next(iter(_MEMO))]
    _MEMO[key] = found  # (again) the most recently used, last
    return found


@dataclass
class _Exchange:
    """What the workers of one screen assessed, shared through its scratch folder, so that an input is
    assessed about once per screen, not once per worker: with a memo each, 2 workers assessed 16,767 inputs
    at 100,000 patients where one assessed 13,817 (an input costs about 0.26 ms; BENCHMARKS.md).

    Before a bucket, a worker takes the files the others published since (`adopt`), keeping each outcome
    pickled until an input asks for it (most never do); after it, it publishes what it assessed in that
    bucket (`publish`). A file still being written does not unpickle and is read next time. Only a cache:
    the same input gives the same outcome, whichever worker assessed it, so the table is the same."""

    folder: str = ""  # as its file system names it
    fs: Any = None
    read: set[str] = field(default_factory=set)
    shared: dict[bytes, bytes] = field(default_factory=dict)  # memo key -> pickled Assessed, from the others
    fresh: dict[bytes, Assessed] | None = None  # assessed here since the last publish; None: not sharing

    def adopt(self, folder: str) -> None:
        fs, root = fsspec.core.url_to_fs(folder)
        if root != self.folder:  # another screen: what this process read of an earlier one goes
            self.folder, self.fs, self.read, self.shared = root, fs, set(), {}
        self.fresh = {}
        try:
            paths = fs.ls(root, detail=False)
        except FileNotFoundError:
            return
        for path in sorted(paths):
            if path in self.read:
                continue
            try:
                with fs.open(path, "rb") as handle:
                    outcomes = pickle.load(handle)
            except (EOFError, pickle.UnpicklingError, OSError):
                continue
            self.read.add(path)
            for key, data in outcomes.items():
                self.shared.setdefault(key, data)
        while len(self.shared) > PARTS_MEMO:  # the oldest first: like the memo, bounded whatever the export
            del self.shared[next(iter(self.shared))]

    def take(self, key: bytes) -> Assessed | None:
        data = self.shared.pop(key, None)
        return None if data is None else pickle.loads(data)

    def keep(self, key: bytes, found: Assessed) -> None:
        if self.fresh is not None and found.plan is None:
            self.fresh[key] = found

    def publish(self, name: str) -> None:
        fresh, self.fresh = self.fresh, None
        if not fresh:
            return
        path = f"{self.folder}/{name}.pkl"
        self.read.add(path)
        self.fs.makedirs(self.folder, exist_ok=True)
        data = {key: pickle.dumps(found, protocol=pickle.HIGHEST_PROTOCOL) for key, found in fresh.items()}
        with self.fs.open(path, "wb") as handle:
            pickle.dump(data, handle, protocol=pickle.HIGHEST_PROTOCOL)


_EXCHANGE = _Exchange()


def share_outcomes(folder: str | None) -> None:
    """Before a bucket task: take what the other workers published in `folder`; None: share nothing."""
    if folder is None:
        _EXCHANGE.fresh = None
    else:
        _EXCHANGE.adopt(folder)


def publish_outcomes(name: str) -> None:
    """After a bucket task: publish what this worker assessed in it (nothing unless share_outcomes began it)."""
    _EXCHANGE.publish(name)


def plan_rows(pid: str, found: Assessed, reading: FhirReading, kb: Any, tally: Tally) -> list[dict[str, Any]]:
    """One row per presentation of the plan."""
    rows = []
    age = reading.presentation.get("age") if reading.presentation else None
    age_text = f"{age['value']:g} {age['unit']}" if age else None
    for p, part in found.parts.items():
        rows.append(_row(
            pid, "assessed", p, kb, codes=list(reading.mapped_codes.get(p, ())), age=age_text, stopped=part.stopped,
            summary=part.summary, top_options=list(part.top_options), top_strength=part.top_strength,
            standing_flags=list(part.standing_flags), worst_flag=part.worst_flag, needs=list(part.needs),
        ))
        tally.assessed[p] += 1
        tally.stopped[p] += part.stopped
        for counter, keys in ((tally.flags, part.flag_keys), (tally.needs, part.need_keys), (tally.top, part.top_keys)):
            for key in keys:  # not Counter.update: its checks cost more than adding the few keys of a row
                counter[key] += 1
    return rows


_ENTRY = re.compile(r"prefetch\.(conditions|observations)\.entry\.(\d+)\.resource")


def _where(reason: str, places: dict[str, list[tuple[str, int]]]) -> str:
    """The service's "prefetch.conditions.entry.3.resource.code" as "Condition.000.ndjson line 12: code"."""
    def name(match: re.Match[str]) -> str:
        kind, index = match[1], int(match[2])
        file, line = places[kind][index]
        return f"{file} line {line}: "

    if reason.startswith("prefetch.patient"):
        file, line = places["patient"][0]
        reason = f"{file} line {line}: " + reason.removeprefix("prefetch.patient")
    else:
        reason = _ENTRY.sub(name, reason)
    return reason.replace(": .", ": ").replace(": : ", ": ")


def _not_assessed(pid: str, reason: str, kind: str, kb: Any, tally: Tally, presentation: str | None = None) -> dict[str, Any]:
    tally.not_assessed.append((pid, presentation or "", reason))
    tally.not_assessed_reasons[kind] += 1
    return _row(pid, "not_assessed", presentation, kb, reason=reason)


@functools.lru_cache(maxsize=1)
def text_read() -> frozenset[str]:
    """The resource types whose content the reading uses; of the others, pass 1 keeps only where they are
    (an Observation is read only when a declared detail names a LOINC code: service/fhir_input.py)."""
    kb, _, _ = context()
    return frozenset({"Patient", "Condition", *(("Observation",) if reads_observations(kb) else ())})


def _asks_observations(reading: FhirReading, kb: Any) -> bool:
    """Whether a detail of a presentation the record maps to is read from an Observation (a LOINC code)."""
    return any(d.loinc for p in reading.mapped_codes for d in kb.details[p])


def assess_patient(pid: str, records: list[tuple], today: date, tally: Tally,
                   keep_plan: bool = False) -> tuple[list[dict[str, Any]], list[tuple[str, Plan]]]:
    """The rows of one patient, and (`keep_plan`, for --full) its plan; never raises for what the record holds."""
    kb, engine, terms = context()
    tally.patients += 1
    records.sort(key=_PLACE)
    by_type: dict[str, list[tuple]] = {}
    for record in records:
        found = by_type.get(record[2])
        if found is None:
            by_type[record[2]] = [record]
        else:
            found.append(record)
    for rtype, found in by_type.items():
        tally.resources[rtype] += len(found)
    patients = by_type.get("Patient", [])
    if len(patients) != 1:
        tally.not_assessed_patients += 1
        if not patients:
            why = "the export holds no Patient resource with this id (its other resources point to it)"
            return [_not_assessed(pid, why, "no Patient resource", kb, tally)], []
        shown = ", ".join(f"{r[3]} line {r[4]}" for r in patients)
        return [_not_assessed(pid, f"several Patient resources with this id ({shown})", "several Patient resources", kb, tally)], []
    conditions = by_type.get("Condition", [])
    observations = by_type.get("Observation", []) if "Observation" in text_read() else []
    try:
        # read_prefetch's steps without its Bundles: each line of the export is one resource of this patient
        # (pass 1 checked its type and subject), so walking a Bundle built for it would find nothing to leave out
        patient = read_patient(parse_json(patients[0][5]), pid)
        read, skipped = read_conditions((i, parse_json(r[5])) for i, r in enumerate(conditions))
        reading = read_record(patient, read, [], kb, terms, today, skipped)
        # Observations are parsed only for a record whose presentations read a detail from one (what the
        # reading does with them otherwise is count them): the same reading, made again with them
        if observations and reading.presentation is not None and _asks_observations(reading, kb):
            parsed = [(i, parse_json(r[5])) for i, r in enumerate(observations)]
            reading = read_record(patient, read, parsed, kb, terms, today, skipped)
    except FhirInputError as error:
        tally.not_assessed_patients += 1
        places = {key: [(r[3], r[4]) for r in found]
                  for key, found in (("patient", patients), ("conditions", conditions), ("observations", observations))}
        return [_not_assessed(pid, "cannot be read: " + _where(str(error), places), "resource cannot be read", kb, tally)], []
    tally.conditions_not_mapped += len(reading.not_mapped)
    tally.conditions_not_current += reading.not_current
    tally.entries_skipped += reading.skipped
    if reading.deceased:
        tally.deceased += 1
        return [], []
    if reading.presentation is None:
        tally.nothing_mapped += 1
        return [], []
    try:
        found = assessed(reading, kb, engine, keep_plan)
    except RuleExecutionError as error:
        tally.not_assessed_patients += 1
        return [_not_assessed(pid, f"a rule failed: {error}", "a rule failed", kb, tally, p) for p in reading.mapped_codes], []
    rows = plan_rows(pid, found, reading, kb, tally) if found.planned else []
    for item in found.refused:
        rows.append(_not_assessed(pid, "; ".join(item.reasons), "refused by the planner", kb, tally, item.presentation))
    if rows and found.planned:
        tally.assessed_patients += 1
    elif rows:
        tally.not_assessed_patients += 1
    return rows, ([(pid, found.plan)] if found.plan is not None else [])
