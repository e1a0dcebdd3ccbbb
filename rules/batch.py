"""`myotomy-cds batch`: one presentation per line in, one JSON record per line out, in input order.

Streaming, so memory does not grow with the file; each record is written whole, so an interrupted
run leaves only complete lines. `--workers N` forks N processes that assess runs of lines and
write them in turn; the output is the same, byte for byte. A line that cannot be assessed becomes
an error record naming its line; the run goes on.

`--output summary` writes a compact record per line instead of the whole plan (about 27 KiB of
JSON, most of it basis records and "why not" that a screening run does not read): what a
reviewer scans a batch for, with the knowledge stamp that says which rules made it.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import json
import multiprocessing
import os
import signal
import sys
import threading
from typing import IO, Any, Iterable, Iterator

from pydantic import TypeAdapter

from models.plan import Plan, SourceCaveat
from rules.engine import RuleExecutionError
from rules.json_input import MAX_INPUT_BYTES, OUTPUTS, UsageError, parse_json
from rules.planner import InputError, assess, default_context, prepare

BATCH_CHUNK = 32  # lines per run of lines handed to a worker process
BATCH_WINDOW = 3  # runs queued or assessed ahead per worker: bounds memory whatever the size of the file
Record = tuple[bool, bytes]  # (is an error record, the output line with its newline)


def plan_json(result: Plan) -> bytes:
    """`result.model_dump_json()` as UTF-8, with the source caveats (most of the bytes, the same
    for every plan of the same presentations) serialized once per process, not per line."""
    key = (result.knowledge_base.content_hash, tuple((c.id, c.presentations) for c in result.source_caveats))
    caveats = _CAVEATS_JSON.get(key)
    if caveats is None:
        caveats = _CAVEATS_ADAPTER.dump_json(result.source_caveats)
        if len(_CAVEATS_JSON) < 256:
            _CAVEATS_JSON[key] = caveats
    body = _PLAN_ADAPTER.dump_json(result, exclude={"source_caveats"})
    at = body.find(_AFTER_CAVEATS)  # a key, so never inside a string, where quotes are escaped
    if at < 0:
        return _PLAN_ADAPTER.dump_json(result)
    return b"".join((body[:at], b',"source_caveats":', caveats, body[at:]))


_PLAN_ADAPTER = TypeAdapter(Plan)
_CAVEATS_ADAPTER = TypeAdapter(tuple[SourceCaveat, ...])
_CAVEATS_JSON: dict[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], bytes] = {}
_AFTER_CAVEATS = b',"fired_rules":'


def plan_summary(result: Plan) -> dict[str, Any]:
    """The compact record of `--output summary`: the presentations, whether a stop flag stopped the
    plan, the steps with their options and strengths, the options found not indicated, the standing
    flags with their severity, the details that would change the answer, and the knowledge-base stamp. Ids only: the words are in
    the full plan, and the stamp says which knowledge base gives them."""
    strength = {o.id: o.strength for o in result.options}
    return {
        "presentations": [p.id for p in result.presentations],
        "stopped": result.stopped,
        "steps": [
            {
                "kind": s.kind,
                "presentation": s.presentation,
                "workup": [t.id for t in s.workup],
                "options": [{"id": o, "strength": strength[o]} for o in s.options],
            }
            for s in result.steps
        ],
        "not_indicated": [o.id for o in result.options if o.strength == "not_indicated"],
        "flags": [{"id": f.id, "severity": f.severity} for f in result.flags if f.status == "standing"],
        "needs": [n.detail for n in result.needs],
        "knowledge_base": {"version": result.knowledge_base.version, "content_hash": result.knowledge_base.content_hash},
    }


_SUMMARY_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def assess_record(number: int, line: bytes, output: str = "full") -> Record:
    """The output line for one input line: `{"line": n, "plan": ...}` (or `{"line": n, "summary":
    ...}` with output "summary"), or an error record
    `{"line": n, "error": {"kind": "invalid_input" | "internal", "message": ...}}`."""
    try:
        if len(line) > MAX_INPUT_BYTES:
            raise UsageError(f"line is larger than {MAX_INPUT_BYTES // 1024} KiB")
        result = assess(parse_json(line, f"line {number}"))
        if output == "summary":
            text = _SUMMARY_JSON(plan_summary(result)).encode("utf-8")
            return False, b"".join((b'{"line": %d, "summary": ' % number, text, b"}\n"))
        return False, b"".join((b'{"line": %d, "plan": ' % number, plan_json(result), b"}\n"))
    except (UsageError, InputError) as error:
        error_record = {"line": number, "error": {"kind": "invalid_input", "message": str(error)}}
    except RuleExecutionError as error:
        error_record = {"line": number, "error": {"kind": "internal", "message": str(error)}}
    return True, (json.dumps(error_record, ensure_ascii=False) + "\n").encode("utf-8")


def _numbered(lines: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Line numbers count every line; blank lines get no record."""
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield number, line


def records(lines: Iterable[bytes], output: str = "full") -> Iterator[Record]:
    """One output record per non-blank input line, in order, assessed in this process."""
    for number, line in _numbered(lines):
        yield assess_record(number, line, output)


def _chunks(lines: Iterable[bytes]) -> Iterator[list[tuple[int, bytes]]]:
    chunk: list[tuple[int, bytes]] = []
    for item in _numbered(lines):
        chunk.append(item)
        if len(chunk) == BATCH_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


@contextlib.contextmanager
def _held(signals: set[signal.Signals]) -> Iterator[None]:
    """Hold back these signals for a `with` block (main thread only; elsewhere a no-op)."""
    mask = getattr(signal, "pthread_sigmask", None)
    previous = mask(signal.SIG_BLOCK, signals) if mask else None
    try:
        yield
    finally:
        if mask:
            mask(signal.SIG_SETMASK, previous)


def _write_whole(target: IO[bytes], data: bytes) -> None:
    """Write and flush with Ctrl-C held back until the data is out, so the file ends on a whole line."""
    if threading.current_thread() is not threading.main_thread():
        target.write(data)
        target.flush()
        return
    with _held({signal.SIGINT}):
        target.write(data)
        target.flush()


def _worker(index: int, count: int, inbox: Any, fd: int, turns: list[Any], stop: Any, output: str) -> None:
    """A worker process: assess the runs of lines it is sent, in order; write each when its turn
    comes (the turn passes around the workers in input order), then report the counts.

    While its turn has not come, a worker assesses the next run it holds instead of waiting: runs
    take unequal times, and a worker that only waited for the other's write left its core idle
    (the two went in lockstep, each run as slow as the slower of a pair)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # held back by the parent until now
    turn, after = turns[index], turns[(index + 1) % count]
    done: collections.deque[tuple[bytes, int, int]] = collections.deque()  # assessed, not yet written
    ended = False
    try:
        while done or not ended:
            if stop.is_set():
                return
            waiting = not ended and inbox.poll(0 if done else 0.1)  # a run to assess is there
            if done and (turn.acquire(block=False) if waiting else turn.acquire(timeout=0.1)):
                data, assessed, errors = done.popleft()
                try:
                    if stop.is_set():
                        return
                    with _held({signal.SIGTERM}):  # stopped between runs, never inside one
                        _write_all(fd, data)
                finally:
                    after.release()
                inbox.send(("done", assessed, errors))
            elif waiting:
                message = inbox.recv()
                if message is None:
                    ended = True
                    continue
                records = [assess_record(number, line, output) for number, line in message]
                errors = sum(is_error for is_error, _ in records)
                done.append((b"".join(text for _, text in records), len(records) - errors, errors))
    except Exception as error:  # reported to the main process, which stops the run
        stop.set()
        try:
            inbox.send(("failed", f"{type(error).__name__}: {error}"))
        except OSError:
            pass


class _Workers:
    """`count` forked worker processes that assess runs of lines and write them in input order.

    The main process reads the input and deals run k to worker k mod count; worker k writes its
    run after run k-1 is written, straight into the output (the file descriptor is shared by
    fork), so assessments never travel back through the main process. At most BATCH_WINDOW runs
    wait per worker, so memory does not grow with the file."""

    def __init__(self, count: int, fd: int, output: str = "full") -> None:
        kb, _ = default_context()  # built once here and shared by fork; a broken knowledge base fails now
        prepare(kb)  # the planner's derived tables too, not once per worker
        # what exists now lives as long as the workers: out of the collector's sight, so that
        # neither its scans nor its writes to the objects' headers copy the shared pages per worker
        gc.collect()
        gc.freeze()
        context = multiprocessing.get_context("fork")
        self.count = count
        self.stop = context.Event()
        turns = [context.Semaphore(1 if k == 0 else 0) for k in range(count)]
        self.pipes = []
        self.processes = []
        with _held({signal.SIGINT}):  # a Ctrl-C now reaches a worker only once it ignores it
            for index in range(count):
                ours, theirs = context.Pipe()
                process = context.Process(
                    target=_worker, args=(index, count, theirs, fd, turns, self.stop, output),
                    name=f"batch-worker-{index}", daemon=True,
                )
                process.start()
                theirs.close()
                self.pipes.append(ours)
                self.processes.append(process)
        self.sent = self.reported = 0
        self.counts = {"assessed": 0, "errors": 0}

    def _report(self) -> None:
        pipe = self.pipes[self.reported % self.count]
        try:
            message = pipe.recv()
        except (EOFError, OSError):
            raise RuleExecutionError("a worker process stopped unexpectedly") from None
        if message[0] != "done":
            raise RuleExecutionError(f"a worker process failed: {message[1]}")
        self.counts["assessed"] += message[1]
        self.counts["errors"] += message[2]
        self.reported += 1

    def run(self, chunks: Iterable[list[tuple[int, bytes]]]) -> None:
        for chunk in chunks:
            if self.sent - self.reported >= BATCH_WINDOW * self.count:
                self._report()  # the oldest run, which is this worker's: its queue stays short
            self.pipes[self.sent % self.count].send(chunk)
            self.sent += 1
        for pipe in self.pipes:
            pipe.send(None)
        while self.reported < self.sent:
            self._report()
        for process in self.processes:
            process.join()

    def close(self) -> None:
        """Stop the workers (at once on Ctrl-C or an error: a run being written is finished first)
        and count the runs they wrote."""
        self.stop.set()  # idle workers see it within 0.1 s
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join()
        for index in range(self.reported, self.sent):
            pipe = self.pipes[index % self.count]
            try:
                if not pipe.poll():
                    break
                message = pipe.recv()
            except (EOFError, OSError):
                break
            if message[0] == "done":
                self.counts["assessed"] += message[1]
                self.counts["errors"] += message[2]
        for pipe in self.pipes:
            pipe.close()
        gc.unfreeze()  # the workers are gone: this process's objects are the collector's again


def _progress(total_bytes: int | None) -> Any:
    """A progress bar on a terminal only, so that piped output and logs stay clean."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total_bytes, unit="B", unit_scale=True, desc="assessing", file=sys.stderr)


def _counted(source: IO[bytes], bar: Any) -> Iterator[bytes]:
    for line in source:
        if bar is not None:
            bar.update(len(line))
        yield line


def run(input_path: str, output_path: str, workers: int = 1, output: str = "full") -> None:
    """Assess every line of `input_path` into `output_path` ('-': standard input or output), each
    record the whole plan or its summary (`output`), and print the counts on stderr. Raises
    UsageError if a file cannot be opened."""
    if output not in OUTPUTS:
        raise UsageError(f"--output must be one of {', '.join(OUTPUTS)}, not {output!r}")
    try:
        source = sys.stdin.buffer if input_path == "-" else open(input_path, "rb")
    except OSError as error:
        raise UsageError(f"{input_path}: cannot be read: {error.strerror}") from None
    try:
        target = sys.stdout.buffer if output_path == "-" else open(output_path, "wb")
    except OSError as error:
        source.close()
        raise UsageError(f"{output_path}: cannot be written: {error.strerror}") from None
    if workers > 1 and "fork" not in multiprocessing.get_all_start_methods():
        print("--workers needs a platform with fork(); assessing in one process", file=sys.stderr)
        workers = 1
    counts = {"assessed": 0, "errors": 0}
    pool: _Workers | None = None
    bar = None
    try:
        if workers > 1:
            sys.stdout.flush()
            target.flush()
            pool = _Workers(workers, target.fileno(), output)  # before the bar starts a thread: fork
            counts = pool.counts
        bar = _progress(None if source is sys.stdin.buffer else os.fstat(source.fileno()).st_size)
        lines = _counted(source, bar)
        if pool is not None:
            pool.run(_chunks(lines))
        else:
            for is_error, data in records(lines, output):
                _write_whole(target, data)
                counts["errors" if is_error else "assessed"] += 1
    finally:
        if pool is not None:
            pool.close()
        if bar is not None:
            bar.close()
        if source is not sys.stdin.buffer:
            source.close()
        if target is not sys.stdout.buffer:
            target.close()
        print(f"{counts['assessed']} assessed, {counts['errors']} lines with errors", file=sys.stderr)
