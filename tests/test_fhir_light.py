"""service/fhir_input.py's light reader against the FHIR model it stands in for: whatever it accepts,
the model accepts too and reads the same values; what it does not accept goes to the model."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.patient import Patient

from benchmarks.bulk_export import generate
from service import fhir_input
from service.fhir_input import CONDITION_READ, PATIENT_READ, FhirInputError, _read_only, _validate

ODD_VALUES = ("", " ", " x", "x ", "a  b", None, 0, 1.5, True, [], {}, ["x"], {"x": 1}, "2020", "2020-02",
              "2020-02-30", "2021-13-01", "20200105", "0000-01-01", "a" * 65, "ok", "urn:oid:2.16.840.1.113883.6.96")


def _fields(resource: Any) -> tuple:
    """What the reader takes from a Patient or Condition, whichever object read it."""
    if hasattr(resource, "birthDate"):
        return (resource.id, resource.birthDate, resource.deceasedBoolean, resource.deceasedDateTime)
    concepts = []
    for name in ("code", "clinicalStatus", "verificationStatus"):
        concept = getattr(resource, name)
        concepts.append(None if concept is None else (
            concept.text, tuple((c.system, c.code, c.display) for c in concept.coding or ())))
    return (resource.id, *concepts)


def _both(model: type, raw: dict[str, Any]) -> None:
    light = fhir_input._LIGHT[model.get_resource_type()](raw)
    try:
        full = model.model_validate(raw)
    except Exception:  # noqa: BLE001 - the model's failure is all that matters here
        assert light is None, raw
        return
    if light is not None:
        assert _fields(light) == _fields(full), raw


def _mutants(resource: dict[str, Any], rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Copies with one value somewhere replaced by an odd one, or an element added."""
    paths: list[tuple] = []

    def walk(node: Any, path: tuple) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "resourceType":  # checked before either reader runs
                    continue
                paths.append((*path, key))
                walk(value, (*path, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                paths.append((*path, index))
                walk(value, (*path, index))

    walk(resource, ())
    out = []
    for _ in range(count):
        mutant = copy.deepcopy(resource)
        path = rng.choice(paths)
        parent = mutant
        for part in path[:-1]:
            parent = parent[part]
        if rng.random() < 0.15 and isinstance(parent, dict):
            parent[rng.choice(["extension", "userSelected", "period", "type", "foo"])] = rng.choice(ODD_VALUES)
        else:
            parent[path[-1]] = rng.choice(ODD_VALUES)
        out.append(mutant)
    return out


@pytest.fixture(scope="module")
def resources(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    export = generate(tmp_path_factory.mktemp("light") / "export", 120, seed=21, per_file=10_000)
    found = []
    for path in export.files:
        if path.name.startswith(("Patient.", "Condition.")) and not path.name.endswith(".gz"):
            for line in path.read_text().splitlines():
                try:
                    value = json.loads(line)
                except ValueError:
                    continue
                if isinstance(value, dict) and value.get("resourceType") in ("Patient", "Condition"):
                    found.append(value)
    return found


def test_generated_resources_read_the_same_and_mostly_light(resources: list[dict[str, Any]]) -> None:
    light = 0
    for raw in resources:
        model, names = (Patient, PATIENT_READ) if raw["resourceType"] == "Patient" else (Condition, CONDITION_READ)
        read = _read_only(raw, names)
        _both(model, read)
        light += fhir_input._LIGHT[raw["resourceType"]](read) is not None
    assert light > 0.8 * len(resources)  # the light reader does carry a generated export


def test_odd_values_never_pass_the_light_reader_where_the_model_refuses(resources: list[dict[str, Any]]) -> None:
    rng = random.Random(5)
    for raw in resources[:150]:
        model, names = (Patient, PATIENT_READ) if raw["resourceType"] == "Patient" else (Condition, CONDITION_READ)
        for mutant in _mutants(_read_only(raw, names), rng, 12):
            _both(model, mutant)


def test_an_invalid_birth_date_is_still_named_by_the_model() -> None:
    with pytest.raises(FhirInputError, match="prefetch.patient.birthDate"):
        _validate(Patient, {"resourceType": "Patient", "id": "p1", "birthDate": "2020-02-30"}, "prefetch.patient")
    partial = _validate(Patient, {"resourceType": "Patient", "id": "p1", "birthDate": "2020-02"}, "prefetch.patient")
    assert partial.birthDate == "2020-02"  # a partial date: read by the model, kept as written
