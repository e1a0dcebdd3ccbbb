"""A partition's counts: what the workers send back to the client, which adds them up for the summary.
A module of its own so that the client imports neither the planner nor the FHIR reading for it."""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field

MAX_LISTED = 1000  # not-assessed patients kept for the summary, the first by patient id (all are in the table)


@dataclass
class Tally:
    """What a partition saw, in counts small enough to send back to the client and add up."""

    patients: int = 0
    resources: Counter = field(default_factory=Counter)  # by type
    assessed_patients: int = 0
    deceased: int = 0
    nothing_mapped: int = 0
    not_assessed_patients: int = 0
    conditions_not_mapped: int = 0
    conditions_not_current: int = 0
    entries_skipped: int = 0
    rows: int = 0
    assessed: Counter = field(default_factory=Counter)  # presentation -> rows assessed
    stopped: Counter = field(default_factory=Counter)  # presentation -> rows with a standing stop flag
    flags: Counter = field(default_factory=Counter)  # (presentation, severity, flag id) -> rows
    needs: Counter = field(default_factory=Counter)  # (presentation, detail label) -> rows
    top: Counter = field(default_factory=Counter)  # (presentation, option name, strength) -> rows
    not_assessed: list = field(default_factory=list)  # (patient id, presentation or "", reason): the first by id
    not_assessed_reasons: Counter = field(default_factory=Counter)  # reason kind -> rows

    def add(self, other: "Tally") -> "Tally":
        for name, value in vars(other).items():
            mine = getattr(self, name)
            if isinstance(value, Counter):
                mine.update(value)
            elif isinstance(value, list):  # the first by patient id, however the patients were split into buckets
                mine[:] = heapq.nsmallest(MAX_LISTED, [*mine, *value])
            else:
                setattr(self, name, mine + value)
        return self
