"""Load `data/` once into a validated, immutable knowledge base.

A broken file fails here, with the file, the field and the reason, so that nothing downstream
(the engine, the app, the service) ever works from half a knowledge base.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from models.knowledge import (
    Citation,
    PresentationDef,
    Procedure,
    Rule,
    SourceCaveat,
    TeachingCase,
    Term,
    Vocabulary,
)
from models.presentation import Condition
from rules import conditions

DATA_DIR = Path(os.environ.get("MYOTOMY_CDS_DATA") or Path(__file__).resolve().parent.parent / "data")
AGE_FACTS = ("age_years", "age_months", "age_weeks")
PRIOR_PREFIX = "prior_"

M = TypeVar("M", bound=BaseModel)
# libyaml's safe loader parses the knowledge files several times faster (start-up of the app and CLI)
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class KnowledgeBaseError(Exception):
    """A knowledge file is broken; the message names the file, the field and the reason."""

    def __init__(self, file: str, where: str, reason: str) -> None:
        self.file, self.where, self.reason = file, where, reason
        super().__init__(f"{file}: {where}: {reason}" if where else f"{file}: {reason}")


@dataclass(frozen=True)
class KnowledgeBase:
    version: str
    content_hash: str
    citations: dict[str, Citation]
    procedures: dict[str, Procedure]
    presentations: dict[str, PresentationDef]
    red_flags: dict[str, str]
    workup: dict[str, str]
    rules: tuple[Rule, ...]
    source_caveats: tuple[SourceCaveat, ...]
    sources: dict[str, str]
    tests: dict[str, tuple[conditions.Test, ...]] = field(repr=False)
    directory: Path = DATA_DIR

    def rules_for(self, presentation: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.presentation == presentation)

    def allowed_facts(self, presentation: PresentationDef) -> set[str]:
        """The finding names a rule of this presentation may test."""
        allowed = set(presentation.details) | set(AGE_FACTS)
        if "prior_treatments" in presentation.details:
            allowed |= {PRIOR_PREFIX + p for p in self.procedures}
        return allowed


def _rel(path: Path, root: Path) -> str:
    try:
        return str(Path(root.name) / path.relative_to(root))
    except ValueError:
        return str(path)


def _read_yaml(path: Path, root: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise KnowledgeBaseError(_rel(path, root), where, f"invalid YAML: {problem}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise KnowledgeBaseError(_rel(path, root), "", f"cannot be read: {error}") from None


def _section(data: Any, key: str, file: str) -> list[Any]:
    if not isinstance(data, dict) or key not in data:
        raise KnowledgeBaseError(file, key, f"missing top-level field {key!r}")
    items = data[key]
    if not isinstance(items, list):
        raise KnowledgeBaseError(file, key, "must be a list")
    return items


def _validate(model: type[M], raw: Any, file: str, where: str) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        loc = ".".join(str(part) for part in (where, *first["loc"]) if part != "")
        raise KnowledgeBaseError(file, loc, first["msg"]) from None


def _load_list(root: Path, sub: str, key: str, model: type[M]) -> list[tuple[str, str, M]]:
    """(file, field path, item) for every item of every YAML file in `root/sub`."""
    found = []
    for path in sorted((root / sub).glob("*.yaml")):
        file = _rel(path, root)
        for index, raw in enumerate(_section(_read_yaml(path, root), key, file)):
            where = f"{key}[{index}]"
            found.append((file, where, _validate(model, raw, file, where)))
    return found


def _index(items: Iterable[tuple[str, str, M]], attr: str, kind: str) -> dict[str, M]:
    out: dict[str, M] = {}
    for file, where, item in items:
        key = getattr(item, attr)
        if key in out:
            raise KnowledgeBaseError(file, f"{where}.{attr}", f"duplicate {kind} id {key!r}")
        out[key] = item
    return out


def content_hash(root: Path) -> str:
    """SHA-256 over the knowledge files (not the teaching cases), so a result can be traced."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "cases" not in path.relative_to(root).parts:
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def load(root: Path | None = None) -> KnowledgeBase:
    """Load and cross-check the whole knowledge base, or raise KnowledgeBaseError."""
    root = Path(root or DATA_DIR)
    manifest_file = root / "knowledge_base.yaml"
    manifest = _read_yaml(manifest_file, root)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("version"), str):
        raise KnowledgeBaseError(_rel(manifest_file, root), "version", "a version string is required")

    citations_file = root / "citations.yaml"
    cite_rel = _rel(citations_file, root)
    citation_items = [
        (cite_rel, f"citations[{i}]", _validate(Citation, raw, cite_rel, f"citations[{i}]"))
        for i, raw in enumerate(_section(_read_yaml(citations_file, root), "citations", cite_rel))
    ]
    citations = _index(citation_items, "key", "citation")

    red_flag_items: list[tuple[str, str, Term]] = []
    workup_items: list[tuple[str, str, Term]] = []
    for path in sorted((root / "vocabulary").glob("*.yaml")):
        file = _rel(path, root)
        vocab = _validate(Vocabulary, _read_yaml(path, root), file, "")
        red_flag_items += [(file, f"red_flags[{i}]", t) for i, t in enumerate(vocab.red_flags)]
        workup_items += [(file, f"workup[{i}]", t) for i, t in enumerate(vocab.workup)]

    procedure_items = _load_list(root, "procedures", "procedures", Procedure)
    presentation_items = _load_list(root, "presentations", "presentations", PresentationDef)
    rule_items = _load_list(root, "rules", "rules", Rule)
    caveat_file = root / "source_caveats.yaml"
    cav_rel = _rel(caveat_file, root)
    caveat_items = [
        (cav_rel, f"caveats[{i}]", _validate(SourceCaveat, raw, cav_rel, f"caveats[{i}]"))
        for i, raw in enumerate(_section(_read_yaml(caveat_file, root), "caveats", cav_rel))
    ]

    sources = {
        path.name: path.read_text(encoding="utf-8") for path in sorted((root / "sources").glob("*.txt"))
    }
    kb = KnowledgeBase(
        version=manifest["version"],
        content_hash=content_hash(root),
        citations=citations,
        procedures=_index(procedure_items, "id", "procedure"),
        presentations=_index(presentation_items, "id", "presentation"),
        red_flags={i: t.meaning for i, t in _index(red_flag_items, "id", "red flag").items()},
        workup={i: t.meaning for i, t in _index(workup_items, "id", "work-up").items()},
        rules=tuple(item for _, _, item in rule_items),
        source_caveats=tuple(item for _, _, item in caveat_items),
        sources=sources,
        tests={},
        directory=root,
    )
    _index(rule_items, "id", "rule")
    _index(caveat_items, "id", "source caveat")
    _check_references(kb, procedure_items, presentation_items, rule_items, caveat_items)
    return kb


def _check_references(
    kb: KnowledgeBase,
    procedure_items: list[tuple[str, str, Procedure]],
    presentation_items: list[tuple[str, str, PresentationDef]],
    rule_items: list[tuple[str, str, Rule]],
    caveat_items: list[tuple[str, str, SourceCaveat]],
) -> None:
    def known(file: str, where: str, ids: Iterable[str], pool: dict[str, Any], kind: str) -> None:
        for index, ident in enumerate(ids):
            if ident not in pool:
                raise KnowledgeBaseError(file, f"{where}[{index}]", f"unknown {kind} {ident!r}")

    for file, where, proc in procedure_items:
        known(file, f"{where}.citations", proc.citations, kb.citations, "citation")
        for i, risk in enumerate(proc.risks):
            known(file, f"{where}.risks[{i}].citations", risk.citations, kb.citations, "citation")

    condition_fields = set(Condition.model_fields) - {"presentation"}
    for file, where, pres in presentation_items:
        known(file, f"{where}.citations", pres.citations, kb.citations, "citation")
        known(file, f"{where}.procedures", pres.procedures, kb.procedures, "procedure")
        known(file, f"{where}.first_line", pres.first_line, kb.procedures, "procedure")
        for i, detail in enumerate(pres.details):
            if detail not in condition_fields:
                raise KnowledgeBaseError(file, f"{where}.details[{i}]", f"unknown detail {detail!r}")

    for file, where, rule in rule_items:
        pres = kb.presentations.get(rule.presentation)
        if pres is None:
            raise KnowledgeBaseError(file, f"{where}.presentation", f"unknown presentation {rule.presentation!r}")
        known(file, f"{where}.citations", rule.citations, kb.citations, "citation")
        try:
            tests = conditions.parse(rule.when)
        except ValueError as error:
            raise KnowledgeBaseError(file, f"{where}.when", str(error)) from None
        allowed = kb.allowed_facts(pres)
        for name in conditions.fields(tests):
            if name not in allowed:
                raise KnowledgeBaseError(
                    file, f"{where}.when.{name}", f"not a finding of {rule.presentation!r}"
                )
        _check_subtypes(file, where, tests, pres)
        kb.tests[rule.id] = tests
        then = rule.then
        for i, s in enumerate(then.suggest):
            if s.procedure not in pres.procedures and s.procedure not in pres.first_line:
                raise KnowledgeBaseError(
                    file,
                    f"{where}.then.suggest[{i}].procedure",
                    f"{s.procedure!r} is not a procedure of {rule.presentation!r}",
                )
        for i, flag in enumerate(then.red_flags):
            if flag.id not in kb.red_flags:
                raise KnowledgeBaseError(file, f"{where}.then.red_flags[{i}].id", f"unknown red flag {flag.id!r}")
            known(file, f"{where}.then.red_flags[{i}].concerns", flag.concerns, kb.procedures, "procedure")
        known(file, f"{where}.then.workup", then.workup, kb.workup, "work-up")
        known(file, f"{where}.then.first_line", then.first_line, kb.procedures, "procedure")
        if then.caveats and not then.suggest:
            raise KnowledgeBaseError(file, f"{where}.then.caveats", "caveats attach to the rule's suggestions; add one")
        for i, caveat in enumerate(then.caveats):
            known(file, f"{where}.then.caveats[{i}].citations", caveat.citations, kb.citations, "citation")

    for file, where, caveat in caveat_items:
        text = kb.sources.get(caveat.source)
        if text is None:
            raise KnowledgeBaseError(file, f"{where}.source", f"no source document {caveat.source!r} in sources/")
        if caveat.quote not in text:
            raise KnowledgeBaseError(
                file, f"{where}.quote", f"not found word for word in {caveat.source}"
            )
        known(file, f"{where}.applies_to", caveat.applies_to, kb.presentations, "presentation")
        if caveat.audit:
            known(file, f"{where}.audit.citations", caveat.audit.citations, kb.citations, "citation")


def _check_subtypes(file: str, where: str, tests: tuple[conditions.Test, ...], pres: PresentationDef) -> None:
    for clause in conditions.clauses(tests):
        if clause.field != "subtype" or clause.op == "missing":
            continue
        values = clause.value if isinstance(clause.value, list) else [clause.value]
        for value in values:
            if value not in pres.subtypes:
                raise KnowledgeBaseError(
                    file, f"{where}.when.subtype", f"{value!r} is not a subtype of {pres.id!r}"
                )


def load_cases(root: Path | None = None) -> list[tuple[str, TeachingCase]]:
    """Teaching cases with the file each came from; ids are unique across files."""
    root = Path(root or DATA_DIR)
    items = _load_list(root, "cases", "cases", TeachingCase)
    _index(items, "id", "teaching case")
    return [(file, case) for file, _, case in items]
