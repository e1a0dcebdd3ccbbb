"""`myotomy-cds batch` as a user runs it: a separate process over a generated file.

Measured per run: wall time from start to exit (process start and knowledge-base load included),
peak resident memory of the command's process (its kernel high-water mark, VmHWM, read every
20 ms; the rusage of a child started by `subprocess` also counts the parent's memory, which it
shared before exec), the same for its largest worker, the peak of the sum over the process and
its workers (VmRSS, sampled), and a SHA-256 of the output so that runs with different worker
counts can be compared byte for byte. The output file is deleted after each run (100,000
assessments are gigabytes).
"""

from __future__ import annotations

import hashlib
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Run:
    lines: int
    workers: int
    seconds: float
    peak_rss_mb: float  # the command's process (VmHWM)
    peak_worker_rss_mb: float  # its largest worker (VmHWM), 0 without workers
    peak_tree_rss_mb: float  # process plus workers (summed VmRSS, sampled)
    output_sha256: str
    output_mb: float
    stderr: str

    @property
    def throughput(self) -> float:
        return self.lines / self.seconds


def command() -> list[str]:
    script = Path(sys.executable).with_name("myotomy-cds")
    return [str(script)] if script.exists() else [sys.executable, "-m", "rules.cli"]


def _memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in kB; zeros once the process has gone."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith(b"VmHWM:"):
                    hwm = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return rss, hwm


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    fields = handle.read().rsplit(b")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        children = _children(todo.pop())
        found += children
        todo += children
    return found


class _Sampler(threading.Thread):
    """High-water marks of a process and of each child (or each descendant: a Dask worker is a
    nanny's child), and the peak of their summed RSS; children re-listed every 0.2 s."""

    def __init__(self, pid: int, descendants: bool = False) -> None:
        super().__init__(daemon=True)
        self.pid, self.done = pid, threading.Event()
        self.list = _descendants if descendants else _children
        self.hwm_kb: dict[int, int] = {}
        self.tree_kb = 0

    def run(self) -> None:
        children: list[int] = []
        listed = 0.0
        while not self.done.wait(0.02):
            if time.monotonic() - listed > 0.2:
                children, listed = self.list(self.pid), time.monotonic()
            total = 0
            for pid in (self.pid, *children):
                rss, hwm = _memory_kb(pid)
                total += rss
                self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), hwm)
            self.tree_kb = max(self.tree_kb, total)


def run_batch(source: Path, lines: int, workers: int, workdir: Path, env: dict[str, str] | None = None,
              record: str = "full") -> Run:
    """Run one batch to completion and measure it; raises if it fails or writes the wrong count.
    `record` is the command's `--output` (full plans or summaries)."""
    output = workdir / f"out-{workers}.jsonl"
    start = time.perf_counter()
    process = subprocess.Popen(
        [*command(), "batch", str(source), str(output), "--workers", str(workers), "--output", record],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    sampler = _Sampler(process.pid)
    sampler.start()
    process.wait()  # the last reading before exit stands: an exited process has no memory figures
    seconds = time.perf_counter() - start
    sampler.done.set()
    sampler.join()
    stderr = process.stderr.read().decode("utf-8", "replace").strip() if process.stderr else ""
    if process.stderr:
        process.stderr.close()
    if process.returncode != 0:
        raise RuntimeError(f"batch exited with {process.returncode}: {stderr[-500:]}")
    digest = hashlib.sha256()
    count = 0
    with output.open("rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
            count += block.count(b"\n")
    size = output.stat().st_size
    output.unlink()
    if count != lines:
        raise RuntimeError(f"batch wrote {count} lines for {lines} inputs: {stderr[-500:]}")
    return Run(
        lines=lines,
        workers=workers,
        seconds=seconds,
        peak_rss_mb=sampler.hwm_kb.get(process.pid, 0) / 1024,
        peak_worker_rss_mb=max((v for k, v in sampler.hwm_kb.items() if k != process.pid), default=0) / 1024,
        peak_tree_rss_mb=sampler.tree_kb / 1024,
        output_sha256=digest.hexdigest(),
        output_mb=size / 1024 / 1024,
        stderr=stderr,
    )


def startup_seconds(workdir: Path, line: str, env: dict[str, str] | None = None, repeats: int = 3) -> float:
    """Median wall time of a batch over a one-line file: process start, knowledge-base load and
    engine build, one assessment."""
    one = workdir / "one.jsonl"
    one.write_text(line + "\n", encoding="utf-8")
    return statistics.median(run_batch(one, 1, 1, workdir, env=env).seconds for _ in range(repeats))
