"""Load `data/` once into a validated, immutable knowledge base, or report every mistake at once.

Layout (see models/knowledge.py): shared files at the top of data/ and one folder per presentation.
Every id a rule or case names is checked against what is declared, every value in a rule's
condition against the detail's type and choices, and each problem names the file, the line and the
rule or case id, with "did you mean" for near misses.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, NamedTuple

import yaml
from pydantic import BaseModel, ValidationError

from models import conditions
from models.knowledge import (
    CasesFile,
    Citation,
    Definition,
    Detail,
    DetailUse,
    FlagDef,
    Option,
    PresentationDef,
    Rule,
    RulesFile,
    SourceCaveat,
    TeachingCase,
    Vocabulary,
)
from models.presentation import OUTCOME_WORDS, Condition, Presentation, condition_model, input_model
from models.problems import Collector, KnowledgeBaseError, Problem, SourceFile, did_you_mean

DATA_DIR = Path(os.environ.get("MYOTOMY_CDS_DATA") or Path(__file__).resolve().parent.parent / "data")
AGE_FACTS = ("age_years", "age_months", "age_weeks")
# the one caution raised, for every presentation that declares `usual_age`, when the age is outside it
AGE_FLAG = "age_unusual_for_presentation"
PRIOR_PREFIX = "prior_"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml parses several times faster

__all__ = ["KnowledgeBase", "KnowledgeBaseError", "load", "load_cases", "load_with_cases", "DATA_DIR", "AGE_FACTS", "AGE_FLAG", "PRIOR_PREFIX"]


@dataclass(frozen=True)
class Definitions:
    """A presentation's named findings, in order (a later one may use an earlier one)."""

    items: tuple[tuple[str, str, tuple[conditions.Test, ...]], ...] = ()  # (id, meaning, tests)

    def apply(self, facts: dict[str, Any]) -> None:
        for ident, _, tests in self.items:
            facts[ident] = conditions.holds(tests, facts)


@dataclass(frozen=True)
class KnowledgeBase:
    version: str
    content_hash: str
    citations: dict[str, Citation]
    options: dict[str, Option]
    presentations: dict[str, PresentationDef]
    details: dict[str, tuple[Detail, ...]]  # by presentation, shared declarations resolved
    definitions: dict[str, Definitions]
    flags: dict[str, FlagDef]
    workup: dict[str, str]
    rules: tuple[Rule, ...]
    source_caveats: tuple[SourceCaveat, ...]
    sources: dict[str, str]
    tests: dict[str, tuple[conditions.Test, ...]] = field(repr=False)
    flag_clears: dict[str, tuple[tuple[conditions.Test, ...], ...]] = field(repr=False)
    constraints: dict[str, tuple[tuple[tuple[conditions.Test, ...], str], ...]] = field(repr=False)
    condition_models: dict[str, type[Condition]] = field(repr=False)
    input_model: type[Presentation] = field(repr=False)
    directory: Path = DATA_DIR

    def rules_for(self, presentation: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.presentation == presentation)

    def detail(self, presentation: str, ident: str) -> Detail | None:
        return next((d for d in self.details[presentation] if d.id == ident), None)


def _rel(path: Path, root: Path) -> str:
    try:
        return str(Path(root.name) / path.relative_to(root))
    except ValueError:
        return str(path)


def _read(path: Path, root: Path, problems: Collector) -> tuple[SourceFile, Any] | None:
    rel = _rel(path, root)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        problems.add(rel, (), f"cannot be read: {error}")
        return None
    try:
        return SourceFile(path, rel, text), yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        problems.problems.append(Problem(rel, mark.line + 1 if mark else None, "", f"invalid YAML: {problem}"))
        return None


def _validate(model: type[BaseModel], raw: Any, source: SourceFile, problems: Collector, where: str = "") -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        problems.validation(source, (), error, where, model.model_fields)
        return None


def _item_id(raw: Any) -> str:
    return str(raw.get("id")) if isinstance(raw, dict) and raw.get("id") else ""


def _validate_items(
    model: type[BaseModel], items: Any, key: str, source: SourceFile, problems: Collector, kind: str
) -> list[tuple[int, Any]]:
    """Each item of a list validated alone, so one bad item does not hide the others."""
    if not isinstance(items, list):
        problems.add(source, (key,), "must be a list")
        return []
    found = []
    for index, raw in enumerate(items):
        ident = _item_id(raw)
        where = f"{kind} {ident}" if ident else f"{key}[{index}]"
        try:
            found.append((index, model.model_validate(raw)))
        except ValidationError as error:
            problems.validation(source, (key, index), error, where, model.model_fields)
    return found


def content_hash(root: Path) -> str:
    """SHA-256 over the knowledge files (not the teaching cases), so a result can be traced."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and path.name != "cases.yaml" and not rel.parts[0].startswith("."):
            digest.update(rel.as_posix().encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


class _Loader:
    """One load of one data directory; problems are collected, then raised together."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems = Collector()

    def top(self, name: str) -> tuple[SourceFile, Any] | None:
        path = self.root / name
        if not path.is_file():
            self.problems.add(_rel(path, self.root), (), "file missing")
            return None
        return _read(path, self.root, self.problems)

    def listed(self, name: str, key: str, model: type[BaseModel], kind: str) -> list[tuple[SourceFile, int, Any]]:
        loaded = self.top(name)
        if loaded is None:
            return []
        source, data = loaded
        if not isinstance(data, dict) or key not in data:
            self.problems.add(source, (), f"missing top-level field {key!r}")
            return []
        return [(source, i, item) for i, item in _validate_items(model, data[key], key, source, self.problems, kind)]

    def index(self, items: Iterable[tuple[SourceFile, tuple[Any, ...], Any]], kind: str, attr: str = "id") -> dict[str, Any]:
        found: dict[str, Any] = {}
        for source, keys, item in items:
            key = getattr(item, attr)
            if key in found:
                self.problems.add(source, keys, f"duplicate {kind} id {key!r}")
            found[key] = item
        return found

    def known(self, source: SourceFile, keys: tuple[Any, ...], ids: Iterable[str], pool: Iterable[str], kind: str, where: str) -> None:
        pool = list(pool)
        for index, ident in enumerate(ids):
            if ident not in pool:
                self.problems.add(source, (*keys, index), f"unknown {kind} {ident!r}" + did_you_mean(ident, pool), where)


def load(root: Path | None = None) -> KnowledgeBase:
    """Load and cross-check the whole knowledge base, or raise KnowledgeBaseError with every problem."""
    return _load(root, with_cases=False)[0]


def load_with_cases(root: Path | None = None) -> tuple[KnowledgeBase, list[tuple[str, TeachingCase]]]:
    """The knowledge base and its teaching cases, with every problem of both reported at once
    (a mistake in a rule does not hide one in a case)."""
    return _load(root, with_cases=True)


def _load(root: Path | None, with_cases: bool) -> tuple[KnowledgeBase, list[tuple[str, TeachingCase]]]:
    root = Path(root or DATA_DIR)
    ld = _Loader(root)
    p = ld.problems

    manifest = ld.top("knowledge_base.yaml")
    version = manifest[1].get("version") if manifest and isinstance(manifest[1], dict) else None
    if manifest and not isinstance(version, str):
        p.add(manifest[0], ("version",), "a version string is required")

    citations = ld.index(((s, ("citations", i), c) for s, i, c in ld.listed("citations.yaml", "citations", Citation, "citation")), "citation", "key")
    shared_details = ld.index(((s, ("details", i), d) for s, i, d in ld.listed("details.yaml", "details", Detail, "detail")), "detail")

    option_items: list[tuple[SourceFile, tuple[Any, ...], Option]] = []
    for path in sorted((root / "options").glob("*.yaml")):
        loaded = _read(path, root, p)
        if loaded and isinstance(loaded[1], dict):
            option_items += [(loaded[0], ("options", i), o) for i, o in _validate_items(Option, loaded[1].get("options"), "options", loaded[0], p, "option")]
    options = ld.index(option_items, "option")

    flag_items: list[tuple[SourceFile, tuple[Any, ...], FlagDef]] = []
    workup_items: list[tuple[SourceFile, tuple[Any, ...], Any]] = []
    for path in sorted((root / "vocabulary").glob("*.yaml")):
        loaded = _read(path, root, p)
        if loaded is None:
            continue
        vocab = _validate(Vocabulary, loaded[1], loaded[0], p)
        if vocab is not None:
            flag_items += [(loaded[0], ("red_flags", i), t) for i, t in enumerate(vocab.red_flags)]
            workup_items += [(loaded[0], ("workup", i), t) for i, t in enumerate(vocab.workup)]
    flags = ld.index(flag_items, "red flag")
    workup = {i: t.meaning for i, t in ld.index(workup_items, "work-up").items()}

    caveat_items = [(s, ("caveats", i), c) for s, i, c in ld.listed("source_caveats.yaml", "caveats", SourceCaveat, "source caveat")]
    sources = {path.name: path.read_text(encoding="utf-8") for path in sorted((root / "sources").glob("*.txt"))}

    for source, keys, option in option_items:
        ld.known(source, (*keys, "citations"), option.citations, citations, "citation", f"option {option.id}")
        for i, risk in enumerate(option.risks):
            ld.known(source, (*keys, "risks", i, "citations"), risk.citations, citations, "citation", f"option {option.id}")
    for source, keys, flag in flag_items:
        ld.known(source, (*keys, "workup"), flag.workup, workup, "work-up", f"flag {flag.id}")

    presentations: dict[str, PresentationDef] = {}
    details: dict[str, tuple[Detail, ...]] = {}
    definitions: dict[str, Definitions] = {}
    rules: list[Rule] = []
    tests: dict[str, tuple[conditions.Test, ...]] = {}
    constraints: dict[str, tuple[tuple[tuple[conditions.Test, ...], str], ...]] = {}
    rule_sources: list[tuple[SourceFile, tuple[Any, ...], Rule]] = []
    folders = sorted(d for d in (root / "presentations").iterdir() if d.is_dir()) if (root / "presentations").is_dir() else []
    if not folders:
        p.add(_rel(root / "presentations", root), (), "no presentation folders")
    for folder in folders:
        pdef = _presentation(ld, folder, shared_details, options, citations)
        if pdef is None:
            continue
        pres, resolved, psource = pdef
        if pres.id != folder.name:
            p.add(psource, ("id",), f"the id {pres.id!r} must be the folder's name {folder.name!r}", f"presentation {pres.id}")
        presentations[pres.id] = pres
        details[pres.id] = resolved
        facts = _fact_types(resolved, options)
        loaded = _read(folder / "rules.yaml", root, p) if (folder / "rules.yaml").is_file() else None
        if loaded is None:
            if not (folder / "rules.yaml").is_file():
                p.add(_rel(folder / "rules.yaml", root), (), "file missing")
            continue
        source, raw = loaded
        raw_rules = raw.get("rules") if isinstance(raw, dict) else None
        raw_defs = raw.get("definitions", []) if isinstance(raw, dict) else []
        if not isinstance(raw, dict):
            p.add(source, (), "expected a map with 'definitions' and 'rules'")
            continue
        extra = set(raw) - set(RulesFile.model_fields)
        for key in sorted(extra):
            p.add(source, (key,), "unknown top-level field" + did_you_mean(key, RulesFile.model_fields))
        defs = []
        for i, definition in _validate_items(Definition, raw_defs, "definitions", source, p, "definition"):
            parsed = _when(ld, source, ("definitions", i, "when"), definition.when, facts, f"definition {definition.id}", pres)
            if definition.id in facts:
                p.add(source, ("definitions", i, "id"), f"{definition.id!r} is already a detail or definition", f"definition {definition.id}")
            facts[definition.id] = ("definition", None)
            if parsed is not None:
                defs.append((definition.id, definition.meaning, parsed))
        definitions[pres.id] = Definitions(tuple(defs))
        constraint_tests = []
        for i, constraint in enumerate(pres.constraints):
            parsed = _when(ld, psource, ("constraints", i, "when"), constraint.when, facts, f"presentation {pres.id}", pres)
            if parsed is not None:
                constraint_tests.append((parsed, constraint.message))
        constraints[pres.id] = tuple(constraint_tests)
        for i, rule in _validate_items(Rule, raw_rules, "rules", source, p, "rule"):
            rule = rule.model_copy(update={"presentation": pres.id})
            keys = ("rules", i)
            where = f"rule {rule.id}"
            parsed = _when(ld, source, (*keys, "when"), rule.when, facts, where, pres)
            if parsed is not None:
                tests[rule.id] = parsed
            _effects(ld, source, keys, rule, pres, options, flags, workup, citations)
            rules.append(rule)
            rule_sources.append((source, keys, rule))
    ld.index(rule_sources, "rule")
    aged = [pid for pid, pres in presentations.items() if pres.usual_age is not None]
    if aged and (AGE_FLAG not in flags or flags[AGE_FLAG].severity != "caution"):
        p.add(_rel(root / "vocabulary", root), ("red_flags",),
              f"{AGE_FLAG!r} must be a caution in the vocabulary: {', '.join(aged)} declare usual_age")

    flag_clears: dict[str, tuple[tuple[conditions.Test, ...], ...]] = {}
    all_facts: dict[str, tuple[str, Any]] = {}
    for pid, resolved in details.items():
        all_facts.update(_fact_types(resolved, options))
        for ident, _, _ in definitions.get(pid, Definitions()).items:
            all_facts[ident] = ("definition", None)
    for source, keys, flag in flag_items:
        parsed_alternatives = []
        for i, when in enumerate(flag.cleared_when):
            parsed = _when(ld, source, (*keys, "cleared_when", i), when, all_facts, f"flag {flag.id}", None)
            if parsed is not None:
                parsed_alternatives.append(parsed)
        flag_clears[flag.id] = tuple(parsed_alternatives)
        instead = flag.if_not_recorded
        if instead is not None:
            if instead.detail not in all_facts:
                p.add(source, (*keys, "if_not_recorded", "detail"), f"unknown detail {instead.detail!r}", f"flag {flag.id}")
            other = flags.get(instead.flag)
            if other is None or other.if_not_recorded is not None or other.severity != flag.severity:
                p.add(source, (*keys, "if_not_recorded", "flag"),
                      f"{instead.flag!r} is not a red flag of the same severity without an if_not_recorded of its own",
                      f"flag {flag.id}")

    for source, keys, caveat in caveat_items:
        text = sources.get(caveat.source)
        if text is None:
            p.add(source, (*keys, "source"), f"no source document {caveat.source!r} in sources/", f"caveat {caveat.id}")
        elif caveat.quote not in text:
            p.add(source, (*keys, "quote"), f"not found word for word in {caveat.source}", f"caveat {caveat.id}")
        ld.known(source, (*keys, "applies_to"), caveat.applies_to, presentations, "presentation", f"caveat {caveat.id}")
        if caveat.audit:
            ld.known(source, (*keys, "audit", "citations"), caveat.audit.citations, citations, "citation", f"caveat {caveat.id}")
    ld.index(caveat_items, "source caveat")
    pools = _Pools(presentations, options, flags, workup, details, frozenset(r.id for r in rules))
    cases = _cases(ld, pools) if with_cases else []
    p.raise_if_any()

    treatment_ids = tuple(options)
    models = {pid: condition_model(pid, details[pid], treatment_ids) for pid in presentations}
    kb = KnowledgeBase(
        version=str(version),
        content_hash=content_hash(root),
        citations=citations,
        options=options,
        presentations=presentations,
        details=details,
        definitions=definitions,
        flags=flags,
        workup=workup,
        rules=tuple(rules),
        source_caveats=tuple(c for _, _, c in caveat_items),
        sources=sources,
        tests=tests,
        flag_clears=flag_clears,
        constraints=constraints,
        condition_models=models,
        input_model=input_model(models.values()),
        directory=root,
    )
    return kb, cases


def _presentation(
    ld: _Loader, folder: Path, shared: dict[str, Detail], options: dict[str, Option], citations: dict[str, Citation]
) -> tuple[PresentationDef, tuple[Detail, ...], SourceFile] | None:
    p = ld.problems
    path = folder / "presentation.yaml"
    if not path.is_file():
        p.add(_rel(path, ld.root), (), "file missing")
        return None
    loaded = _read(path, ld.root, p)
    if loaded is None:
        return None
    source, raw = loaded
    if not isinstance(raw, dict):
        p.add(source, (), "expected a map")
        return None
    raw_details = raw.get("details", [])
    body = {k: v for k, v in raw.items() if k != "details"}
    where = f"presentation {raw.get('id', folder.name)}"
    pres = _validate(PresentationDef, body, source, p, where)
    resolved: list[Detail] = []
    items: list[Detail | DetailUse] = []
    for i, item in enumerate(raw_details if isinstance(raw_details, list) else []):
        model = DetailUse if isinstance(item, dict) and "use" in item else Detail
        try:
            declared = model.model_validate(item)
        except ValidationError as error:
            p.validation(source, ("details", i), error, f"{where}: detail {_item_id(item) or i}", model.model_fields)
            continue
        items.append(declared)
        if isinstance(declared, DetailUse):
            base = shared.get(declared.use)
            if base is None:
                p.add(source, ("details", i, "use"), f"unknown shared detail {declared.use!r}" + did_you_mean(declared.use, shared), where)
                continue
            update = {k: v for k, v in declared.model_dump(exclude={"use"}).items() if v is not None}
            declared = base.model_copy(update=update)
        resolved.append(declared)
    if pres is None:
        return None
    seen: set[str] = set()
    for i, detail in enumerate(resolved):
        if detail.id in seen or detail.id in ("presentation", "age"):
            p.add(source, ("details", i), f"detail {detail.id!r} is declared twice or shadows a fixed field", where)
        seen.add(detail.id)
        ld.known(source, ("details", i, "decides"), detail.decides, pres.options, "option of this presentation", f"{where}: detail {detail.id}")
        ld.known(source, ("details", i, "citations"), detail.citations, citations, "citation", f"{where}: detail {detail.id}")
    ld.known(source, ("options",), pres.options, options, "option", where)
    ld.known(source, ("citations",), pres.citations, citations, "citation", where)
    if pres.usual_age is not None:
        ld.known(source, ("usual_age", "citations"), pres.usual_age.citations, citations, "citation", where)
        if pres.max_age_years is not None and (pres.usual_age.max_years or 0) > pres.max_age_years:
            p.add(source, ("usual_age", "max_years"), "the usual age cannot pass max_age_years (where the input is refused)", where)
    return pres.model_copy(update={"details": tuple(items)}), tuple(resolved), source


def _fact_types(details: Iterable[Detail], options: dict[str, Option]) -> dict[str, tuple[str, Any]]:
    """Finding name -> (type, detail) for what a condition of this presentation may test."""
    facts: dict[str, tuple[str, Any]] = {name: ("number", None) for name in AGE_FACTS}
    for detail in details:
        if detail.type == "treatments":
            for option in options:
                facts[PRIOR_PREFIX + option] = ("outcome", None)
        else:
            facts[detail.id] = (detail.type, detail)
    return facts


def _when(
    ld: _Loader,
    source: SourceFile,
    keys: tuple[Any, ...],
    when: dict[str, Any],
    facts: dict[str, tuple[str, Any]],
    where: str,
    pres: PresentationDef | None,
) -> tuple[conditions.Test, ...] | None:
    """Parse a condition and check every finding and value against what is declared."""
    p = ld.problems
    try:
        tests = conditions.parse(when)
    except ValueError as error:
        p.add(source, keys, str(error), where)
        return None
    ok = True
    for clause in conditions.clauses(tests):
        at = (*keys, clause.field)
        if clause.field not in facts:
            scope = f"of {pres.id!r}" if pres else "of any presentation"
            p.add(source, at, f"{clause.field!r} is not a detail or definition {scope}" + did_you_mean(clause.field, facts), where)
            ok = False
            continue
        if clause.op == "missing":
            continue
        kind, detail = facts[clause.field]
        values = clause.value if isinstance(clause.value, list) else [clause.value]
        if clause.op in ("gt", "gte", "lt", "lte") and kind not in ("number", "integer"):
            p.add(source, at, f"{clause.op} compares numbers; {clause.field!r} is {kind}", where)
            ok = False
            continue
        for value in values:
            reason = _bad_value(kind, detail, value)
            if reason:
                p.add(source, at, f"{clause.field}: {reason}", where)
                ok = False
    return tests if ok else None


def _bad_value(kind: str, detail: Detail | None, value: Any) -> str:
    if kind in ("yes_no", "definition"):
        return "" if isinstance(value, bool) else f"expected yes or no (true/false), got {value!r}"
    if kind == "choice" and detail is not None:
        choices = [c.id for c in detail.choices]
        return "" if value in choices else f"{value!r} is not one of {', '.join(choices)}" + did_you_mean(value, choices)
    if kind == "outcome":
        return "" if value in OUTCOME_WORDS else f"{value!r} is not an outcome ({', '.join(OUTCOME_WORDS)})" + did_you_mean(value, OUTCOME_WORDS)
    if kind in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"expected a number, got {value!r}"
        if detail is not None and ((detail.min is not None and value < detail.min) or (detail.max is not None and value > detail.max)):
            return f"{value} is outside the declared bounds {detail.min}..{detail.max}"
    return ""


def _effects(
    ld: _Loader,
    source: SourceFile,
    keys: tuple[Any, ...],
    rule: Rule,
    pres: PresentationDef,
    options: dict[str, Option],
    flags: dict[str, FlagDef],
    workup: dict[str, str],
    citations: dict[str, Citation],
) -> None:
    where = f"rule {rule.id}"
    then = rule.then
    ld.known(source, (*keys, "citations"), rule.citations, citations, "citation", where)
    for i, effect in enumerate(then.options):
        if effect.option not in pres.options:
            ld.problems.add(
                source, (*keys, "then", "options", i, "option"),
                f"{effect.option!r} is not an option of {pres.id!r}" + did_you_mean(effect.option, pres.options), where,
            )
    for i, flag in enumerate(then.flags):
        if flag.id not in flags:
            ld.problems.add(source, (*keys, "then", "flags", i, "id"), f"unknown red flag {flag.id!r}" + did_you_mean(flag.id, flags), where)
        ld.known(source, (*keys, "then", "flags", i, "concerns"), flag.concerns, pres.options, "option of this presentation", where)
    ld.known(source, (*keys, "then", "workup"), then.workup, workup, "work-up", where)
    for i, caveat in enumerate(then.caveats):
        ld.known(source, (*keys, "then", "caveats", i, "citations"), caveat.citations, citations, "citation", where)
    if then.caveats and not then.options:
        ld.problems.add(source, (*keys, "then", "caveats"), "caveats attach to the rule's options; add one", where)
    for i, grade in enumerate(rule.evidence):
        if grade.source not in citations:
            ld.problems.add(source, (*keys, "evidence", i, "source"), f"unknown citation {grade.source!r}" + did_you_mean(grade.source, citations), where)


class _Pools(NamedTuple):
    """The ids a teaching case may name, known before the knowledge base is built."""

    presentations: dict[str, PresentationDef]
    options: dict[str, Option]
    flags: dict[str, FlagDef]
    workup: dict[str, str]
    details: dict[str, tuple[Detail, ...]]
    rule_ids: frozenset[str]


def load_cases(kb: KnowledgeBase | None = None, root: Path | None = None) -> list[tuple[str, TeachingCase]]:
    """Teaching cases (file, case) from every presentation folder; every id they name is checked."""
    root = Path(root or (kb.directory if kb else DATA_DIR))
    kb = kb or load(root)
    ld = _Loader(root)
    found = _cases(ld, _Pools(kb.presentations, kb.options, kb.flags, kb.workup, kb.details, frozenset(r.id for r in kb.rules)))
    ld.problems.raise_if_any()
    return found


def _cases(ld: _Loader, pools: _Pools) -> list[tuple[str, TeachingCase]]:
    p = ld.problems
    found: list[tuple[str, TeachingCase]] = []
    seen: list[tuple[SourceFile, tuple[Any, ...], TeachingCase]] = []
    folders = ld.root / "presentations"
    for folder in sorted(d for d in folders.iterdir() if d.is_dir()) if folders.is_dir() else []:
        path = folder / "cases.yaml"
        if not path.is_file():
            continue
        loaded = _read(path, ld.root, p)
        if loaded is None:
            continue
        source, raw = loaded
        if not isinstance(raw, dict) or "cases" not in raw:
            p.add(source, (), "missing top-level field 'cases'")
            continue
        for i, case in _validate_items(TeachingCase, raw["cases"], "cases", source, p, "case"):
            _check_case(ld, source, ("cases", i), case, pools)
            found.append((source.rel, case))
            seen.append((source, ("cases", i), case))
    ld.index(seen, "teaching case")
    return found


def _check_case(ld: _Loader, source: SourceFile, keys: tuple[Any, ...], case: TeachingCase, ids: _Pools) -> None:
    """Every id a case expects must exist, so a misspelt id cannot make an assertion pass."""
    where = f"case {case.id}"
    e = case.expect
    pids = [c.get("presentation") for c in case.input.get("conditions", []) if isinstance(c, dict)]
    pool = {o for pid in pids if pid in ids.presentations for o in ids.presentations[pid].options} or set(ids.options)
    ex = (*keys, "expect")
    ld.known(source, (*ex, "options"), list(e.options), pool, "option of the case's presentations", where)
    for field in ("not_offered", "first"):
        ld.known(source, (*ex, field), getattr(e, field), pool, "option of the case's presentations", where)
    ld.known(source, (*ex, "waits"), list(e.waits), pool, "option of the case's presentations", where)
    for oid, flags in e.waits.items():
        ld.known(source, (*ex, "waits", oid), flags, ids.flags, "red flag", where)
    for field in ("flags", "cleared_flags"):
        ld.known(source, (*ex, field), getattr(e, field), ids.flags, "red flag", where)
    ld.known(source, (*ex, "workup"), e.workup, ids.workup, "work-up", where)
    detail_ids = {d.id for pid in pids if pid in ids.details for d in ids.details[pid]}
    ld.known(source, (*ex, "needs"), e.needs, detail_ids, "detail of the case's presentations", where)
    ld.known(source, (*ex, "fired"), e.fired, ids.rule_ids, "rule", where)
    ld.known(source, (*ex, "not_fired"), e.not_fired, ids.rule_ids, "rule", where)
