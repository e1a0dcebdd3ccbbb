"""The rule engine: `assess()` turns a presentation into a plan with its basis.

Importing this package does not start durable-rules (the engine is built on first use), nor import the
models: `myotomy-cds screen` (rules/cli.py) starts its workers' forkserver before it imports them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["InputError", "KnowledgeBaseError", "RuleExecutionError", "assess", "default_context"]


def __getattr__(name: str) -> Any:
    if name in ("InputError", "assess", "default_context"):
        from rules import planner

        return getattr(planner, name)
    if name == "KnowledgeBaseError":
        from models.problems import KnowledgeBaseError

        return KnowledgeBaseError
    if name == "RuleExecutionError":
        from rules.engine import RuleExecutionError

        return RuleExecutionError
    raise AttributeError(name)
