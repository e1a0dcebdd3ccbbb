"""The knowledge base the app runs on, reloaded when data/ changes, the last good one kept on a mistake.

A knowledge engineer edits data/ with the app open and wants to see the edit on the next click, not
after a server restart. A run compares a fingerprint of data/ (each file's path, size and mtime) with
the one last loaded, at most once every CHECK_EVERY seconds per process: the walk costs 2 to 10 ms,
too much for every rerun of a page whose floor is about 140 ms. The Reload button forces a load.
If the edited files do not load, the app keeps assessing with the last knowledge base that did and
shows every problem (file, line, rule id, reason) instead of a traceback. One Knowledge per process,
shared by the sessions: the engine is safe across threads, and a swap is one assignment under a lock.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from models import loader
from models.loader import KnowledgeBase
from models.problems import KnowledgeBaseError, Problem
from rules.engine import Engine

CHECK_EVERY = 1.0  # seconds between two looks at data/ (a click after a save is later than that)


def fingerprint(root: Path) -> tuple[tuple[str, int, int], ...]:
    """Path, size and modification time of every file under data/: changes with any saved edit."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            try:
                info = os.stat(path)
            except OSError:  # removed between the listing and the stat: the next run sees it gone
                continue
            found.append((os.path.relpath(path, root), info.st_size, info.st_mtime_ns))
    return tuple(found)


@dataclass
class Knowledge:
    """The knowledge base in use, and the problems of the last edit that did not load (if any)."""

    root: Path | None = None  # None: the loader's data folder (MYOTOMY_CDS_DATA or data/), read at each refresh
    kb: KnowledgeBase | None = None
    engine: Engine | None = None
    problems: tuple[Problem, ...] = ()
    loaded_print: tuple = ()
    tried_print: tuple = ()
    check_every: float = CHECK_EVERY
    checked_at: float = float("-inf")
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def refresh(self, force: bool = False) -> bool:
        """Load data/ again if it changed since the last try (or if forced); True if a new knowledge
        base is now in use. Raises KnowledgeBaseError only when no knowledge base has ever loaded."""
        if not force and self.kb is not None and time.monotonic() - self.checked_at < self.check_every:
            return False
        self.checked_at = time.monotonic()
        root = Path(self.root or loader.DATA_DIR)
        now = fingerprint(root)
        if not force and now == self.tried_print and self.kb is not None:
            return False
        with self._lock:
            if not force and now == self.tried_print and self.kb is not None:
                return False  # another session loaded it meanwhile
            self.tried_print = now
            try:
                with long_lived():
                    kb = loader.load(root)
                    engine = Engine(kb)
            except KnowledgeBaseError as error:
                self.problems = tuple(error.problems)
                if self.kb is None:
                    raise
                return False
            replaced = self.kb is not None
            changed = not replaced or kb.content_hash != self.kb.content_hash
            self.kb, self.engine, self.problems, self.loaded_print = kb, engine, (), now
            if replaced:  # the replaced knowledge base was frozen with the rest: its cycles (model classes) go now
                _collect_frozen()
            return changed

    @property
    def context(self) -> tuple[KnowledgeBase, Engine]:
        assert self.kb is not None and self.engine is not None, "refresh() first"
        return self.kb, self.engine


@contextmanager
def long_lived() -> Iterator[None]:
    """Build objects that live as long as the process (the knowledge base, the engine, the teaching cases)
    without the cyclic collector, then move them, and the modules loaded so far, out of its scans (gc.freeze).
    The first page's run made about 190 collections while loading, 0.1 to 0.16 s of its 0.5 to 0.7 s; and
    Streamlit collects in full after every script run (runner.postScriptGC), which walked the about 100,000
    objects of the knowledge base, 50 to 70 ms, while the browser waited for the run's last messages
    (BENCHMARKS.md). A load leaves no cyclic garbage (gc.collect() finds none after it), so nothing is
    frozen that should have been freed; a replaced knowledge base is collected by `_collect_frozen`."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        if collecting:
            gc.enable()


def _collect_frozen() -> None:
    """After a reload: put what was frozen back in the collector's sight, collect what is no longer used (the
    replaced knowledge base's input model classes live in reference cycles) and freeze what is left. One full
    collection, 50 to 70 ms, once per edit of data/."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


# --- on screen ----------------------------------------------------------------------------------------

def problem_list(problems: tuple[Problem, ...] | list[Problem]) -> str:
    """Every problem as a Markdown bullet: file and line, then the rule or item, then the reason."""
    from webapp.text import esc

    def one(p: Problem) -> str:
        at = f"{p.file}, line {p.line}" if p.line else p.file
        return f"- **{esc(at)}** — {esc(p.where)}: {esc(p.reason)}" if p.where else f"- **{esc(at)}** — {esc(p.reason)}"

    return "\n".join(one(p) for p in problems)


def knowledge_bar(kb: KnowledgeBase, problems: tuple[Problem, ...], *, button: bool = True) -> None:
    """The version and hash in use with a Reload button; the problems of a failed edit, if any."""
    import streamlit as st
    from webapp.text import esc

    left, right = st.columns([3, 1], vertical_alignment="center")
    left.caption(f"Knowledge base in use: {esc(kb.version)} · content hash `{kb.content_hash[:12]}`")
    if button:
        right.button("Reload knowledge", key="reload_knowledge_button", icon=":material/refresh:", type="tertiary",
                     on_click=lambda: st.session_state.update(reload_knowledge=True),
                     help="Load data/ again now. Saved edits are also picked up on the next click by themselves.")
    if problems:
        st.error(
            f"**The edited knowledge base has {len(problems)} problem{'s' if len(problems) > 1 else ''}, so it is "
            f"not in use.** The app keeps assessing with knowledge base {esc(kb.version)} (content hash "
            f"`{kb.content_hash[:12]}`), the last that loaded. Fix these and save; the next click loads the files "
            "again.\n\n" + problem_list(problems),
            icon=":material/rule:",
        )
