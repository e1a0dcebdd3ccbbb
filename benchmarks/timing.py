"""Interleaved timing, the statistics every table reports, and the machine the figures come from.

Contenders of one comparison run in the same process over the same inputs; for every input of
every round each contender is called once, in an order that rotates, so that drift in the
machine (other processes, frequency, caches) falls on all of them alike.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Sequence

ROOT = Path(__file__).resolve().parent.parent


def p95(values: Sequence[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, -(-95 * len(ordered) // 100) - 1))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def timer_overhead_ns(samples: int = 20_000) -> float:
    """The median cost of reading the clock twice, taken off every sample."""
    clock = time.perf_counter_ns
    spans = []
    for _ in range(samples):
        start = clock()
        spans.append(clock() - start)
    return statistics.median(spans)


@dataclass
class Samples:
    """Per-call times in nanoseconds; index k of every contender is the same input and round."""

    times: dict[str, list[float]]

    def median_us(self, name: str) -> float:
        return median(self.times[name]) / 1000

    def p95_us(self, name: str) -> float:
        return p95(self.times[name]) / 1000

    def ratio(self, a: str, b: str) -> float:
        """Median over the same inputs of time(a) / time(b)."""
        return median([x / y for x, y in zip(self.times[a], self.times[b]) if y > 0])


def interleaved(contenders: dict[str, Callable[[Any], Any]], inputs: Sequence[Any], rounds: int) -> Samples:
    """Call every contender on every input, `rounds` times, in rotating order; per-call times."""
    names = list(contenders)
    calls = [contenders[n] for n in names]
    times: dict[str, list[float]] = {n: [] for n in names}
    lists = [times[n] for n in names]
    overhead = timer_overhead_ns()
    clock = time.perf_counter_ns
    count = len(names)
    for r in range(rounds):
        for i, item in enumerate(inputs):
            shift = (r + i) % count
            for k in range(count):
                j = (k + shift) % count
                call = calls[j]
                start = clock()
                call(item)
                lists[j].append(max(0.0, clock() - start - overhead))
    return Samples(times)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, str]:
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "memory": _memory(),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "packages": ", ".join(
            f"{p} {_version(p)}" for p in ("durable-rules", "clipspy", "pydantic", "pydantic-core")
        ),
        "load average at start": load_average(),
    }


def write_block(path: Path, command: str, body: str) -> None:
    """Replace the part of `path` between `command`'s markers, keeping whatever else the file holds,
    so that `make bench`, `make bench-app` and `make bench-memory` each refresh only their own part."""
    begin, end = f"<!-- BEGIN {command} -->", f"<!-- END {command} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if path.exists():
        text = path.read_text(encoding="utf-8")
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            text = head + block + rest.split(end, 1)[1]
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
    else:
        text = "# Benchmarks\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def machine_table() -> list[str]:
    """The machine facts as a Markdown table, for a section that runs on its own."""
    return ["| machine | |", "|---|---|", *(f"| {k} | {v} |" for k, v in machine().items())]

