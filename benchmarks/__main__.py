"""`make bench`: run every benchmark, print the tables, write BENCHMARKS.md, end with the verdicts.

    .venv/bin/python -m benchmarks            # the full run (about 5 minutes on 2 cores)
    .venv/bin/python -m benchmarks --quick    # small sizes, to try the suite; writes nothing

Generated inputs live in a temporary directory that is removed at the end; nothing is written
into the repository except BENCHMARKS.md (only the part between its `make bench` markers).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import service_records, suite, timing
from rules import default_context

COMMAND = "make bench"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few rounds; writes no file")
    parser.add_argument("--output", type=Path, default=None, help="Markdown file (default BENCHMARKS.md; none with --quick)")
    args = parser.parse_args(argv)
    output = args.output or (None if args.quick else timing.ROOT / "BENCHMARKS.md")
    quick = args.quick
    started = time.perf_counter()
    machine = timing.machine()
    print("machine: " + "; ".join(f"{k}: {v}" for k, v in machine.items()), flush=True)
    kb, engine = default_context()

    sections: list[suite.Section] = []

    def show(section: suite.Section) -> None:
        sections.append(section)
        print("\n" + section.markdown(), flush=True)

    show(suite.single_assessment(kb, engine, rounds=20 if quick else 200))
    show(suite.decision_three_ways(kb, engine, count=300 if quick else 2000, rounds=3 if quick else 10))
    with tempfile.TemporaryDirectory(prefix="myotomy-bench-") as tmp:
        workdir = Path(tmp)
        sizes = (1_000, 2_000) if quick else (10_000, 100_000)
        section, made = suite.batch_scale(kb, workdir, sizes, repeats=1 if quick else 3)
        show(section)
        small = made["source"][sizes[0]]
        show(suite.rule_base_growth(kb, engine, workdir, small, sizes[0], count=200 if quick else 1000,
                                    rounds=2 if quick else 5, repeats=1 if quick else 2))
        show(suite.batch_profile(small, 500 if quick else 3000))
    show(service_records.run(quick))

    machine["load average at end"] = timing.load_average()
    targets = [t for s in sections for t in s.targets]
    minutes = (time.perf_counter() - started) / 60
    header = [
        "# Benchmarks",
        "",
        f"Produced by `{COMMAND}` (`.venv/bin/python -m benchmarks`{' --quick' if quick else ''}) in "
        f"{minutes:.1f} minutes. Timings are figures to read, never tests: `make test` runs none of them.",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in machine.items()),
        "",
        "Other sessions share this machine's two cores; the load averages above and the parallel capacity "
        "measured in the batch section say how much of the machine the run had.",
        "",
        "## Verdicts",
        "",
        "```text",
        *targets,
        "```",
        "",
    ]
    body = "\n".join(header) + "\n" + "\n".join(s.markdown() for s in sections)
    if output is not None:
        timing.write_block(output, COMMAND, body.split("\n", 2)[2])  # the file keeps its own title
        print(f"\nwrote {output}", flush=True)
    print("\n" + "\n".join(targets), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
