"""`make bench-screen`: the cohort screen as a user runs it, on generated FHIR Bulk Data exports.

    .venv/bin/python -m benchmarks.screen                      # 10,000 and 100,000 patients
    .venv/bin/python -m benchmarks.screen --sizes 10000 50000  # a shorter run
    .venv/bin/python -m benchmarks.screen --quick              # 2,000 and 5,000; writes nothing

Per size, `myotomy-cds screen` runs as a separate process on the default local Dask cluster of 2
worker processes; measured: wall time from start to exit (cluster start, knowledge-base load in
each worker, reading, bucketing, assessing, writing, the summary), plans per second, and the peak
resident memory (VmHWM) of the largest worker. The same assessments (the age and the mapped
presentations of each patient, as JSON Lines) go through `myotomy-cds batch --workers 2` for the
per-assessment comparison; at the smallest size, the screen also runs with one worker for the
speed-up. Figures, never tests. Writes the `make bench-screen` part of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from benchmarks import timing
from benchmarks.batch import _Sampler, command, run_batch
from benchmarks.bulk_export import generate
from service.fhir_input import age_from_birth_date

COMMAND = "make bench-screen"
SPEEDUP_GOAL = 1.7
MEMORY_GOAL = 1.25  # largest worker at the large size / at the small size


@dataclass
class ScreenRun:
    patients: int
    workers: int
    seconds: float
    plans: int
    peak_worker_mb: float
    peak_client_mb: float
    phases: dict[str, float]

    @property
    def plans_per_second(self) -> float:
        return self.plans / self.seconds

    @property
    def patients_per_second_running(self) -> float:
        """Patients per second once the cluster is up and the workers are started: pass 1 and pass 2."""
        return self.patients / (self.phases["reading"] + self.phases["assessing"])


def run_screen(export: Path, out: Path, workers: int) -> ScreenRun:
    start = time.perf_counter()
    process = subprocess.Popen([*command(), "screen", str(export), str(out), "--workers", str(workers)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sampler = _Sampler(process.pid, descendants=True)
    sampler.start()
    _, err = process.communicate()
    seconds = time.perf_counter() - start
    sampler.done.set()
    sampler.join()
    text = err.decode("utf-8", "replace")
    if process.returncode != 0:
        raise RuntimeError(f"screen exited with {process.returncode}: {text[-800:]}")
    counts = next(line for line in text.splitlines() if " patients: " in line)
    plans = int(counts.split(" patients: ", 1)[1].split(" assessed", 1)[0].replace(",", ""))
    phases_line = next(line for line in text.splitlines() if line.startswith("seconds: "))
    phases = {k: float(v) for k, v in (item.rsplit(" ", 1) for item in phases_line[9:].split(", "))}
    workers_mb = [v for k, v in sampler.hwm_kb.items() if k != process.pid]
    return ScreenRun(int(counts.split()[0].replace(",", "")), workers, seconds, plans, max(workers_mb, default=0) / 1024,
                     sampler.hwm_kb.get(process.pid, 0) / 1024, phases)


def batch_input(export, path: Path) -> int:
    """The screen's assessments as batch lines: each patient's age and mapped presentations."""
    today = date.fromisoformat(export.transaction_time[:10])
    lines = []
    for expected in export.patients.values():
        if expected.deceased or expected.unreadable or expected.no_patient or not expected.presentations:
            continue
        age, _ = age_from_birth_date(date.fromisoformat(expected.birth_date), today)
        body = {"conditions": [{"presentation": p} for p in expected.presentations]}
        if age:
            body["age"] = age
        lines.append(json.dumps(body))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.screen", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=(10_000, 100_000), metavar=("SMALL", "LARGE"))
    parser.add_argument("--quick", action="store_true", help="2,000 and 5,000 patients; writes no file")
    args = parser.parse_args(argv)
    small, large = (2_000, 5_000) if args.quick else args.sizes
    started = time.perf_counter()
    machine = timing.machine()
    print("machine: " + "; ".join(f"{k}: {v}" for k, v in machine.items()), flush=True)
    rows, verdicts, runs = [], [], {}
    with tempfile.TemporaryDirectory(prefix="bench-screen-") as tmp:
        work = Path(tmp)
        for size in (small, large):
            t = time.perf_counter()
            export = generate(work / f"export-{size}", size, seed=size)
            print(f"{size:,} patients: export generated in {time.perf_counter() - t:.0f} s "
                  f"({len(export.files)} files)", flush=True)
            for workers in ((1, 2) if size == small else (2,)):
                run = run_screen(export.folder, work / f"out-{size}-{workers}", workers)
                runs[(size, workers)] = run
                phases = ", ".join(f"{k} {v:.1f}" for k, v in run.phases.items())
                print(f"  screen --workers {workers}: {run.seconds:.1f} s ({phases}), {run.plans:,} plans, "
                      f"{run.plans_per_second:.0f} plans/s, {run.patients_per_second_running:.0f} patients/s once "
                      f"started, largest worker {run.peak_worker_mb:.0f} MB", flush=True)
                rows.append(f"| screen | {size:,} | {workers} | {run.seconds:.1f} ({phases}) | {run.plans:,} | "
                            f"{run.plans_per_second:.0f} | {run.patients_per_second_running:.0f} | "
                            f"{run.peak_worker_mb:.0f} | {run.peak_client_mb:.0f} |")
            lines = batch_input(export, work / f"batch-{size}.jsonl")
            batch = run_batch(work / f"batch-{size}.jsonl", lines, 2, work)
            runs[("batch", size)] = batch
            print(f"  batch --workers 2: {batch.seconds:.1f} s, {lines:,} plans, {lines / batch.seconds:.0f} plans/s",
                  flush=True)
            rows.append(f"| batch --workers 2 | {size:,} | 2 | {batch.seconds:.1f} | {lines:,} | "
                        f"{lines / batch.seconds:.0f} | | {batch.peak_worker_rss_mb:.0f} | {batch.peak_rss_mb:.0f} |")
    for size in (small, large):
        screen, batch = runs[(size, 2)], runs[("batch", size)]
        ratio = screen.plans_per_second / (batch.lines / batch.seconds)
        verdicts.append(f"verdict: at {size:,} patients the screen gives {ratio:.2f}x the plans per second of "
                        "batch --workers 2 (it also reads, groups and writes every resource)")
    growth = runs[(large, 2)].peak_worker_mb / runs[(small, 2)].peak_worker_mb
    verdicts.append(f"verdict: largest worker {runs[(small, 2)].peak_worker_mb:.0f} MB at {small:,}, "
                    f"{runs[(large, 2)].peak_worker_mb:.0f} MB at {large:,} ({growth:.2f}x): "
                    + ("flat" if growth <= MEMORY_GOAL else f"NOT flat (goal within {MEMORY_GOAL}x)"))
    one, two = runs[(small, 1)], runs[(small, 2)]
    for name, a, b in (("wall time", one.seconds, two.seconds),
                       ("once started", 1 / one.patients_per_second_running, 1 / two.patients_per_second_running)):
        speedup = a / b
        verdicts.append(f"verdict: 2 workers vs 1 at {small:,} patients, {name}: {speedup:.2f}x "
                        + ("(goal met)" if speedup >= SPEEDUP_GOAL else f"(goal {SPEEDUP_GOAL}x not met)"))
    rate = runs[(large, 2)].patients_per_second_running
    verdicts.append(f"estimate: 10 million patients at the {large:,}-patient rate once started ({rate:.0f} patients/s "
                    f"on 2 workers): {10_000_000 / rate / 3600:.1f} hours on 2 workers, "
                    f"{10_000_000 / rate / 3600 * 2:.0f} worker-hours")
    print("\n" + "\n".join(verdicts), flush=True)
    if not args.quick:
        body = "\n".join([
            "## Cohort screen (`make bench-screen`)",
            "",
            f"Command: `{COMMAND}` · {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · "
            f"{(time.perf_counter() - started) / 60:.1f} minutes in all",
            "",
            "Generated exports (benchmarks/bulk_export.py, 5,000 resources per file, every other file gzipped). "
            "Wall time from start to exit of the command; memory is the kernel's high-water mark (VmHWM) of the "
            "largest worker process and of the command's own process.",
            "",
            "| run | patients | workers | seconds (phases) | plans | plans/s | patients/s once started | largest worker MB | client MB |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            *(f"- {v}" for v in verdicts),
            "",
            *timing.machine_table(),
        ])
        timing.write_block(timing.ROOT / "BENCHMARKS.md", COMMAND, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
