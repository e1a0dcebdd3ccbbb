"""A seeded generator of synthetic FHIR Bulk Data exports, for the `screen` tests and benchmarks.

    .venv/bin/python -m benchmarks.bulk_export OUT_DIR --patients 1000 [--seed 1]

What it writes looks like a server's `$export` output: `manifest.json` (with `transactionTime` and
one `output` entry per file), and per resource type NDJSON files split every `per_file` resources
(`Condition.000.ndjson`, `Condition.001.ndjson.gz`, ...; every other file gzipped). The patients
are invented: random ids, birth dates from infancy to old age, some deceased, some with a birth date
that is not a date. Conditions carry codes from the value sets declared in data (SNOMED CT,
ICD-10-CM and WHO ICD-10, read through models/terminology.py, so no code is made up here), or
a few common codes that map to no presentation, or a code without a system; some are resolved,
some entered in error. Observations (body weight, LOINC 29463-7), ServiceRequests and Procedures
(text only) come along as a real export would carry them. A few lines are malformed on purpose
(not JSON, not an object, another resourceType, a Condition with no subject), and a few
Conditions point to a patient the export does not hold.

`generate()` also returns what each patient should come to (`Expected`), worked out from what it
wrote, not by reading the files back, so a test can compare the screen against `assess()` called
directly.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Iterator

from models.loader import load
from models.terminology import ICD10_WHO, ICD10CM, SNOMED_CT, Terminology

TYPES = ("Patient", "Condition", "Observation", "ServiceRequest", "Procedure")
TRANSACTION_TIME = "2026-12-01T08:00:00.000+00:00"
# Common problems that map to no presentation of this knowledge base (ICD-10-CM I10 essential
# hypertension, E11.9 type 2 diabetes without complications; SNOMED CT 38341003 hypertensive disorder).
UNMAPPED = ((ICD10CM, "I10"), (ICD10CM, "E11.9"), (SNOMED_CT, "38341003"))
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
MALFORMED = ("{not json", "[1, 2, 3]", "null", '"text"')


@dataclass
class Expected:
    """What the screen should make of one patient."""

    birth_date: str | None
    deceased: bool = False
    presentations: list[str] = field(default_factory=list)  # active, mapped, in first-seen order
    unreadable: bool = False  # its Patient resource does not validate (birth date not a date)
    no_patient: bool = False  # Conditions point to it, but the export holds no Patient


@dataclass
class Export:
    folder: Path
    transaction_time: str
    patients: dict[str, Expected]
    bad_lines: int  # lines written malformed on purpose
    files: list[Path]


def _codings(terms: Terminology) -> list[tuple[str, str, str | None]]:
    """(system, code, presentation or None if ambiguous) of every listed code, "-" stripped."""
    out = []
    for item in terms.listings():
        pid = item.presentations[0] if len(item.presentations) == 1 else None
        out.append((item.system, item.code.rstrip("-"), pid))
    return out


def _patient(rng: random.Random, pid: str, today: date, expected: Expected) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Patient", "id": pid, "gender": rng.choice(["female", "male", "other"])}
    if expected.birth_date is not None:
        resource["birthDate"] = expected.birth_date
    if expected.deceased:
        if rng.random() < 0.5:
            resource["deceasedBoolean"] = True
        else:
            resource["deceasedDateTime"] = (today - timedelta(days=rng.randint(1, 900))).isoformat()
    elif rng.random() < 0.3:
        resource["deceasedBoolean"] = False
    return resource


def _condition(rng: random.Random, cid: str, pid: str, system: str | None, code: str, status: str, verified: str) -> dict[str, Any]:
    coding: dict[str, Any] = {"code": code}
    if system:
        coding["system"] = system
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [coding]},
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": status}]},
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": verified}]},
        "recordedDate": "2025-0%d-1%d" % (rng.randint(1, 9), rng.randint(0, 9)),
    }


def _resources(n: int, seed: int, today: date, presentations: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any] | str, str | None, Expected | None]]:
    """(type, resource or a malformed line, patient id, expectation) in the order they are written."""
    rng = random.Random(seed)
    terms = Terminology(presentations)
    codings = _codings(terms)
    max_age = {pid: p.max_age_years for pid, p in presentations.items() if p.max_age_years is not None}
    serial = 0
    for index in range(n):
        pid = "%08x-%04x" % (rng.getrandbits(32), index % 0x10000)
        roll = rng.random()
        if roll < 0.08:
            born = today - timedelta(days=rng.randint(1, 364))  # infants
        else:
            born = today - timedelta(days=rng.randint(365, 95 * 365))
        expected = Expected(birth_date=born.isoformat(), deceased=rng.random() < 0.05)
        if rng.random() < 0.003:
            expected.birth_date, expected.unreadable = f"{born.year}-02-30", True  # not a date
        no_patient = rng.random() < 0.002
        expected.no_patient = no_patient
        if not no_patient:
            yield "Patient", _patient(rng, pid, today, expected), pid, expected
        for _ in range(rng.choice((0, 1, 1, 1, 2, 2, 3))):
            serial += 1
            cid = f"c{serial}"
            kind = rng.random()
            status = "active" if rng.random() < 0.85 else rng.choice(("resolved", "inactive", "remission"))
            verified = "entered-in-error" if rng.random() < 0.02 else rng.choice(("confirmed", "provisional"))
            if kind < 0.6:
                system, code, mapped = rng.choice(codings)
                while mapped in max_age and (today - born).days > 365.25 * max_age[mapped] and rng.random() < 0.98:
                    system, code, mapped = rng.choice(codings)  # mostly codes that fit the age, as records do
            elif kind < 0.95:
                (system, code), mapped = rng.choice(UNMAPPED), None
            else:
                system, code, mapped = None, "K22.0", None  # no system: not guessed
            if rng.random() < 0.1 and system in (ICD10CM, ICD10_WHO):
                code = code.replace(".", "")  # records often drop the dot
            if (
                mapped is not None
                and status == "active"
                and verified != "entered-in-error"
                and mapped not in expected.presentations
            ):
                expected.presentations.append(mapped)
            yield "Condition", _condition(rng, cid, pid, system, code, status, verified), pid, None
        for k in range(rng.choice((0, 1, 2, 3))):
            yield "Observation", {
                "resourceType": "Observation", "id": f"o{index}-{k}", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
                "subject": {"reference": f"Patient/{pid}"},
                "valueQuantity": {"value": round(rng.uniform(3, 110), 1), "unit": "kg",
                                  "system": "http://unitsofmeasure.org", "code": "kg"},
            }, pid, None
        if rng.random() < 0.2:
            yield "ServiceRequest", {
                "resourceType": "ServiceRequest", "id": f"s{index}", "status": "active", "intent": "order",
                "code": {"text": "referral"}, "subject": {"reference": f"Patient/{pid}"},
            }, pid, None
        if rng.random() < 0.2:
            yield "Procedure", {
                "resourceType": "Procedure", "id": f"p{index}", "status": "completed",
                "code": {"text": "procedure"}, "subject": {"reference": f"Patient/{pid}"},
            }, pid, None
        if rng.random() < 0.004:  # a malformed line in a random file
            yield rng.choice(TYPES), rng.choice(MALFORMED), None, None
        if rng.random() < 0.002:  # a Condition with no subject
            yield "Condition", {"resourceType": "Condition", "id": f"x{index}", "code": {"text": "?"}}, None, None
        if rng.random() < 0.002:  # an Observation in the Condition file
            yield "Condition", {"resourceType": "Observation", "id": f"y{index}", "status": "final",
                                "code": {"text": "?"}, "subject": {"reference": f"Patient/{pid}"}}, None, None


class _Writer:
    """One type's files, a new one every `per_file` lines; every other file gzipped if asked."""

    def __init__(self, folder: Path, rtype: str, per_file: int, gz: bool) -> None:
        self.folder, self.rtype, self.per_file, self.gz = folder, rtype, per_file, gz
        self.paths: list[Path] = []
        self.counts: list[int] = []
        self.handle: Any = None

    def write(self, line: str) -> None:
        if self.handle is None or self.counts[-1] >= self.per_file:
            self.close()
            number = len(self.paths)
            path = self.folder / f"{self.rtype}.{number:03d}.ndjson"
            if self.gz and number % 2 == 1:
                path = path.with_name(path.name + ".gz")
                self.handle = gzip.open(path, "wt", encoding="utf-8", compresslevel=1)
            else:
                self.handle = open(path, "w", encoding="utf-8")
            self.paths.append(path)
            self.counts.append(0)
        self.handle.write(line + "\n")
        self.counts[-1] += 1

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def generate(folder: Path, patients: int, seed: int = 1, per_file: int = 5000, gz: bool = True,
             manifest: bool = True) -> Export:
    """Write a synthetic export of `patients` patients into `folder` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    today = date.fromisoformat(TRANSACTION_TIME[:10])
    presentations = load().presentations
    writers = {t: _Writer(folder, t, per_file, gz) for t in TYPES}
    expected: dict[str, Expected] = {}
    bad = 0
    for rtype, resource, pid, exp in _resources(patients, seed, today, presentations):
        if isinstance(resource, str):
            writers[rtype].write(resource)
            bad += 1
            continue
        if pid is None or resource["resourceType"] != rtype:
            bad += 1
        elif exp is not None:
            expected[pid] = exp
        elif pid not in expected:  # a resource of a patient the export does not hold
            expected[pid] = Expected(birth_date=None, no_patient=True)
        writers[rtype].write(json.dumps(resource, separators=(",", ":")))
    for writer in writers.values():
        writer.close()
    # Conditions are written right after their Patient, so every no-patient id is known here; the
    # expectation of a patient with no Patient resource holds the presentations its Conditions name.
    files = [p for w in writers.values() for p in w.paths]
    if manifest:
        output = [
            {"type": w.rtype, "url": f"https://fhir.example.org/bulk/out/{p.name}", "count": c}
            for w in writers.values() for p, c in zip(w.paths, w.counts)
        ]
        (folder / "manifest.json").write_text(json.dumps({
            "transactionTime": TRANSACTION_TIME,
            "request": "https://fhir.example.org/Patient/$export",
            "requiresAccessToken": True,
            "output": output,
            "error": [],
        }, indent=2))
    return Export(folder, TRANSACTION_TIME, expected, bad, files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bulk_export", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-file", type=int, default=5000, help="resources per file before a new one is started")
    parser.add_argument("--no-gzip", action="store_true")
    args = parser.parse_args(argv)
    export = generate(args.folder, args.patients, args.seed, args.per_file, not args.no_gzip)
    print(f"{len(export.files)} files, {export.bad_lines} malformed lines, in {export.folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
