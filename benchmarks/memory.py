"""Memory benchmark: 100,000 assessments in one process leave no engine state behind.

Resident memory (VmRSS) is read after the first 1,000 assessments and after all 100,000 of the
mixed teaching cases; the goal is a difference within 10 MB. Run: `make bench-memory`.
"""

from __future__ import annotations

import gc
import sys
import time
from pathlib import Path

from benchmarks import timing

TOTAL = 100_000
WARM = 1_000


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    return kib / 1024


def main() -> list[str]:
    from rules import assess
    from models.loader import load_cases

    cases = [case.input for _, case in load_cases()]
    start = time.perf_counter()
    after_warm = 0.0
    for i in range(TOTAL):
        assess(cases[i % len(cases)])
        if (i + 1) % 20_000 == 0:
            print(f"{i + 1:,} / {TOTAL:,} assessments", flush=True)
        if i + 1 == WARM:
            gc.collect()
            after_warm = rss_mib()
    gc.collect()
    after_all = rss_mib()
    elapsed = time.perf_counter() - start
    growth = after_all - after_warm
    lines = [
        "## Memory over 100,000 assessments (one process)",
        "",
        f"Command: `make bench-memory` · {len(cases)} teaching cases in turn · {elapsed:.1f} s in all · "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        *timing.machine_table(),
        "",
        "| point | resident memory (MiB) |",
        "|---|---|",
        f"| after {WARM:,} assessments | {after_warm:.1f} |",
        f"| after {TOTAL:,} assessments | {after_all:.1f} |",
        f"| growth | {growth:+.1f} |",
        "",
        "```text",
        f"target memory_growth_100k: {growth:+.1f} MiB (goal <= 10 MiB) {'met' if growth <= 10 else 'missed'}",
        "```",
    ]
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else timing.ROOT / "BENCHMARKS.md"
    timing.write_block(output, "make bench-memory", "\n".join(main()))
    print(f"wrote {output}")
