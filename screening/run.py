"""`myotomy-cds screen EXPORT_DIR OUT`: the cohort screen on Dask.

The graph: one Dask bag partition per export file (read_files: each line becomes a resource record
keyed by patient id, or a problem); the resource records are grouped by patient with the bag's
task-based shuffle (it runs on any scheduler, one machine or many); each grouped partition is
assessed patient by patient (screening/patients.py) and written by the worker that assessed it as
one Parquet file (and, with --full, one JSON Lines file of plans) under OUT, so that results never
travel back through the client; the client gets only the counts of each partition and the
problems, and writes the summary (screening/summary.py).

Scheduler: by default a local cluster of `workers` single-threaded processes on this machine
(dask.distributed's LocalCluster), nothing to set up; `--scheduler ADDRESS` runs on an existing
Dask cluster, whose workers must be able to import this project and read EXPORT_DIR and write OUT
(a shared file system or object storage). Without dask.distributed, the multiprocessing scheduler.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from dataclasses import dataclass
from datetime import date
from operator import itemgetter
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from screening.export import Export, Problem, discover, read_files
from screening.patients import Tally, assess_patient

TABLE = "table"  # OUT/table/part-*.parquet: read it whole with pandas.read_parquet(OUT + "/table")
PLANS = "plans.jsonl"
SCHEMA = pa.schema([
    ("patient_id", pa.string()),
    ("status", pa.string()),  # assessed | not_assessed
    ("presentation", pa.string()),
    ("presentation_name", pa.string()),
    ("codes", pa.list_(pa.string())),
    ("age", pa.string()),
    ("stopped", pa.bool_()),
    ("summary", pa.string()),
    ("top_options", pa.list_(pa.string())),
    ("top_strength", pa.string()),
    ("standing_flags", pa.list_(pa.string())),
    ("worst_flag", pa.string()),
    ("needs", pa.list_(pa.string())),
    ("reason", pa.string()),
    ("knowledge_version", pa.string()),
    ("knowledge_hash", pa.string()),
])


@dataclass
class Result:
    export: Export
    tally: Tally
    problems: list[Problem]
    out: str
    scheduler: str


def _is_problem(record: tuple) -> bool:
    return record[0] == "p"


def _is_resource(record: tuple) -> bool:
    return record[0] == "r"


def _part_name(groups: list[tuple[str, list[tuple]]]) -> str:
    """Named by its patients, so a task run twice (a worker lost) overwrites its own file."""
    digest = hashlib.sha256()
    for pid in sorted(pid for pid, _ in groups):
        digest.update(pid.encode() + b"\0")
    return "part-" + digest.hexdigest()[:20]


def assess_partition(groups: list[tuple[str, list[tuple]]], today: date, out: str, full: bool) -> list[Tally]:
    """One grouped partition: assess every patient, write its table part (and plans), return its counts."""
    from rules.batch import plan_json

    tally = Tally()
    rows: list[dict[str, Any]] = []
    plans: list[bytes] = []
    for pid, records in groups:
        patient_rows, patient_plans = assess_patient(pid, records, today, tally)
        rows.extend(patient_rows)
        if full:
            plans.extend(b'{"patient_id": %s, "plan": %s}\n' % (json.dumps(p).encode(), plan_json(plan))
                         for p, plan in patient_plans)
    tally.rows = len(rows)
    name = _part_name(groups)
    if rows:
        with fsspec.open(f"{out}/{TABLE}/{name}.parquet", "wb") as handle:
            pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), handle)
    if plans:
        with fsspec.open(f"{out}/plans/{name}.jsonl", "wb") as handle:
            handle.write(b"".join(plans))
    return [tally]


def _prepare(out: str) -> None:
    """Remove what an earlier screen wrote here (only the names this command writes)."""
    fs, root = fsspec.core.url_to_fs(out)
    fs.makedirs(root, exist_ok=True)
    for name in (TABLE, "plans", PLANS):
        path = f"{root}/{name}"
        if fs.exists(path):
            fs.rm(path, recursive=True)
    fs.makedirs(f"{root}/{TABLE}", exist_ok=True)


def _join_plans(out: str) -> None:
    """The worker-written plan files, joined into OUT/plans.jsonl in a fixed order."""
    fs, root = fsspec.core.url_to_fs(out)
    if not fs.exists(f"{root}/plans"):
        fs.pipe(f"{root}/{PLANS}", b"")
        return
    with fs.open(f"{root}/{PLANS}", "wb") as target:
        for path in sorted(fs.ls(f"{root}/plans", detail=False)):
            with fs.open(path, "rb") as source:
                while chunk := source.read(1 << 20):
                    target.write(chunk)
    fs.rm(f"{root}/plans", recursive=True)


def build(export: Export, out: str, full: bool) -> tuple[Any, Any]:
    """The Dask graph: (a bag of per-partition counts, a bag of problems)."""
    import dask.bag as db

    files = list(export.files)
    read = db.from_sequence([[f] for f in files], npartitions=len(files)).map_partitions(
        lambda parts: read_files([f for part in parts for f in part])
    )
    grouped = read.filter(_is_resource).groupby(itemgetter(1), shuffle="tasks")
    tallies = grouped.map_partitions(assess_partition, export.today, out, full)
    return tallies, read.filter(_is_problem)


def _bar(total: int, show: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="part", desc="screening", file=sys.stderr, disable=not show)


def _run_distributed(tallies: Any, problems: Any, address: str | None, workers: int, show: bool) -> tuple[list, list, str]:
    from distributed import Client, LocalCluster, as_completed

    if address:
        client, cluster, where = Client(address), None, f"the Dask cluster at {address}"
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client, where = Client(cluster), f"a local Dask cluster of {workers} processes"
    try:
        parts = tallies.to_delayed()
        futures = client.compute([*parts, problems], sync=False)
        *part_futures, problem_future = futures
        found: list[Tally] = []
        with _bar(len(part_futures), show) as bar:
            for future in as_completed(part_futures):
                found.extend(future.result())
                bar.update(1)
        return found, list(problem_future.result()), where
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _run_multiprocessing(tallies: Any, problems: Any, workers: int, show: bool) -> tuple[list, list, str]:
    import dask
    from dask.diagnostics import ProgressBar

    bar = ProgressBar(out=sys.stderr) if show else None
    if bar:
        bar.register()
    try:
        found, problem_list = dask.compute(tallies, problems, scheduler="processes", num_workers=workers)
    finally:
        if bar:
            bar.unregister()
    return list(found), list(problem_list), f"dask's multiprocessing scheduler, {workers} processes"


def screen(export_dir: str, out: str, as_of: date | None = None, scheduler: str | None = None,
           workers: int = 2, full: bool = False, show_progress: bool | None = None) -> Result:
    """Screen every patient of the export; write OUT/table, OUT/summary.* (and OUT/plans.jsonl)."""
    export = discover(export_dir, as_of)
    _prepare(out)
    tallies, problems = build(export, out, full)
    show = sys.stderr.isatty() if show_progress is None else show_progress
    try:
        import distributed  # noqa: F401
        have_distributed = True
    except ImportError:
        have_distributed = False
    if have_distributed:
        found, problem_list, where = _run_distributed(tallies, problems, scheduler, workers, show)
    elif scheduler:
        raise RuntimeError("--scheduler needs dask.distributed (pip install distributed)")
    else:
        found, problem_list, where = _run_multiprocessing(tallies, problems, workers, show)
    total = Tally()
    for part in found:
        total.add(part)
    listed = sorted([*export.problems, *(Problem(p[1], p[2], p[3]) for p in problem_list)],
                    key=lambda p: (p.file, p.line))
    if full:
        _join_plans(out)
    result = Result(export, total, listed, out, where)
    from screening.summary import write_summary

    write_summary(result)
    return result


def counts_line(result: Result) -> str:
    t = result.tally
    return (f"{t.patients} patients: {t.assessed_patients} assessed ({t.rows} rows), "
            f"{t.not_assessed_patients} not assessed, {t.deceased} deceased, {t.nothing_mapped} with no mapped "
            f"presentation; {len(result.problems)} lines or files not read")


def run_cli(export_dir: str, out: str, as_of: str | None, scheduler: str | None, workers: int, full: bool) -> int:
    """The command: screen, then print where the outputs are and the counts (stderr)."""
    day = date.fromisoformat(as_of) if as_of else None
    result = screen(export_dir, out, day, scheduler, workers, full)
    print(counts_line(result), file=sys.stderr)
    print(f"table: {out}/{TABLE}/ (Parquet)  summary: {out}/summary.html, {out}/summary.md"
          + (f"  plans: {out}/{PLANS}" if full else ""), file=sys.stderr)
    return 0
