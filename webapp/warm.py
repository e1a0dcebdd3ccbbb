"""Load the knowledge base while the server starts, not when the first browser asks for the page.

`streamlit run app.py` serves page.py through `st.App` (app.py), whose lifespan calls `start`: one
thread imports the page's modules, fills inspect's map of modules (see `_warm`) and loads the
knowledge base and the teaching cases while the browser is still fetching Streamlit's JavaScript
(about a second). Before, all of it ran in the first page's run, about 0.4 s on a quiet machine, on
the path to the first usable page (BENCHMARKS.md). The page takes what was loaded through `knowledge`
and `teaching_cases`, each behind st.cache_resource as before; without a start (AppTest, a test),
they load as before.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from models.knowledge import TeachingCase
from models.loader import KnowledgeBase, load_cases
from models.problems import KnowledgeBaseError
from webapp.knowledge import Knowledge, long_lived

_loaded: dict[str, Any] = {}  # "knowledge": a refreshed Knowledge, "cases": (kb, cases); each taken once
_thread: threading.Thread | None = None


def _warm() -> None:
    import webapp

    for module in ("rules", "rules.render", *(f"webapp.{m.name}" for m in pkgutil.iter_modules(webapp.__path__))):
        importlib.import_module(module)
    # Streamlit's first element of a process checks whether it runs in a REPL with inspect.stack(), which maps
    # each frame to its module by resolving the path of every loaded module (about 860, each a realpath): 110 of
    # the first page's run's 277 ms under cProfile. inspect keeps that map; filled here, the check finds it done.
    inspect.getmodule(compile("", "<warm>", "exec"))
    held = Knowledge()
    try:
        held.refresh()
        cases = _load_cases(held.context[0])
    except KnowledgeBaseError:  # the page's own load reports it
        return
    _loaded.update(knowledge=held, cases=(held.context[0], cases))


def start() -> None:
    """Begin loading in the background (once per process)."""
    global _thread
    if _thread is None:
        _thread = threading.Thread(target=_warm, name="warm-knowledge", daemon=True)
        _thread.start()


@asynccontextmanager
async def lifespan(_app: object) -> AsyncIterator[None]:
    """st.App's lifespan: start loading, and let the server answer at once."""
    start()
    yield


def _wait() -> None:
    if _thread is not None:
        _thread.join()


def knowledge() -> Knowledge:
    """The knowledge base loaded at start (once), else a fresh load; the page's, which `in_use` gives too."""
    global _in_use
    _wait()
    held = _loaded.pop("knowledge", None)
    if held is None:
        held = Knowledge()
        held.refresh()
    _in_use = held
    return held


_in_use: Knowledge | None = None


def in_use() -> Knowledge | None:
    """The knowledge base the page uses (None before a page was drawn): the files the page links to
    (webapp/files.py) are made from the same one."""
    return _in_use


def teaching_cases(kb: KnowledgeBase) -> dict[str, TeachingCase]:
    """The teaching cases of `kb` by id: those loaded at start if they are of `kb`, else loaded now."""
    _wait()
    loaded = _loaded.get("cases")
    if loaded is not None and loaded[0] is kb:
        del _loaded["cases"]
        return loaded[1]
    return _load_cases(kb)


def _load_cases(kb: KnowledgeBase) -> dict[str, TeachingCase]:
    with long_lived():  # kept for the process, like the knowledge base
        return {case.id: case for _, case in load_cases(kb)}
