"""Shared fixtures: the real knowledge base and engine, built once for the whole run."""

from __future__ import annotations

import pytest

from rules import default_context
from models.loader import KnowledgeBase


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return default_context()[0]
