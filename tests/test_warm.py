"""The knowledge base loaded as the server starts (webapp/warm.py) is the one the page gets, once."""

from __future__ import annotations

from models.loader import load
from webapp import warm


def test_the_page_gets_what_was_loaded_at_start_and_a_fresh_load_after() -> None:
    warm.start()
    held = warm.knowledge()
    kb = held.context[0]
    assert kb.content_hash == load().content_hash
    cases = warm.teaching_cases(kb)
    assert cases and all(case.id == cid for cid, case in cases.items())
    assert warm.teaching_cases(kb) is not cases  # taken once: a second call loads them again
    again = warm.knowledge()  # after st.cache_resource.clear(), for example: a load of its own
    assert again is not held and again.context[0].content_hash == kb.content_hash
