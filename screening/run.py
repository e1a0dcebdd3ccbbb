"""`myotomy-cds screen EXPORT_DIR OUT`: the cohort screen on Dask.

Two passes of Dask tasks (dask.delayed). Pass 1, a task per export file: each line becomes a resource
record or a problem (screening/export.py), and the records, grouped into patient buckets (a crc32
of the patient id), are written to a scratch file under OUT/_scratch; the client learns where each
bucket's records are in which file. Pass 2, a task per bucket: its patients are
assessed (screening/patients.py) and the worker writes the bucket's rows as one Parquet file (and,
with --full, its plans as JSON Lines) under OUT. Buckets are sized from the export (about
BUCKET_BYTES each), so the memory of a task does not grow with the export: this is a shuffle
through storage, which a Dask bag's in-memory task shuffle is not. Results never travel back through
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

import atexit
import gc
import importlib.util
import json
import logging
import math
import pickle
import sys
import time
import uuid
import zlib
from dataclasses import dataclass
from datetime import date
from typing import Any, Callable

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from screening import forkserver
from screening.export import Export, ExportFile, Problem, discover, read_file
from screening.shutdown import Shutdown
from screening.tally import Tally
from screening.summary import Labels, import_plotting_soon, labels_of, write_summary

TABLE = "table"  # OUT/table/part-*.parquet: read it whole with pandas.read_parquet(OUT + "/table")
PLANS = "plans.jsonl"
SCRATCH = "_scratch"  # pass 1's files of patient buckets; removed at the end
BUCKET_BYTES = 2 * 1024 * 1024  # about 1,500 patients of a typical export: small tasks, flat worker memory
READ_BYTES = 4 * 1024 * 1024  # NDJSON read by one task of pass 1: a few files of 5,000 resources
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


def _sizes(files: tuple[ExportFile, ...]) -> list[int]:
    """Each file's size in bytes of NDJSON, gzip counted at about 8 times its size (0 if unknown)."""
    sizes = []
    for file in files:
        fs, path = fsspec.core.url_to_fs(file.path)
        try:
            size = fs.size(path) or 0
        except OSError:
            size = 0
        sizes.append(size * (8 if file.name.endswith(".gz") else 1))
    return sizes


def buckets_for(sizes: list[int]) -> int:
    """How many patient buckets: about BUCKET_BYTES of NDJSON each, and at least MIN_BUCKETS, so that
    workers stay busy on a small export and the memory of a task stays the same on a large one."""
    return max(MIN_BUCKETS, math.ceil(sum(sizes) / BUCKET_BYTES))


def groups_for(files: tuple[ExportFile, ...], sizes: list[int]) -> list[tuple[ExportFile, ...]]:
    """Pass 1's tasks: runs of files of about READ_BYTES of NDJSON each (less on a small export, so that
    there are at least MIN_BUCKETS tasks), in the export's order. A file is read in about 12 ms, and a task
    cost about 2 ms of the client's CPU and 4 ms of the worker's besides: at 100,000 patients 89 one-file
    tasks became 27, and pass 1 on one worker took 1.3 s instead of 1.5."""
    target = min(READ_BYTES, sum(sizes) / MIN_BUCKETS)
    groups: list[tuple[ExportFile, ...]] = []
    current: list[ExportFile] = []
    held = 0
    for file, size in zip(files, sizes):
        if current and held + size > target:
            groups.append(tuple(current))
            current, held = [], 0
        current.append(file)
        held += size
    if current:
        groups.append(tuple(current))
    return groups


def bucket_of(pid: str, buckets: int) -> int:
    """The same on every machine and every run (not Python's salted hash)."""
    return zlib.crc32(pid.encode("utf-8")) % buckets


Chunk = tuple[str, int, int]  # (scratch file, offset, length): one pickled list of a bucket's records


def split_file(file: ExportFile, buckets: int, scratch: str) -> tuple[list[tuple], dict[int, list[Chunk]]]:
    """Pass 1, for each file of a task: its resource records, grouped by the bucket of their patient, into one
    scratch file (a pickled list per bucket, written every FLUSH_RECORDS records so memory does not grow
    with the file); returns the file's problems and where each bucket's records are in the scratch file.

    One scratch file per export file, not one per export file and bucket: creating a file cost about 0.25 ms
    of CPU here, and 89 files times 45 buckets at 100,000 patients was 40 % of pass 1 (BENCHMARKS.md)."""
    from screening.patients import text_read

    problems: list[tuple] = []
    chunks: dict[int, list[Chunk]] = {}
    pending: dict[int, list[tuple]] = {}
    held = 0
    path = f"{scratch}/{file.name}.pkl"
    keep_text = file.rtype in text_read()
    with fsspec.open(path, "wb") as handle:

        def flush() -> None:
            nonlocal held
            for bucket, records in pending.items():
                data = pickle.dumps(records, protocol=pickle.HIGHEST_PROTOCOL)
                chunks.setdefault(bucket, []).append((path, handle.tell(), len(data)))
                handle.write(data)
            pending.clear()
            held = 0

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
    return problems, chunks


def split_files(files: tuple[ExportFile, ...], buckets: int, scratch: str) -> tuple[list[tuple], dict[int, list[Chunk]]]:
    """Pass 1, one task per run of files (groups_for): split_file on each, their answers joined."""
    problems: list[tuple] = []
    chunks: dict[int, list[Chunk]] = {}
    for file in files:
        found, where = split_file(file, buckets, scratch)
        problems.extend(found)
        for bucket, items in where.items():
            chunks.setdefault(bucket, []).extend(items)
    return problems, chunks


def _bucket_records(chunks: list[Chunk]) -> dict[str, list[tuple]]:
    """The bucket's records by patient, read from the scratch files of pass 1 (one open per file)."""
    groups: dict[str, list[tuple]] = {}
    by_path: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        by_path.setdefault(chunk[0], []).append(chunk)
    for path, found in sorted(by_path.items()):
        with fsspec.open(path, "rb") as handle:
            for _, offset, length in found:
                handle.seek(offset)
                for record in pickle.loads(handle.read(length)):
                    groups.setdefault(record[1], []).append(record)
    return groups


class Chunks:
    """A bucket's chunks as its task's argument, one value dask takes as it is. Given the list itself, dask walked
    it chunk by chunk looking for collections inside (dask.delayed.unpack_collections) and hashed it for the task's
    key: at 100,000 patients (45 buckets of 89 chunks) 37 ms of the client's CPU between the passes, while
    the workers wait; with this and a key named by the screen and the bucket, 1.3 ms."""

    __slots__ = ("items",)

    def __init__(self, items: list[Chunk]) -> None:
        self.items = items


def assess_bucket(bucket: int, chunks: Chunks, today: date, out: str, full: bool,
                  shared: str | None = None) -> Tally:
    """Pass 2, one task per bucket: assess its patients, write its table part (and plans), return its counts.
    Named by bucket, so a task run twice (a worker lost) overwrites its own files. `shared`: the folder
    where the workers share what they assessed (screening/patients.py _Exchange); None: nothing shared."""
    from rules.batch import plan_json
    from screening.patients import assess_patient, publish_outcomes, share_outcomes

    share_outcomes(shared)
    tally = Tally()
    rows: list[dict[str, Any]] = []
    plans: list[bytes] = []
    for pid, records in sorted(_bucket_records(chunks.items).items()):
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
    if shared is not None:
        publish_outcomes(f"{bucket:05d}")
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


@dataclass
class Passes:
    """The two passes as Dask tasks: pass 1 (a task per run of files: their problems and where their records went), then
    pass 2 (a task per bucket: counts), made from pass 1's answer, as it reads what pass 1 wrote. Plain
    delayed calls, not bags: a bag made two tasks of each (its sequence, then the call), twice the
    scheduler's round trips for nothing."""

    export: Export
    out: str
    full: bool
    buckets: int
    groups: list[tuple[ExportFile, ...]]

    def spread_over(self, workers: int) -> None:
        """Round the buckets up to a multiple of the workers, so that none is left alone with the last one:
        45 buckets of about 0.3 s on 2 workers left one idle for up to a bucket at the end of pass 2 (0.16
        and 0.27 s, measured with dask's task stream at 100,000 patients); 46 end together."""
        self.buckets = math.ceil(self.buckets / max(1, workers)) * max(1, workers)

    def reading(self) -> list[Any]:
        from dask import delayed

        task = delayed(split_files, pure=True)
        return [task(files, self.buckets, f"{self.out}/{SCRATCH}") for files in self.groups]

    def assessing(self, read: list[tuple[list, dict[int, list[Chunk]]]],
                  workers: int) -> tuple[list[Any], list[tuple]]:
        """Pass 2's tasks from pass 1's answers, and pass 1's problems. With several worker processes, they
        share what they assess (not with --full, whose outcomes hold whole plans)."""
        from dask import delayed

        problems: list[tuple] = []
        chunks: dict[int, list[Chunk]] = {bucket: [] for bucket in range(self.buckets)}
        for found, where in read:
            problems.extend(found)
            for bucket, items in where.items():
                chunks[bucket].extend(items)
        task = delayed(assess_bucket, pure=True)
        run = uuid.uuid4().hex
        shared = f"{self.out}/{SCRATCH}/outcomes-{run}" if workers > 1 and not self.full else None
        return [task(bucket, Chunks(where), self.export.today, self.out, self.full, shared,
                     dask_key_name=f"assess_bucket-{run}-{bucket}")
                for bucket, where in chunks.items()], problems


def passes(export: Export, out: str, full: bool) -> Passes:
    sizes = _sizes(export.files)
    return Passes(export, out, full, buckets_for(sizes), groups_for(export.files, sizes))


def _bar(total: int, show: bool, desc: str, unit: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, disable=not show)


GC_GEN0 = 100_000  # allocations between young collections (Python's default 700)


def warm() -> Labels:
    """Build this process's knowledge base, engine and terminology (cached per process), import what a
    task needs; return the knowledge base's labels for the summary, so the client need not load it."""
    import pyarrow.parquet  # noqa: F401

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
    young collections are made rarer too: every 100,000 allocations, not 10,000 (half the buckets of 100,000
    patients in one process: collector 0.21 -> 0.10 s, pass 2 CPU 4.54 -> 4.35 s, the same peak memory)."""
    gc.freeze()
    gc.set_threshold(GC_GEN0, *gc.get_threshold()[1:])


FORKSERVER = "distributed.worker.multiprocessing-method"
# A local worker's own threads take the GIL from its task: the profiler samples the task's stack every 10 ms,
# the event loop ticks every 20 ms, the system monitor runs twice a second. Nothing of the screen reads them
# (no dashboard); off or slower, the 2 workers of a 100,000-patient screen spent 0.3-0.6 CPU s less of about
# 12.5 (3 runs each, alternating; BENCHMARKS.md). The memory monitor, in each worker and in its nanny (this
# process), checks every second, not every 100 ms: a task's memory is bounded by its bucket (BUCKET_BYTES); idle,
# 2 workers and their nannies spent 0.013 CPU s a second instead of 0.028 (5 s, 2 runs each).
# A cluster given with --scheduler keeps its own settings.
QUIET_WORKERS = {"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "1s",
                 "distributed.admin.system-monitor.interval": "2s",
                 "distributed.worker.memory.monitor-interval": "1s"}


def _results(client: Any, tasks: list[Any], show: bool, desc: str, unit: str) -> list:
    """The tasks' results in their order, whatever order they finish in (the summary lists the first
    not-assessed patients: the same ones on every run). The bar follows the tasks as they finish; their
    results, a few KB each, are fetched in one gather at the end, not one request per task: at 100,000
    patients on 2 workers the client's CPU in the two passes went from about 0.34 to 0.27 s (3 runs
    each, alternating; BENCHMARKS.md)."""
    from distributed import as_completed

    futures = client.compute(tasks)
    with _bar(len(futures), show, desc, unit) as bar:
        for future in as_completed(futures):
            if future.status == "error":
                future.result()  # a failed task's error now, not after the other tasks have run
            bar.update(1)
    return client.gather(futures)


def _processes(n: int) -> str:
    return f"{n} process" if n == 1 else f"{n} processes"


def _run_distributed(work: Passes, address: str | None, workers: int, show: bool,
                     seconds: dict[str, float], labels: list[Labels], forked: bool,
                     stopping: list[Shutdown]) -> tuple[list, list, str]:
    later: list[Callable[[], object]] = []  # the cluster's close, once every task has answered
    try:
        return _on_cluster(work, address, workers, show, seconds, labels, forked, later)
    finally:
        if forked:  # the forkserver exits after the cluster closes, while the summary is written; joined after it
            later.append(forkserver.stop)
        if later:
            stopping.append(Shutdown(later))
            stopping[-1].start()


def _on_cluster(work: Passes, address: str | None, workers: int, show: bool, seconds: dict[str, float],
                labels: list[Labels], forked: bool, later: list[Callable[[], object]]) -> tuple[list, list, str]:
    """Both passes on the cluster. Once every task has answered, the client and cluster are closed in
    `later` (screening/shutdown.py, while the summary is written); after a failure they are closed here,
    before the scratch files are removed, so that no worker still writes them."""
    import dask
    from distributed import Client, LocalCluster

    import_plotting_soon()  # while this process waits for the workers, not while they work (after its own imports)
    if address:
        client, cluster, where = Client(address), None, f"the Dask cluster at {address}"
    else:
        if forked:
            forkserver.keep_our_preload()
        with dask.config.set({**QUIET_WORKERS, **({FORKSERVER: "forkserver"} if forked else {})}):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   scheduler_kwargs=NO_DASHBOARD, silence_logs=logging.ERROR)
        client, where = Client(cluster), f"a local Dask cluster of {_processes(workers)}"
    answered = False
    try:
        # every worker builds its engine now, in parallel, not inside the first task (done already when forked)
        labels.extend(client.run(warm).values())
        work.spread_over(len(labels))
        seconds["start"] = time.perf_counter() - seconds.pop("t0")
        t = time.perf_counter()
        read = _results(client, work.reading(), show, "reading", " task")
        seconds["reading"], t = time.perf_counter() - t, time.perf_counter()
        assessed, problems = work.assessing(read, len(client.scheduler_info()["workers"]))
        tallies = _results(client, assessed, show, "assessing", " bucket")
        seconds["assessing"] = time.perf_counter() - t
        answered = True
        return tallies, problems, where
    finally:
        closing = [client.close, *([cluster.close] if cluster is not None else [])]
        if answered:
            later.extend(closing)
        else:
            for close in closing:
                close()


def _run_multiprocessing(work: Passes, workers: int, show: bool,
                         seconds: dict[str, float]) -> tuple[list, list, str]:
    import dask
    from dask.diagnostics import ProgressBar

    bar = ProgressBar(out=sys.stderr) if show else None
    if bar:
        bar.register()
    seconds["start"] = time.perf_counter() - seconds.pop("t0")
    work.spread_over(workers)
    try:
        t = time.perf_counter()
        read = dask.compute(*work.reading(), scheduler="processes", num_workers=workers)
        seconds["reading"], t = time.perf_counter() - t, time.perf_counter()
        assessed, problems = work.assessing(read, workers)
        found = dask.compute(*assessed, scheduler="processes", num_workers=workers)
        seconds["assessing"] = time.perf_counter() - t
    finally:
        if bar:
            bar.unregister()
    return list(found), list(problems), f"dask's multiprocessing scheduler, {_processes(workers)}"


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
    stopping: list[Shutdown] = []  # the cluster's close and the forkserver's exit, overlapped with the summary
    forked = bool(have_distributed and not scheduler) and forkserver.start()
    try:
        return _screen(export_dir, out, as_of, scheduler, workers, full, show_progress, have_distributed,
                       forked, seconds, stopping)
    finally:
        if forked and not stopping:  # failed before the cluster ran
            forkserver.stop()
        for thread in stopping:
            thread.join()


def _screen(export_dir: str, out: str, as_of: date | None, scheduler: str | None, workers: int, full: bool,
            show_progress: bool | None, have_distributed: bool, forked: bool, seconds: dict[str, float],
            stopping: list[Shutdown]) -> Result:
    export = discover(export_dir, as_of)
    _prepare(out)
    work = passes(export, out, full)
    show = sys.stderr.isatty() if show_progress is None else show_progress
    labels: list[Labels] = []
    try:
        if have_distributed:
            found, problem_list, where = _run_distributed(work, scheduler, workers, show, seconds, labels,
                                                          forked, stopping)
        else:
            found, problem_list, where = _run_multiprocessing(work, workers, show, seconds)
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
    _quick_exit()
    return 0


def _quick_exit() -> None:
    """Freeze the collector when the command's process exits (atexit runs this first, as registered last):
    the interpreter's last collections walk every object of the imports (dask, pyarrow, pandas, matplotlib,
    the models), about 0.15 s after the screen is done, which the user waits for; frozen objects are left to
    the operating system. Nothing is lost: every file the screen wrote is closed, its processes have exited."""
    atexit.unregister(gc.freeze)  # once, however many screens this process ran
    atexit.register(gc.freeze)
