"""`myotomy-cds screen`: a generated export screened on a local 2-process Dask cluster, checked
patient by patient against `assess()` called directly; bad lines counted; split and gzipped files."""

from __future__ import annotations

import gzip
import json
import logging
import pickle
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.bulk_export import generate
from models.knowledge import TOP_RANK
from rules import InputError, assess
from rules.cli import main
from screening.export import ExportError, discover
from screening.run import NO_DASHBOARD, screen
from service.fhir_input import age_from_birth_date

PATIENTS = 300
ROOT = Path(__file__).resolve().parent.parent


def screen_in_subprocess(tmp: Path, *args: object, **kwargs: object):
    """`screen()` in a fresh Python, as the command runs it. A worker process is started by spawn,
    which re-runs the parent's main module: in the test process that may be a script another test
    ran (the Streamlit app), not pytest."""
    result_file = tmp / "result.pickle"
    code = (
        "import pickle, sys; from screening.run import screen; "
        f"result = screen(*{args!r}, **{kwargs!r}); "
        f"pickle.dump(result, open({str(result_file)!r}, 'wb')); "
        f"open({str(tmp / 'pandas_imported')!r}, 'w').write(str('pandas' in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with result_file.open("rb") as handle:
        return pickle.load(handle)


@pytest.fixture(scope="module")
def screened(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("screen")
    export = generate(folder / "export", PATIENTS, seed=7, per_file=150)
    out = folder / "out"
    result = screen_in_subprocess(folder, str(export.folder), str(out), workers=2, full=True, show_progress=False)
    table = pd.read_parquet(out / "table")
    return export, result, table, out


@pytest.fixture(scope="module")
def in_process_cluster():
    """For the small extra cases: a cluster in this process (fast to start), one worker thread."""
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, scheduler_kwargs=NO_DASHBOARD,
                           silence_logs=logging.ERROR)
    yield cluster.scheduler_address
    cluster.close()


def _expected_rows(expected, today: date) -> tuple[dict[str, dict], set[str]]:
    """What assess() says directly: per presentation its fields; and the presentations it refuses."""
    age, _ = age_from_birth_date(date.fromisoformat(expected.birth_date), today)  # FHIR reads a full date as a date
    base = {"age": age} if age else {}
    accepted, refused = [], set()
    for pid in expected.presentations:
        try:
            assess({**base, "conditions": [{"presentation": pid}]})
            accepted.append(pid)
        except InputError:
            refused.add(pid)
    rows = {}
    if accepted:
        plan = assess({**base, "conditions": [{"presentation": p} for p in accepted]})
        for pid in accepted:
            flags = [f for f in plan.flags if f.presentation == pid and f.status == "standing"]
            top = [o for o in plan.options if o.presentation == pid and o.strength in TOP_RANK]
            top = [o for o in top if o.step == "treatment"] or top
            rows[pid] = {
                "stopped": any(f.severity == "stop" for f in flags),
                "standing_flags": [f.id for f in flags],
                "top_options": [o.name for o in top],
                "needs": [n.label for n in plan.needs if n.presentation == pid],
                "knowledge_hash": plan.knowledge_base.content_hash,
            }
    return rows, refused


def test_table_matches_assess_patient_by_patient(screened) -> None:
    export, result, table, _ = screened
    today = result.export.today
    assert today == date.fromisoformat(export.transaction_time[:10])
    by_patient = {pid: rows for pid, rows in table.groupby("patient_id")}
    checked = 0
    for pid, expected in export.patients.items():
        rows = by_patient.get(pid)
        if expected.no_patient:
            assert rows is not None and list(rows.status) == ["not_assessed"], pid
            assert "no Patient resource" in rows.reason.iloc[0]
            continue
        if expected.unreadable:
            assert list(rows.status) == ["not_assessed"] and "birthDate" in rows.reason.iloc[0], pid
            continue
        if expected.deceased or not expected.presentations:
            assert rows is None, pid
            continue
        want, refused = _expected_rows(expected, today)
        got = {r.presentation: r for r in rows.itertuples()}
        assert set(got) == set(want) | refused, pid
        for presentation in refused:
            assert got[presentation].status == "not_assessed" and got[presentation].reason
        for presentation, fields in want.items():
            row = got[presentation]
            assert row.status == "assessed"
            for name, value in fields.items():
                found = getattr(row, name)
                assert (list(found) if name in ("standing_flags", "top_options", "needs") else found) == value, (pid, name)
            assert row.summary
            checked += 1
    assert checked > PATIENTS / 3  # most patients were compared, not skipped
    assert result.tally.patients == len(export.patients)


def test_bad_lines_counted_with_file_line_and_reason(screened) -> None:
    export, result, _, out = screened
    assert export.bad_lines > 0
    assert len(result.problems) == export.bad_lines
    for problem in result.problems:
        assert problem.line > 0 and problem.reason and problem.file.endswith((".ndjson", ".ndjson.gz"))
    summary = (out / "summary.md").read_text()
    first = result.problems[0]
    assert f"| {first.file} | {first.line} | {first.reason} |" in summary
    assert (out / "summary.html").read_text().count("<table>") >= 5
    assert (out / "flags_by_presentation.png").stat().st_size > 1000


def test_split_and_gzipped_files_all_read(screened) -> None:
    export, result, table, out = screened
    assert sum(f.name.endswith(".gz") for f in export.files) >= 2
    assert sum(f.name.startswith("Condition.") for f in export.files) >= 2
    written = 0
    for path in export.files:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt") as handle:
            written += sum(1 for line in handle if line.strip())
    assert sum(result.tally.resources.values()) + len(result.problems) == written
    plans = (out / "plans.jsonl").read_text().splitlines()
    assert len(plans) == result.tally.assessed_patients
    assert {"patient_id", "plan"} <= set(json.loads(plans[0]))
    assert table.knowledge_version.nunique() == 1


def test_no_manifest_needs_as_of(tmp_path: Path, in_process_cluster: str) -> None:
    export = generate(tmp_path / "export", 20, seed=3, per_file=50, manifest=False)
    with pytest.raises(ExportError, match="--as-of"):
        discover(str(export.folder))
    result = screen(str(export.folder), str(tmp_path / "out"), as_of=date(2026, 1, 2), scheduler=in_process_cluster,
                    show_progress=False)
    assert result.export.today == date(2026, 1, 2) and result.export.today_from == "--as-of"
    assert result.tally.patients == len(export.patients)


def test_a_file_listed_twice_is_read_once_and_reported(tmp_path: Path, in_process_cluster: str) -> None:
    export = generate(tmp_path / "export", 20, seed=3, per_file=50)
    manifest = json.loads((export.folder / "manifest.json").read_text())
    manifest["output"].append(manifest["output"][0])
    (export.folder / "manifest.json").write_text(json.dumps(manifest))
    result = screen(str(export.folder), str(tmp_path / "out"), scheduler=in_process_cluster, show_progress=False)
    twice = manifest["output"][0]["url"].rsplit("/", 1)[1]
    assert [p.reason for p in result.problems if p.file == twice] == ["listed twice in manifest.json: read once"]
    assert result.tally.patients == len(export.patients)
    assert result.tally.not_assessed_reasons["several Patient resources"] == 0


def test_truncated_gzip_is_a_problem_not_a_failure(tmp_path: Path, in_process_cluster: str) -> None:
    export = generate(tmp_path / "export", 30, seed=5, per_file=10)
    broken = next(p for p in export.files if p.name.startswith("Observation.") and p.name.endswith(".gz"))
    broken.write_bytes(broken.read_bytes()[:-20])
    result = screen(str(export.folder), str(tmp_path / "out"), scheduler=in_process_cluster, show_progress=False)
    assert any(p.file == broken.name and "cannot be read" in p.reason for p in result.problems)
    assert result.tally.patients > 0


def test_cli_errors_are_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["screen", str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    assert "not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["screen", str(tmp_path / "empty"), str(tmp_path / "out"), "--as-of", "2026-01-01"]) == 2
    assert "no Patient file" in capsys.readouterr().err


def test_multiprocessing_scheduler_without_distributed(tmp_path: Path) -> None:
    """Where dask.distributed is not installed, the same screen runs on dask's multiprocessing scheduler."""
    export = generate(tmp_path / "export", 40, seed=11, per_file=30)
    result = screen_in_subprocess(tmp_path, str(export.folder), str(tmp_path / "out"), workers=2, show_progress=False,
                                  use_distributed=False)
    assert "multiprocessing" in result.scheduler
    assert result.tally.patients == len(export.patients)
    assert len(result.problems) == export.bad_lines
    assert not (tmp_path / "out" / "_scratch").exists()


def test_a_local_cluster_starts_quietly_when_another_holds_the_dashboard_port() -> None:
    """Another Dask cluster on the machine (8787 taken) must not make the screen warn."""
    import socket
    import warnings

    from distributed import LocalCluster

    with socket.socket() as held:
        try:
            held.bind(("127.0.0.1", 8787))
            held.listen()
        except OSError:
            pass  # already taken by someone else: the case under test all the same
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, scheduler_kwargs=NO_DASHBOARD,
                                   silence_logs=logging.ERROR)
            cluster.close()


def test_the_command_starts_the_forkserver_first_only_for_a_local_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """`myotomy-cds screen` starts the local workers' forkserver before importing the rest; with
    --scheduler the workers are someone else's, and none is started."""
    from screening import forkserver

    started: list[bool] = []
    monkeypatch.setattr(forkserver, "start", lambda: started.append(True) or True)
    forkserver.start_early("tcp://scheduler:8786")
    assert not started
    forkserver.start_early(None)
    assert started == [True]


def test_the_command_freezes_the_collector_at_exit_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command's process skips the interpreter's last walks over every imported object: gc.freeze runs
    at exit, registered once however many screens the process runs."""
    import atexit
    import gc

    import screening.run as run

    registered: list[object] = []
    monkeypatch.setattr(atexit, "register", registered.append)
    monkeypatch.setattr(atexit, "unregister", lambda f: registered.remove(f) if f in registered else None)
    run._quick_exit()
    run._quick_exit()
    assert registered == [gc.freeze]


def test_pass_one_reads_runs_of_files_in_order_and_small_exports_file_by_file() -> None:
    from screening.export import ExportFile
    from screening.run import MIN_BUCKETS, READ_BYTES, groups_for

    files = tuple(ExportFile("Condition", f"/x/Condition.{i:03d}.ndjson", f"Condition.{i:03d}.ndjson") for i in range(100))
    large = groups_for(files, [READ_BYTES // 3] * 100)  # READ_BYTES a task: 3 files each, the last alone
    assert [f for group in large for f in group] == list(files)
    assert [len(group) for group in large] == [3] * 33 + [1]
    small = groups_for(files[:10], [1000] * 10)  # fewer files than MIN_BUCKETS: each its own task
    assert len(small) == 10 and MIN_BUCKETS > 10


def test_buckets_are_a_multiple_of_the_workers_so_none_waits_alone_for_the_last() -> None:
    from screening.run import Passes

    work = Passes(export=None, out="/x", full=False, buckets=45, groups=[])
    work.spread_over(1)
    assert work.buckets == 45
    work.spread_over(2)
    assert work.buckets == 46
    work.spread_over(4)
    assert work.buckets == 48
    work.spread_over(0)  # a cluster that reports no worker yet: left as it is
    assert work.buckets == 48


def test_the_listed_not_assessed_patients_do_not_depend_on_the_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The summary lists the first not-assessed patients by id: the same whatever the number of buckets
    (a multiple of the workers) and the order the buckets are added in."""
    import screening.tally as tally_module
    from screening.tally import Tally

    monkeypatch.setattr(tally_module, "MAX_LISTED", 3)
    rows = [(f"p{i:02d}", "", "why") for i in range(20)]

    def total(buckets: int) -> list:
        parts = [Tally(not_assessed=[r for r in rows if int(r[0][1:]) % buckets == b]) for b in range(buckets)]
        whole = Tally()
        for part in reversed(parts):
            whole.add(part)
        return whole.not_assessed

    assert total(1) == total(4) == total(7) == rows[:3]


def test_the_screen_does_not_depend_on_how_files_are_grouped(tmp_path: Path, in_process_cluster: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Pass 1 reads runs of files per task (fewer tasks for the scheduler): the table, counts and problems
    are the same with one file per task and with every file in one task."""
    import screening.run as run

    export = generate(tmp_path / "export", 60, seed=9, per_file=20)
    plain = next(p for p in export.files if p.name.startswith("Condition.") and not p.name.endswith(".gz"))
    plain.write_text(plain.read_text() + "{not json\n")
    found = []
    for name, grouping in (("each", lambda files, sizes: [(f,) for f in files]), ("all", lambda files, sizes: [files])):
        monkeypatch.setattr(run, "groups_for", grouping)
        result = screen(str(export.folder), str(tmp_path / name), scheduler=in_process_cluster, show_progress=False)
        table = pd.read_parquet(tmp_path / name / "table").sort_values(["patient_id", "presentation"], ignore_index=True)
        found.append((table, result.tally, result.problems))
    (table_each, tally_each, problems_each), (table_all, tally_all, problems_all) = found
    pd.testing.assert_frame_equal(table_each, table_all)
    assert tally_each == tally_all and problems_each == problems_all and problems_each


def test_matplotlib_is_imported_while_the_cluster_starts_not_while_workers_assess(
        tmp_path: Path, in_process_cluster: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import screening.run as run

    order: list[str] = []
    reading = run.Passes.reading
    monkeypatch.setattr(run, "import_plotting_soon", lambda: order.append("import matplotlib"))
    monkeypatch.setattr(run.Passes, "reading", lambda self: order.append("pass 1") or reading(self))
    export = generate(tmp_path / "export", 10, seed=2, per_file=50)
    screen(str(export.folder), str(tmp_path / "out"), scheduler=in_process_cluster, show_progress=False)
    assert order == ["import matplotlib", "pass 1"]


def test_a_worker_freezes_what_it_loaded_and_collects_young_garbage_rarely() -> None:
    code = ("import gc; from screening.run import GC_GEN0, warm; warm(); "
            "print(gc.get_threshold()[0] == GC_GEN0 == 100_000, gc.get_freeze_count() > 50_000 > len(gc.get_objects()) * 100)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["True", "True"], done.stderr[-2000:]


def test_a_local_worker_does_not_import_pandas_and_a_table_still_converts_to_pandas() -> None:
    """pyarrow imports pandas on its first array unless it finds none then (0.4 s of the forkserver's preload);
    only the forkserver, whose workers run nothing else, tells it so: warm() alone (a --scheduler cluster) does not."""
    code = ("import sys, pyarrow as pa; import screening.preload; from screening.run import SCHEMA; "
            "before = 'pandas' in sys.modules; frame = pa.Table.from_pylist([{'patient_id': 'p'}], schema=SCHEMA).to_pandas(); "
            "print(before, 'pandas' in sys.modules, frame.shape)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False", "True", "(1,", "16)"], done.stderr[-2000:]
    code = "import sys; from screening.run import warm; warm(); print('pandas' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["True"], done.stderr[-2000:]


def test_the_screen_imports_no_pandas_in_the_client(screened) -> None:
    """dask.distributed imports numpy, pandas and lz4 to list the forkserver's preload unless told it is set
    (screening/forkserver.py keep_our_preload): 0.25 s on the cluster's event loop, on the start's critical path."""
    _, _, _, out = screened
    assert (out.parent / "pandas_imported").read_text() == "False"


def test_the_memo_keeps_one_object_per_outcome_not_per_input() -> None:
    """8,000 inputs of a 100,000-patient screen have about 1,150 outcomes: equal outcomes are one object,
    so a worker's memory does not grow with its inputs; an outcome with its plan (--full) stays its own."""
    from screening.patients import Assessed, Part, _one_of_each

    def outcome(plan: object = None) -> Assessed:
        part = Part(False, "summary", ("Option",), "preferred", (), None, ("Subtype",), (), (("p", "Option", "preferred"),),
                    (("p", "Subtype"),))
        return Assessed(True, plan, [], {"p": part})

    first, second = outcome(), outcome()
    assert first is not second and _one_of_each(first) is _one_of_each(second) is first
    with_plan = outcome(plan=object())
    assert _one_of_each(with_plan) is with_plan


def test_workers_share_what_they_assessed_through_the_scratch_folder(tmp_path: Path) -> None:
    """What one worker assessed in a bucket, another takes before its next bucket instead of assessing
    it again; a file still being written is read the next time; with --full nothing is shared."""
    from screening.patients import Assessed, _Exchange

    folder = str(tmp_path / "outcomes")
    one, other = _Exchange(), _Exchange()
    outcome = Assessed(True, None, [], {})
    one.adopt(folder)
    one.keep(b"input", outcome)
    one.keep(b"with a plan", Assessed(True, object(), [], {}))  # --full: never shared
    (tmp_path / "outcomes").mkdir()
    (tmp_path / "outcomes" / "00002.pkl").write_bytes(pickle.dumps({b"later": pickle.dumps(outcome)})[:-3])
    one.publish("00001")
    other.adopt(folder)
    assert other.take(b"input") == outcome and other.take(b"input") is None and other.take(b"with a plan") is None
    assert other.take(b"later") is None
    (tmp_path / "outcomes" / "00002.pkl").write_bytes(pickle.dumps({b"later": pickle.dumps(outcome)}))
    other.adopt(folder)
    assert other.take(b"later") == outcome



def test_pass_two_tasks_take_their_chunks_as_one_value_under_keys_of_their_own(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Dask does not walk a bucket's chunks looking for collections (it did chunk by chunk, the client's CPU
    between the passes); each task gets its bucket's chunks in pass 1's order, under a key of its screen."""
    import importlib

    from screening.export import Export
    from screening.run import Passes

    delayed_module = importlib.import_module("dask.delayed")  # `dask.delayed` is also the function's name
    walked = []
    unpack = delayed_module.unpack_collections
    monkeypatch.setattr(delayed_module, "unpack_collections",
                        lambda expr, *a, **k: walked.append(expr) or unpack(expr, *a, **k))
    chunks = {b: [(f"f{i}.pkl", 10 * i + b, 5) for i in range(50)] for b in range(3)}
    read = [([("p", "f0", 1, "bad")], {b: found[:25] for b, found in chunks.items()}),
            ([], {b: found[25:] for b, found in chunks.items()})]
    work = Passes(Export((), date(2026, 1, 1), "--as-of", (), ()), "out", False, 3, [])
    tasks, problems = work.assessing(read, 2)
    again, _ = work.assessing(read, 2)
    assert problems == [("p", "f0", 1, "bad")]
    every_chunk = {chunk for found in chunks.values() for chunk in found}
    assert walked and not [e for e in walked if isinstance(e, tuple) and e in every_chunk]  # the arguments only
    assert [t.dask.to_dict()[t.key].args[1].items for t in tasks] == [chunks[b] for b in range(3)]
    assert len({t.key for t in tasks + again}) == 6

def _closes_of_running_clients(monkeypatch: pytest.MonkeyPatch, scratch: Path) -> list[tuple[bool, bool]]:
    """Each close of a running Client, as (in the main thread, the screen's scratch folder still there)."""
    import threading

    import distributed

    closes: list[tuple[bool, bool]] = []
    close = distributed.Client.close

    def recorded(self, *args, **kwargs):
        if self.status not in ("closing", "closed"):
            closes.append((threading.current_thread() is threading.main_thread(), scratch.exists()))
        return close(self, *args, **kwargs)

    monkeypatch.setattr(distributed.Client, "close", recorded)
    return closes


def test_the_cluster_closes_while_the_summary_is_written_and_before_the_screen_returns(
        tmp_path: Path, in_process_cluster: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once every task has answered, the client closes in a thread of its own (screening/shutdown.py), not in
    the main thread before the summary; screen() has joined that thread when it returns, outputs written."""
    import threading

    from screening.run import SCRATCH

    closes = _closes_of_running_clients(monkeypatch, tmp_path / "out" / SCRATCH)
    export = generate(tmp_path / "export", 20, seed=3, per_file=50)
    result = screen(str(export.folder), str(tmp_path / "out"), scheduler=in_process_cluster, show_progress=False)
    assert [in_main for in_main, _ in closes] == [False]
    assert not [thread for thread in threading.enumerate() if thread.name == "shut down the cluster"]
    assert (tmp_path / "out" / "summary.md").exists() and result.tally.patients == len(export.patients)


def test_after_a_failure_the_cluster_closes_before_the_scratch_files_are_removed(
        tmp_path: Path, in_process_cluster: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed screen closes its client at once, in the main thread, while the scratch files of pass 1
    are still there (no worker is left writing them), and then removes them."""
    import screening.run as run

    def failing(self, read, workers):
        raise RuntimeError("pass 2")

    scratch = tmp_path / "out" / run.SCRATCH
    closes = _closes_of_running_clients(monkeypatch, scratch)
    monkeypatch.setattr(run.Passes, "assessing", failing)
    export = generate(tmp_path / "export", 20, seed=3, per_file=50)
    with pytest.raises(RuntimeError, match="pass 2"):
        screen(str(export.folder), str(tmp_path / "out"), scheduler=in_process_cluster, show_progress=False)
    assert closes == [(True, True)]
    assert not scratch.exists()

def test_a_shutdown_runs_every_step_and_its_join_raises_the_first_failure_once() -> None:
    from screening.shutdown import Shutdown

    ran: list[str] = []

    def failing() -> None:
        ran.append("close")
        raise OSError("the cluster did not close")

    shutdown = Shutdown([failing, lambda: ran.append("stop forkserver")])
    shutdown.start()
    with pytest.raises(OSError, match="did not close"):
        shutdown.join()
    shutdown.join()  # raised once: a second join (screen()'s own) does not raise it again
    assert ran == ["close", "stop forkserver"]


def test_plot_margins_hold_the_widest_label_and_nothing_is_cut() -> None:
    """The plots' margins (screening/summary.py _fit, instead of tight_layout): every text of the figure is
    inside it once drawn, and the widest bar label ends close to its tick."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from screening.summary import _fit, _height, _wrap

    labels = [_wrap("Contractures in arthrogryposis multiplex congenita: First-line non-surgical care"), "Zenker"]
    fig = Figure(figsize=(8, _height(labels)))
    ax = fig.subplots()
    ax.barh(labels, [3, 12_000_000])
    ax.set_xlabel("rows where the detail would change the answer")
    fig.suptitle("Details missing that would change the answer")
    _fit(fig, ax)
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    box = fig.bbox
    low, high = ax.get_xlim()  # tick labels beyond the axis are made but not drawn
    shown = [text for text in ax.get_xticklabels() if low <= text.get_position()[0] <= high]
    texts = [*ax.get_yticklabels(), *shown, ax.xaxis.label, ax.xaxis.get_offset_text(), fig._suptitle]
    for text in texts:
        if text.get_text():
            extent = text.get_window_extent(renderer)
            assert box.x0 <= extent.x0 and extent.x1 <= box.x1 and box.y0 <= extent.y0 and extent.y1 <= box.y1, text
    widest = min(text.get_window_extent(renderer).x0 for text in ax.get_yticklabels())
    assert widest < 0.25 * fig.dpi  # no more margin than the pad: the width was measured, not guessed


_SECOND_DONE = threading.Event()  # module-level: a task's function is pickled by reference


def _first() -> str:
    assert _SECOND_DONE.wait(60)
    return "first"


def _second() -> str:
    _SECOND_DONE.set()
    return "second"


_RELEASE = threading.Event()
_LATE_DONE = threading.Event()


def _fails() -> None:
    raise RuntimeError("task failed")


def _late() -> str:
    _RELEASE.wait(60)
    _LATE_DONE.set()
    return "late"

def test_results_come_in_task_order_fetched_in_one_gather() -> None:
    """Task 0 finishes after task 1 (it waits for it); the results are still in task order, and the
    client fetches them all in one gather, not one request per finished task."""
    from dask import delayed
    from distributed import Client, LocalCluster

    from screening.run import _results

    _SECOND_DONE.clear()
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, scheduler_kwargs=NO_DASHBOARD,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        gathers = []
        gather = client.gather
        client.gather = lambda futures: gathers.append(len(futures)) or gather(futures)  # type: ignore[method-assign]
        tasks = [delayed(_first, pure=False)(), delayed(_second, pure=False)()]
        assert _results(client, tasks, False, "test", " task") == ["first", "second"]
    assert gathers == [2]



def test_a_failed_task_is_raised_at_once_not_after_the_other_tasks() -> None:
    """The results are gathered at the end, but a task's failure is raised as soon as it comes, while
    another task still runs (it waits until the test releases it)."""
    from dask import delayed
    from distributed import Client, LocalCluster

    from screening.run import _results

    _RELEASE.clear()
    _LATE_DONE.clear()
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, scheduler_kwargs=NO_DASHBOARD,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        with pytest.raises(RuntimeError, match="task failed"):
            _results(client, [delayed(_fails, pure=False)(), delayed(_late, pure=False)()], False, "test", " task")
        assert not _LATE_DONE.is_set()
        _RELEASE.set()
