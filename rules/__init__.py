"""The rule engine: `assess()` turns a presentation into an assessment with its basis."""

from rules.assess import InputError, assess, default_context
from rules.engine import RuleExecutionError
from rules.knowledge_base import KnowledgeBaseError

__all__ = ["InputError", "KnowledgeBaseError", "RuleExecutionError", "assess", "default_context"]
