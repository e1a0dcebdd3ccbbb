"""In-process counters of what the service left out or refused: numbers only, never codes or patient data."""

from __future__ import annotations

import threading
from collections import Counter


class Metrics:
    """Thread-safe counters, e.g. `conditions_not_mapped`, `resources_skipped`, `calls_refused`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                if n:
                    self._counts[name] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)
