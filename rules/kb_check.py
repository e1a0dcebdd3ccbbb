"""`myotomy-cds kb check` and `kb lock`: what a knowledge engineer runs before committing.

check: every problem of the knowledge files and the teaching cases at once (file:line: id: reason,
with "did you mean"), every rule whose content changed under an unchanged version, every case
whose input the knowledge refuses, and the rules that no teaching case fires. Any of these: exit 2.
lock: record the rules' versions and content hashes again, once the versions have been bumped.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Iterable

from models.loader import KnowledgeBase, load, load_with_cases
from models.problems import KnowledgeBaseError, Problem
from rules import rule_versions
from rules.engine import Engine
from rules.planner import InputError, assess

EXIT_OK, EXIT_PROBLEMS = 0, 2


def print_problems(title: str, problems: Iterable[Problem | str], err: IO[str]) -> None:
    problems = list(problems)
    print(f"{title}: {len(problems)} problem{'s' if len(problems) != 1 else ''}", file=err)
    for problem in problems:
        print(f"  {problem}", file=err)


def check(root: Path | None = None, out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    """Exit status 0 when the knowledge in `root` (default data/) has no problem, else 2."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        kb, cases = load_with_cases(root)
    except KnowledgeBaseError as error:
        print_problems("knowledge base is broken", error.problems, err)
        return EXIT_PROBLEMS
    problems: list[Problem] = list(rule_versions.check(kb))
    context = (kb, Engine(kb))
    fired: set[str] = set()
    for file, case in cases:
        try:
            fired.update(assess(case.input, context=context).fired_rules)
        except InputError as error:
            problems.append(Problem(file, None, f"case {case.id}", f"invalid input: {error}"))
    unexercised = [r for r in kb.rules if r.id not in fired]
    print(summary(kb, len(cases)), file=out)
    print(f"rules not exercised by any teaching case: {len(unexercised)}", file=out)
    for rule in unexercised:
        print(f"  {rule.id} ({kb.directory.name}/presentations/{rule.presentation}/rules.yaml)", file=out)
    if problems:
        print_problems("knowledge base is broken", problems, err)
    return EXIT_PROBLEMS if problems or unexercised else EXIT_OK


def summary(kb: KnowledgeBase, cases: int) -> str:
    return (
        f"knowledge base {kb.version} ({kb.content_hash[:16]}): {len(kb.presentations)} presentations, "
        f"{len(kb.options)} options, {len(kb.rules)} rules, {len(kb.citations)} citations, {cases} teaching cases"
    )


def lock(root: Path | None = None, out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    """Rewrite the lock of `root` (default data/); refused (exit 2) while a changed rule keeps its version."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        kb = load(root)
    except KnowledgeBaseError as error:
        print_problems("knowledge base is broken", error.problems, err)
        return EXIT_PROBLEMS
    refused = rule_versions.check(kb, for_lock=True)
    if refused:
        print_problems("the lock is not rewritten", refused, err)
        return EXIT_PROBLEMS
    path = rule_versions.write_lock(kb)
    print(f"{path}: {len(kb.rules)} rules locked", file=out)
    return EXIT_OK
