"""Service speed on realistic records: server time of a patient-view call, from body bytes to cards.

    .venv/bin/python -m benchmarks.service_records          # make bench-records
    .venv/bin/python -m benchmarks.service_records --quick

Records come from benchmarks/records.py (seeded). Server time is `_answer_call`: JSON, FHIR reading,
rules, cards and the database write of issued card uuids, as the thread pool runs it; the HTTP
transport is left out. Goals: a typical record (a few hundred Observations) under 30 ms at the median,
4,000 Observations under 300 ms at the median. Verdict lines print figures; no test fails on a clock.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from datetime import date
from pathlib import Path

from benchmarks import records, timing
from benchmarks.suite import Section
from rules import default_context

TODAY = date(2026, 1, 15)
TYPICAL_GOAL_MS, LARGE_GOAL_MS = 30.0, 300.0


def _server_ms(answer: object, state: object, raw: bytes) -> float:
    started = time.perf_counter()
    answer(state, raw, TODAY)  # type: ignore[operator]
    return (time.perf_counter() - started) * 1000


def run(quick: bool = False) -> Section:
    from service.app import _answer_call, create_app
    from tests.cds import dev_settings, local_client

    kb, engine = default_context()
    section = Section("Service on realistic records")
    patients = records.cohort(kb, 40 if quick else 120)
    typical = [r for r in patients if len(r.observations) <= 500]
    large = records.record(kb, 99_999, random.Random(11), TODAY, observations=4000)
    bodies = [json.dumps(records.hook_request(r)).encode() for r in typical]
    large_body = json.dumps(records.hook_request(large)).encode()
    with tempfile.TemporaryDirectory(prefix="myotomy-bench-records-") as tmp:
        app = create_app((kb, engine), today=lambda: TODAY, settings=dev_settings(Path(tmp)))
        with local_client(app):
            state = app.state.holder["state"]
            for body in bodies[:5]:
                _server_ms(_answer_call, state, body)  # warm-up
            rounds = 1 if quick else 3
            small = [_server_ms(_answer_call, state, body) for _ in range(rounds) for body in bodies]
            big = [_server_ms(_answer_call, state, large_body) for _ in range(5 if quick else 15)]
    observations = sorted(len(r.observations) for r in typical)
    section.add(
        f"{len(typical)} typical synthetic records (seed 7; {observations[0]}-{observations[-1]} Observations, "
        f"bodies {min(map(len, bodies)) // 1024}-{max(map(len, bodies)) // 1024} KiB), {rounds} round(s); one record "
        f"with 4,000 Observations ({len(large_body) // 1024} KiB). Server time: body bytes to cards, no HTTP.",
        "",
        "| records | median ms | p95 ms | max ms |",
        "|---|---|---|---|",
        f"| typical | {timing.median(small):.1f} | {timing.p95(small):.1f} | {max(small):.1f} |",
        f"| 4,000 Observations | {timing.median(big):.1f} | {timing.p95(big):.1f} | {max(big):.1f} |",
        "",
        f"Ratio 4,000-Observation record / typical record (medians): {timing.median(big) / timing.median(small):.1f}.",
    )
    section.target("typical record, median server time", f"{timing.median(small):.1f} ms", f"< {TYPICAL_GOAL_MS:g} ms",
                   timing.median(small) < TYPICAL_GOAL_MS)
    section.target("4,000 Observations, median server time", f"{timing.median(big):.1f} ms", f"< {LARGE_GOAL_MS:g} ms",
                   timing.median(big) < LARGE_GOAL_MS)
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.service_records", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer records and rounds")
    args = parser.parse_args(argv)
    section = run(args.quick)
    print(section.markdown())
    print("\n".join(section.targets))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
