"""Reading a FHIR Bulk Data export: which files, what "today" is, and each file's lines as records.

A file's lines become either resource records keyed by patient id, or problems (file, line, reason);
nothing is dropped unreported and nothing is fatal. A reason never quotes the line: it may hold
patient data, and the summary is a file people pass around.

Files are opened with fsspec, so an export in object storage (s3://, gs://, with the matching fsspec
package installed) is read the same way as a local folder; `.gz` is decompressed by its name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import PurePosixPath
from typing import Any, Iterator

import fsspec
import orjson

READ_TYPES = ("Patient", "Condition", "Observation", "ServiceRequest", "Procedure")
FILE_NAME = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)(?:[._-][^/]*)?\.ndjson(?:\.gz)?$")
MAX_LINE_BYTES = 4 * 1024 * 1024
JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


class ExportError(ValueError):
    """The export as a whole cannot be read (no folder, no Patient file, no date for "today")."""


@dataclass(frozen=True)
class ExportFile:
    rtype: str
    path: str  # as fsspec opens it
    name: str  # as the summary shows it


@dataclass(frozen=True)
class Export:
    files: tuple[ExportFile, ...]
    today: date
    today_from: str  # "manifest transactionTime 2026-12-01T08:00:00Z" or "--as-of"
    not_read: tuple[str, ...]  # files of other resource types, by name
    problems: tuple["Problem", ...]  # files the manifest lists that are not there


@dataclass(frozen=True)
class Problem:
    """A line (or a whole file, line 0) that could not be read, and why."""

    file: str
    line: int
    reason: str


# A record is a plain tuple so that it pickles small between workers:
# ("r", patient id, resource type, file name, line number, the line's UTF-8 JSON bytes) or ("p", file name, line, reason).
Record = tuple


def parse_json(raw: bytes | str) -> Any:
    """One NDJSON line as Python values; raises orjson.JSONDecodeError (a ValueError) with a reason.

    orjson, not the standard library: a screen parses every line of the export once to find its
    patient and again (Patient, Condition and Observation lines) to read it, and json.loads was the largest single
    cost of reading (cProfile, BENCHMARKS.md "issue 16, second pass"); orjson parses the same values
    several times faster. It is stricter, as NDJSON asks: UTF-8 only, no NaN or Infinity, no lone
    surrogate; such a line is reported as not JSON. An integer beyond 64 bits becomes a float (no
    element the screen reads is such a number)."""
    return orjson.loads(raw)


def _join(folder: str, name: str) -> str:
    return folder.rstrip("/") + "/" + name


def _transaction_date(text: Any) -> date:
    if not isinstance(text, str):
        raise ValueError("transactionTime is not a string")
    return datetime.fromisoformat(text.replace("Z", "+00:00")).date()


def discover(folder: str, as_of: date | None = None) -> Export:
    """The files to read and the date to count ages on.

    With a `manifest.json` (the Bulk Data status response), its `output` entries name the files
    (by the last part of each url) and its `transactionTime` is "today"; `--as-of` then overrides
    it. Without one, every `<Type>*.ndjson[.gz]` file of the folder is read and `--as-of` is
    required: a screen's ages must not depend on the day it happens to run.
    """
    fs, root = fsspec.core.url_to_fs(folder)
    if not fs.isdir(root):
        raise ExportError(f"{folder}: not a folder")
    present = {PurePosixPath(p).name: p for p in fs.ls(root, detail=False)}
    manifest_path = present.get("manifest.json")
    problems: list[Problem] = []
    today, today_from = as_of, "--as-of"
    names: list[tuple[str, str]] = []
    if manifest_path is not None:
        try:
            with fs.open(manifest_path, "rb") as handle:
                manifest = json.load(handle)
            outputs = manifest["output"]
            if not isinstance(outputs, list):
                raise ValueError("'output' is not a list")
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ExportError(f"manifest.json: cannot be read: {error}") from None
        if today is None:
            try:
                today = _transaction_date(manifest.get("transactionTime"))
                today_from = f"the manifest's transactionTime ({manifest['transactionTime']})"
            except (ValueError, TypeError) as error:
                raise ExportError(f"manifest.json: transactionTime: {error}; give --as-of YYYY-MM-DD") from None
        for entry in outputs:
            url = entry.get("url") if isinstance(entry, dict) else None
            rtype = entry.get("type") if isinstance(entry, dict) else None
            if not isinstance(url, str) or not isinstance(rtype, str):
                problems.append(Problem("manifest.json", 0, "an output entry without a type and url"))
                continue
            name = PurePosixPath(url.split("?", 1)[0]).name
            if name not in present:
                problems.append(Problem(name, 0, "listed in manifest.json but not in the folder"))
                continue
            if any(name == listed for _, listed in names):  # read twice, every patient of it would be twice
                problems.append(Problem(name, 0, "listed twice in manifest.json: read once"))
                continue
            names.append((rtype, name))
    else:
        if today is None:
            raise ExportError(
                f"{folder}: no manifest.json, so no transactionTime: give --as-of YYYY-MM-DD (the day the export was made)"
            )
        for name in sorted(present):
            match = FILE_NAME.match(name)
            if match:
                names.append((match["type"], name))
    files = tuple(ExportFile(t, _join(folder, n), n) for t, n in names if t in READ_TYPES)
    not_read = tuple(sorted(n for t, n in names if t not in READ_TYPES))
    if not any(f.rtype == "Patient" for f in files):
        raise ExportError(f"{folder}: no Patient file (Patient.ndjson): patients cannot be screened without it")
    assert today is not None
    return Export(files, today, today_from, not_read, tuple(problems))


def _patient_of(resource: dict[str, Any], rtype: str) -> str | None:
    if rtype == "Patient":
        pid = resource.get("id")
        return pid if isinstance(pid, str) and pid else None
    subject = resource.get("subject")
    reference = subject.get("reference") if isinstance(subject, dict) else None
    if isinstance(reference, str) and "Patient/" in reference:
        pid = reference.split("Patient/", 1)[1].split("/", 1)[0]
        return pid or None
    return None


def read_file(file: ExportFile) -> Iterator[Record]:
    """Every line of one file as a resource record or a problem; an unreadable file is one problem."""
    number = 0
    try:
        with fsspec.open(file.path, "rb", compression="infer") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                if len(raw) > MAX_LINE_BYTES:
                    yield ("p", file.name, number, f"line longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB")
                    continue
                try:
                    resource = parse_json(raw)
                except orjson.JSONDecodeError as error:
                    yield ("p", file.name, number, f"not JSON ({error.msg})")
                    continue
                if not isinstance(resource, dict):
                    yield ("p", file.name, number, f"not a FHIR resource (a JSON {JSON_KINDS.get(type(resource), 'value')})")
                    continue
                found = resource.get("resourceType")
                if found != file.rtype:
                    shown = found if isinstance(found, str) and found.isalnum() else "none"
                    yield ("p", file.name, number, f"resourceType {shown} in a {file.rtype} file")
                    continue
                pid = _patient_of(resource, file.rtype)
                if pid is None:
                    what = "no id" if file.rtype == "Patient" else "no subject that is a Patient reference"
                    yield ("p", file.name, number, f"{file.rtype} with {what}")
                    continue
                yield ("r", pid, file.rtype, file.name, number, raw)
    except (OSError, EOFError, ValueError) as error:  # a truncated gzip, a vanished file
        where = f"after line {number}" if number else "at the start"
        yield ("p", file.name, number, f"file cannot be read {where}: {type(error).__name__}: {error}")
