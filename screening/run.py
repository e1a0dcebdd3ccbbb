"""`myotomy-cds screen EXPORT_DIR OUT`: the cohort screen on Dask.

Two passes, each a Dask bag. Pass 1, a partition per export file: each line becomes a resource
record or a problem (screening/export.py), and the records are written into patient buckets (a
crc32 of the patient id) under OUT/_scratch. Pass 2, a partition per bucket: its patients are
assessed (screening/patients.py) and the worker writes the bucket's rows as one Parquet file (and,
with --full, its plans as JSON Lines) under OUT. Buckets are sized from the export (about
BUCKET_BYTES each), so the memory of a task does not grow with the export: this is a shuffle
through storage, which a bag's in-memory task shuffle is not. Results never travel back through
the client, which gets only the counts of each bucket and the problems, and writes the summary
(screening/summary.py).

Scheduler: by default a local cluster of `workers` single-threaded processes on this machine
(dask.distributed's LocalCluster), nothing to set up; its workers are forked from a forkserver that
imported screening/preload.py, so they start with the engine built; `--scheduler ADDRESS` runs on an existing
Dask cluster, whose workers must be able to import this project and read EXPORT_DIR and write OUT
(a shared file system or object storage). Without dask.distributed, the multiprocessing scheduler.
Both start worker processes from a fresh interpreter (forkserver, spawn), which re-runs the caller's main module: from a script of your
own, call `screen()` under `if __name__ == "__main__":`.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import logging
import math
import pickle
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from datetime import date
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from screening.export import Export, ExportFile, Problem, discover, read_file
from screening.tally import Tally
from screening.summary import Labels, import_plotting_soon, labels_of, write_summary

TABLE = "table"  # OUT/table/part-*.parquet: read it whole with pandas.read_parquet(OUT + "/table")
PLANS = "plans.jsonl"
SCRATCH = "_scratch"  # pass 1's patient buckets; removed at the end
BUCKET_BYTES = 2 * 1024 * 1024  # about 1,500 patients of a typical export: small tasks, flat worker memory
MIN_BUCKETS = 16  # at 10,000 patients 8 tasks per worker of 2: the last to finish leaves the other idle for less
FLUSH_RECORDS = 20_000
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

# no dashboard, and the scheduler's own HTTP server on a free port: with `dashboard_address=None` it
# still takes 8787 and warns when another Dask cluster on the machine has it
NO_DASHBOARD = {"dashboard": False, "dashboard_address": ":0"}


@dataclass
class Result:
    export: Export
    tally: Tally
    problems: list[Problem]
    out: str
    scheduler: str
    seconds: dict[str, float]  # start (cluster up), reading (pass 1), assessing (pass 2), summary
    labels: Labels | None = None  # the workers' knowledge base, as the summary names it; None: load it


def buckets_for(files: list[ExportFile]) -> int:
    """How many patient buckets: about BUCKET_BYTES of NDJSON each (gzip counted at about 8 times its
    size), and at least MIN_BUCKETS, so that workers stay busy on a small export and the memory of a
    task stays the same on a large one."""
    total = 0
    for file in files:
        fs, path = fsspec.core.url_to_fs(file.path)
        try:
            size = fs.size(path) or 0
        except OSError:
            size = 0
        total += size * (8 if file.name.endswith(".gz") else 1)
    return max(MIN_BUCKETS, math.ceil(total / BUCKET_BYTES))


def bucket_of(pid: str, buckets: int) -> int:
    """The same on every machine and every run (not Python's salted hash)."""
    return zlib.crc32(pid.encode("utf-8")) % buckets


def split_file(file: ExportFile, buckets: int, scratch: str) -> list[tuple]:
    """Pass 1, one task per file: its resource records into the scratch bucket of their patient (a
    file per bucket, written every FLUSH_RECORDS records so memory does not grow with the file);
    returns the file's problems."""
    problems: list[tuple] = []
    pending: dict[int, list[tuple]] = {}
    held = chunk = 0

    def flush() -> None:
        nonlocal held, chunk
        for bucket, records in pending.items():
            with fsspec.open(f"{scratch}/{bucket:05d}/{file.name}.{chunk}.pkl", "wb") as handle:
                pickle.dump(records, handle, protocol=pickle.HIGHEST_PROTOCOL)
        pending.clear()
        held, chunk = 0, chunk + 1

    from screening.patients import text_read

    keep_text = file.rtype in text_read()
    for record in read_file(file):
        if record[0] == "p":
            problems.append(record)
            continue
        if not keep_text:  # only counted in pass 2: its JSON text need not travel through the buckets
            record = record[:5] + (None,)
        pending.setdefault(bucket_of(record[1], buckets), []).append(record)
        held += 1
        if held >= FLUSH_RECORDS:
            flush()
    flush()
    return problems


def _bucket_records(scratch: str, bucket: int) -> dict[str, list[tuple]]:
    fs, root = fsspec.core.url_to_fs(f"{scratch}/{bucket:05d}")
    groups: dict[str, list[tuple]] = {}
    if not fs.exists(root):
        return groups
    for path in sorted(fs.ls(root, detail=False)):
        with fs.open(path, "rb") as handle:
            for record in pickle.load(handle):
                groups.setdefault(record[1], []).append(record)
    return groups


def assess_bucket(bucket: int, scratch: str, today: date, out: str, full: bool) -> Tally:
    """Pass 2, one task per bucket: assess its patients, write its table part (and plans), return its counts.
    Named by bucket, so a task run twice (a worker lost) overwrites its own files."""
    from rules.batch import plan_json
    from screening.patients import assess_patient

    tally = Tally()
    rows: list[dict[str, Any]] = []
    plans: list[bytes] = []
    for pid, records in sorted(_bucket_records(scratch, bucket).items()):
        patient_rows, patient_plans = assess_patient(pid, records, today, tally, full)
        rows.extend(patient_rows)
        if full:
            plans.extend(b'{"patient_id": %s, "plan": %s}\n' % (json.dumps(p).encode(), plan_json(plan))
                         for p, plan in patient_plans)
    tally.rows = len(rows)
    if rows:
        with fsspec.open(f"{out}/{TABLE}/part-{bucket:05d}.parquet", "wb") as handle:
            pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), handle)
    if plans:
        with fsspec.open(f"{out}/plans/part-{bucket:05d}.jsonl", "wb") as handle:
            handle.write(b"".join(plans))
    return tally


def _prepare(out: str) -> None:
    """Remove what an earlier screen wrote here (only the names this command writes)."""
    fs, root = fsspec.core.url_to_fs(out)
    fs.makedirs(root, exist_ok=True)
    for name in (TABLE, "plans", PLANS, SCRATCH):
        path = f"{root}/{name}"
        if fs.exists(path):
            fs.rm(path, recursive=True)
    fs.makedirs(f"{root}/{TABLE}", exist_ok=True)


def _join_plans(out: str) -> None:
    """The worker-written plan files, joined into OUT/plans.jsonl in bucket order."""
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


def passes(export: Export, out: str, full: bool) -> tuple[Any, Any]:
    """The two Dask bags: pass 1 (a partition per file: problems), pass 2 (a partition per bucket: counts).
    Pass 2 reads what pass 1 wrote, so it is computed after it."""
    import dask.bag as db

    files = list(export.files)
    buckets = buckets_for(files)
    scratch = f"{out}/{SCRATCH}"
    split = db.from_sequence(files, npartitions=len(files)).map(split_file, buckets, scratch).flatten()
    assessed = db.from_sequence(range(buckets), npartitions=buckets).map(assess_bucket, scratch, export.today, out, full)
    return split, assessed


def _bar(total: int, show: bool, desc: str, unit: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, disable=not show)


GC_GEN0 = 10_000  # allocations between young collections (Python's default 700)


def warm() -> Labels:
    """Build this process's knowledge base, engine and terminology (cached per process), import what a
    task needs; return the knowledge base's labels for the summary, so the client need not load it."""
    import pyarrow.parquet  # noqa: F401 - with pandas, which pyarrow imports on its first table

    from screening.patients import context

    kb = context()[0]
    pa.Table.from_pylist([], schema=SCHEMA)
    _settle_collector()
    return labels_of(kb)


def _settle_collector() -> None:
    """Spare a worker the garbage collector's walks over what lives as long as it does.

    Measured with gc.callbacks on half the buckets of 100,000 patients: the collector took 1.3-1.8 CPU
    seconds of about 15, most of it in full collections walking the knowledge base, the engine and the imports.
    Frozen (gc.freeze, done in the forkserver before it forks the local workers, and again in each worker),
    they are never walked, and a forked worker does not write to the pages it shares with the forkserver;
    a screen's garbage is mostly acyclic (JSON values, plans, rows), freed by reference counting, so
    young collections are made rarer too. About 0.6 s of collector time remains."""
    gc.freeze()
    gc.set_threshold(GC_GEN0, *gc.get_threshold()[1:])


FORKSERVER = "distributed.worker.multiprocessing-method"


def _start_forkserver() -> bool:
    """Start the process the local workers will be forked from, with screening/preload.py imported in it
    (imports done, engine built), so that its CPU is paid once, not once per worker; started first thing,
    it builds while this process imports dask, reads the manifest and starts the scheduler. Spawn and
    forkserver both start from a fresh interpreter (never a fork of this multi-threaded client). The
    preload list is read when the server starts, so distributed's own list, which it sets later, does
    not replace ours. False where there is no forkserver (Windows): workers spawned, as before."""
    import multiprocessing
    from multiprocessing import forkserver

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return False
    forkserver.set_forkserver_preload(["screening.preload"])
    forkserver.ensure_running()
    return True


def _stop_forkserver() -> None:
    """Once the local cluster is closed, stop its forkserver and wait for it, as for any child process:
    none is left behind, and its CPU time (with that of the workers it forked and waited for) counts
    among this process's children's, where `make bench-screen` reads it. multiprocessing has no public
    call for this; `_stop` is the one its own tests use, and a later screen starts a new server."""
    from multiprocessing import forkserver

    stop = getattr(getattr(forkserver, "_forkserver", None), "_stop", None)
    if stop is not None:
        stop()


def _run_distributed(split: Any, assessed: Any, address: str | None, workers: int, show: bool,
                     seconds: dict[str, float], labels: list[Labels], forked: bool,
                     stopping: list[threading.Thread]) -> tuple[list, list, str]:
    try:
        return _on_cluster(split, assessed, address, workers, show, seconds, labels, forked)
    finally:
        if forked:  # the forkserver exits (a second or so) while the summary is written; joined after it
            stopping.append(threading.Thread(target=_stop_forkserver, name="stop forkserver"))
            stopping[-1].start()


def _on_cluster(split: Any, assessed: Any, address: str | None, workers: int, show: bool,
                seconds: dict[str, float], labels: list[Labels], forked: bool) -> tuple[list, list, str]:
    import dask
    from distributed import Client, LocalCluster, as_completed

    if address:
        client, cluster, where = Client(address), None, f"the Dask cluster at {address}"
    else:
        with dask.config.set({FORKSERVER: "forkserver"} if forked else {}):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   scheduler_kwargs=NO_DASHBOARD, silence_logs=logging.ERROR)
        client, where = Client(cluster), f"a local Dask cluster of {workers} processes"
    try:
        # every worker builds its engine now, in parallel, not inside the first task (done already when forked)
        labels.extend(client.run(warm).values())
        seconds["start"] = time.perf_counter() - seconds.pop("t0")
        results = []
        for bag, desc, unit in ((split, "reading", " file"), (assessed, "assessing", " bucket")):
            t = time.perf_counter()
            if bag is assessed:
                import_plotting_soon()
            futures = client.compute(bag.to_delayed())
            found: list = []
            with _bar(len(futures), show, desc, unit) as bar:
                for future in as_completed(futures):
                    found.extend(future.result())
                    bar.update(1)
            results.append(found)
            seconds[desc] = time.perf_counter() - t
        return results[1], results[0], where
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _run_multiprocessing(split: Any, assessed: Any, workers: int, show: bool,
                         seconds: dict[str, float]) -> tuple[list, list, str]:
    import dask
    from dask.diagnostics import ProgressBar

    bar = ProgressBar(out=sys.stderr) if show else None
    if bar:
        bar.register()
    seconds["start"] = time.perf_counter() - seconds.pop("t0")
    try:
        t = time.perf_counter()
        (problems,) = dask.compute(split, scheduler="processes", num_workers=workers)
        seconds["reading"], t = time.perf_counter() - t, time.perf_counter()
        (found,) = dask.compute(assessed, scheduler="processes", num_workers=workers)
        seconds["assessing"] = time.perf_counter() - t
    finally:
        if bar:
            bar.unregister()
    return list(found), list(problems), f"dask's multiprocessing scheduler, {workers} processes"


def screen(export_dir: str, out: str, as_of: date | None = None, scheduler: str | None = None,
           workers: int = 2, full: bool = False, show_progress: bool | None = None,
           use_distributed: bool | None = None) -> Result:
    """Screen every patient of the export; write OUT/table, OUT/summary.* (and OUT/plans.jsonl).
    `use_distributed`: None uses dask.distributed when it is installed, else the multiprocessing scheduler."""
    seconds = {"t0": time.perf_counter()}
    have_distributed = use_distributed
    if have_distributed is None:
        have_distributed = importlib.util.find_spec("distributed") is not None
    if scheduler and not have_distributed:
        raise RuntimeError("--scheduler needs dask.distributed (pip install distributed)")
    stopping: list[threading.Thread] = []  # the forkserver's exit, overlapped with the summary
    forked = bool(have_distributed and not scheduler) and _start_forkserver()
    try:
        return _screen(export_dir, out, as_of, scheduler, workers, full, show_progress, have_distributed,
                       forked, seconds, stopping)
    finally:
        if forked and not stopping:  # failed before the cluster ran
            _stop_forkserver()
        for thread in stopping:
            thread.join()


def _screen(export_dir: str, out: str, as_of: date | None, scheduler: str | None, workers: int, full: bool,
            show_progress: bool | None, have_distributed: bool, forked: bool, seconds: dict[str, float],
            stopping: list[threading.Thread]) -> Result:
    export = discover(export_dir, as_of)
    _prepare(out)
    split, assessed = passes(export, out, full)
    show = sys.stderr.isatty() if show_progress is None else show_progress
    labels: list[Labels] = []
    try:
        if have_distributed:
            found, problem_list, where = _run_distributed(split, assessed, scheduler, workers, show, seconds, labels,
                                                          forked, stopping)
        else:
            found, problem_list, where = _run_multiprocessing(split, assessed, workers, show, seconds)
    finally:  # the buckets hold patient records: never left behind, even after a failure
        fs, root = fsspec.core.url_to_fs(out)
        if fs.exists(f"{root}/{SCRATCH}"):
            fs.rm(f"{root}/{SCRATCH}", recursive=True)
    total = Tally()
    for part in found:
        total.add(part)
    listed = sorted([*export.problems, *(Problem(p[1], p[2], p[3]) for p in problem_list)],
                    key=lambda p: (p.file, p.line))
    if full:
        _join_plans(out)
    result = Result(export, total, listed, out, where, seconds, labels[0] if labels else None)
    t = time.perf_counter()
    write_summary(result)
    for thread in stopping:
        thread.join()
    seconds["summary"] = time.perf_counter() - t
    return result


def counts_line(result: Result) -> str:
    t = result.tally
    return (f"{t.patients:,} patients: {t.assessed_patients:,} assessed ({t.rows:,} rows), "
            f"{t.not_assessed_patients:,} not assessed, {t.deceased:,} deceased, {t.nothing_mapped:,} with no mapped "
            f"presentation; {len(result.problems)} lines or files not read")


def run_cli(export_dir: str, out: str, as_of: str | None, scheduler: str | None, workers: int, full: bool) -> int:
    """The command: screen, then print where the outputs are and the counts (stderr)."""
    day = date.fromisoformat(as_of) if as_of else None
    result = screen(export_dir, out, day, scheduler, workers, full)
    print(counts_line(result), file=sys.stderr)
    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in result.seconds.items()), file=sys.stderr)
    print(f"table: {out}/{TABLE}/ (Parquet)  summary: {out}/summary.html, {out}/summary.md"
          + (f"  plans: {out}/{PLANS}" if full else ""), file=sys.stderr)
    return 0
