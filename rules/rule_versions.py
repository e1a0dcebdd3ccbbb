"""The rule-version lock, data/rule_versions.yaml: rule id -> {version, sha256 of its content}.

A plan cites each rule with its version, so a printed plan can be traced to what the rule said.
That only holds if a rule whose content changes gets a new version: `kb check` compares every rule
with the lock and refuses a change under an unchanged version; `kb lock` records the rules again
after the version was bumped (and refuses while a changed rule keeps its old version).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from models.knowledge import Rule
from models.loader import KnowledgeBase
from models.problems import Problem, SourceFile

LOCK_NAME = "rule_versions.yaml"
_HEADER = (
    "# Rule id -> the version it has and a SHA-256 of its content (canonical JSON, version left out).\n"
    "# Written by `myotomy-cds kb lock`; `myotomy-cds kb check` refuses a rule whose content changed\n"
    "# while its version did not. Do not edit by hand: bump the rule's version, then run `kb lock`.\n"
)


def rule_hash(rule: Rule) -> str:
    """SHA-256 of the rule's canonical JSON without its version, so that a bump alone changes nothing."""
    content = rule.model_dump(mode="json", exclude={"version"})
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def lock_path(kb: KnowledgeBase) -> Path:
    return kb.directory / LOCK_NAME


def current(kb: KnowledgeBase) -> dict[str, dict[str, Any]]:
    return {rule.id: {"version": rule.version, "sha256": rule_hash(rule)} for rule in kb.rules}


def read_lock(kb: KnowledgeBase) -> dict[str, dict[str, Any]] | None:
    path = lock_path(kb)
    if not path.is_file():
        return None
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return data if isinstance(data, dict) else {}


class _Lines:
    """Where each rule stands in its rules.yaml, for problems that name file and line."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.sources: dict[str, SourceFile] = {}

    def problem(self, rule: Rule, reason: str) -> Problem:
        path = self.kb.directory / "presentations" / rule.presentation / "rules.yaml"
        source = self.sources.get(rule.presentation)
        if source is None:
            rel = str(Path(self.kb.directory.name) / path.relative_to(self.kb.directory))
            source = self.sources[rule.presentation] = SourceFile(path, rel, path.read_text(encoding="utf-8"))
        index = [r.id for r in self.kb.rules_for(rule.presentation)].index(rule.id)
        return Problem(source.rel, source.line(("rules", index, "version")), "", reason)


def check(kb: KnowledgeBase, *, for_lock: bool = False) -> list[Problem]:
    """Every rule against the lock. With for_lock, only what `kb lock` must refuse: a rule whose
    content changed while its version stayed, or a version that went down."""
    lock = read_lock(kb)
    lock_rel = str(Path(kb.directory.name) / LOCK_NAME)
    if lock is None:
        return [] if for_lock else [Problem(lock_rel, None, "", "missing: run `myotomy-cds kb lock` to create it")]
    lines = _Lines(kb)
    problems = []
    for rule in kb.rules:
        locked = lock.get(rule.id)
        if not isinstance(locked, dict):
            if not for_lock:
                problems.append(lines.problem(rule, f"rule {rule.id} is new, not in the lock: run `myotomy-cds kb lock`"))
            continue
        was, digest = locked.get("version"), locked.get("sha256")
        if rule.version == was and rule_hash(rule) != digest:
            problems.append(lines.problem(rule, f"rule {rule.id} changed but its version is still {was}: bump it"))
        elif isinstance(was, int) and rule.version < was:
            problems.append(lines.problem(rule, f"rule {rule.id} is at version {rule.version}, lower than the locked {was}"))
        elif rule.version != was and not for_lock:
            problems.append(lines.problem(rule, f"rule {rule.id} is at version {rule.version}, the lock says {was}: run `myotomy-cds kb lock`"))
    if not for_lock:
        ids = {r.id for r in kb.rules}
        for gone in sorted(set(lock) - ids):
            problems.append(Problem(lock_rel, None, "", f"rule {gone} is in the lock but no longer a rule: run `myotomy-cds kb lock`"))
    return problems


def write_lock(kb: KnowledgeBase) -> Path:
    path = lock_path(kb)
    body = yaml.safe_dump(current(kb), sort_keys=True, default_flow_style=False)
    path.write_text(_HEADER + body, encoding="utf-8")
    return path
