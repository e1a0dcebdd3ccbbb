"""`myotomy-cds batch --workers N`: the same output as one process, byte for byte, bad lines included;
whole lines only when interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rules import assess
from models.loader import load_cases
from rules.batch import BATCH_CHUNK, BATCH_WINDOW, assess_record, plan_summary

CASES = [case.input for _, case in load_cases()]
BAD_LINES = [
    b"{broken",
    b'{"conditions": [{"presentation": "nope"}]}',
    b"\xff\xfe not utf-8",
    b"[1, 2]",
    b'{"age": {"value": -2}, "conditions": [{"presentation": "achalasia"}]}',
    b"   ",
    b"",
    b" " * (1 << 20) + b"{}",
]


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "rules.cli", *args], input=stdin, capture_output=True, timeout=300)


def mixed_input(path: Path) -> int:
    """More runs of lines than the workers hold at once, with bad and blank lines spread through."""
    lines: list[bytes] = []
    total = BATCH_CHUNK * BATCH_WINDOW * 3 * 2 + 7
    for i in range(total):
        if i % 23 == 5:
            lines.append(BAD_LINES[(i // 23) % len(BAD_LINES)])
        else:
            lines.append(json.dumps(CASES[i % len(CASES)], ensure_ascii=False).encode())
    path.write_bytes(b"\n".join(lines) + b"\n")
    return total


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, bytes]:
    folder = tmp_path_factory.mktemp("workers")
    source = folder / "in.jsonl"
    mixed_input(source)
    done = run("batch", str(source), str(folder / "out-1.jsonl"))
    assert done.returncode == 0, done.stderr
    return source, (folder / "out-1.jsonl").read_bytes(), done.stderr


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_write_the_same_bytes_as_one_process(one_process: tuple[Path, bytes, bytes], workers: int) -> None:
    source, expected, expected_stderr = one_process
    out = source.with_name(f"out-{workers}.jsonl")
    done = run("batch", str(source), str(out), "--workers", str(workers))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == expected
    assert done.stderr == expected_stderr


def test_one_process_output_has_every_line_in_order_with_error_records(one_process: tuple[Path, bytes, bytes]) -> None:
    source, output, stderr = one_process
    inputs = source.read_bytes().split(b"\n")[:-1]
    records = [json.loads(line) for line in output.decode("utf-8").splitlines()]
    assert [r["line"] for r in records] == [n for n, line in enumerate(inputs, start=1) if line.strip()]
    errors = [r for r in records if "error" in r]
    assert len(errors) == sum(1 for line in inputs if line.strip() and line in BAD_LINES)
    assert {e["error"]["kind"] for e in errors} == {"invalid_input"}
    assert any("larger than" in e["error"]["message"] for e in errors)
    assert any("not UTF-8" in e["error"]["message"] for e in errors)
    assert f"{len(records) - len(errors)} assessed, {len(errors)} lines with errors".encode() in stderr
    # each plan record is the plan itself (its JSON is assembled from cached parts)
    for record in records[:40]:
        if "plan" in record:
            raw = json.loads(inputs[record["line"] - 1])
            assert record["plan"] == assess(raw).model_dump(mode="json")


def test_assess_record_is_one_whole_line_per_input_line() -> None:
    is_error, data = assess_record(7, json.dumps(CASES[0]).encode())
    assert not is_error and data.endswith(b"\n") and data.count(b"\n") == 1
    assert json.loads(data) == {"line": 7, "plan": assess(CASES[0]).model_dump(mode="json")}
    is_error, data = assess_record(8, b"{broken")
    assert is_error and json.loads(data)["error"]["kind"] == "invalid_input"


def test_workers_to_standard_output(one_process: tuple[Path, bytes, bytes]) -> None:
    source, expected, _ = one_process
    done = run("batch", str(source), "-", "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected


@pytest.mark.parametrize("value", ["0", "-1", "two", "65"])
def test_invalid_worker_count_exits_2(tmp_path: Path, value: str) -> None:
    done = run("batch", "-", str(tmp_path / "out.jsonl"), "--workers", value)
    assert done.returncode == 2 and b"--workers" in done.stderr and b"Traceback" not in done.stderr


@pytest.mark.parametrize(("workers", "to_group"), [(1, False), (2, False), (2, True)],
                         ids=["1-worker", "2-workers", "2-workers-terminal-ctrl-c"])
def test_ctrl_c_leaves_only_whole_lines(tmp_path: Path, workers: int, to_group: bool) -> None:
    """SIGINT to the main process, or to the whole process group as a terminal's Ctrl-C sends it."""
    source = tmp_path / "in.jsonl"
    line = json.dumps(CASES[0]).encode()
    source.write_bytes((line + b"\n") * 20_000)
    out = tmp_path / "out.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "rules.cli", "batch", str(source), str(out), "--workers", str(workers)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=to_group,
    )
    deadline = time.monotonic() + 120
    while (not out.exists() or out.stat().st_size == 0) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    assert process.poll() is None, "the batch ended before it could be interrupted"
    if to_group:
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert b"interrupted" in stderr and b"Traceback" not in stderr
    data = out.read_bytes()
    assert data.endswith(b"\n")
    numbers = [json.loads(text)["line"] for text in data.decode("utf-8").splitlines()]
    assert numbers == list(range(1, len(numbers) + 1)) and 0 < len(numbers) < 20_000


def test_summary_records_are_the_plans_in_brief_with_workers_too(one_process: tuple[Path, bytes, bytes]) -> None:
    """`--output summary`: one compact record per line, the same bytes with workers, each the
    summary of the very plan the full output holds; error records as in the full output."""
    source, full, _ = one_process
    one = source.with_name("summary-1.jsonl")
    two = source.with_name("summary-2.jsonl")
    assert run("batch", str(source), str(one), "--output", "summary").returncode == 0
    assert run("batch", str(source), str(two), "--output", "summary", "--workers", "2").returncode == 0
    assert one.read_bytes() == two.read_bytes()
    summaries = [json.loads(line) for line in one.read_text().splitlines()]
    plans = [json.loads(line) for line in full.decode().splitlines()]
    assert [s["line"] for s in summaries] == [p["line"] for p in plans]
    assert len(one.read_bytes()) * 10 < len(full)
    for summary, plan in zip(summaries, plans):
        if "error" in plan:
            assert summary == plan
            continue
        p, s = plan["plan"], summary["summary"]
        strength = {o["id"]: o["strength"] for o in p["options"]}
        assert s["presentations"] == [i["id"] for i in p["presentations"]] and s["stopped"] == p["stopped"]
        assert [(t["kind"], [o["id"] for o in t["options"]]) for t in s["steps"]] == [(t["kind"], t["options"]) for t in p["steps"]]
        assert all(o["strength"] == strength[o["id"]] for t in s["steps"] for o in t["options"])
        assert s["flags"] == [{"id": f["id"], "severity": f["severity"]} for f in p["flags"] if f["status"] == "standing"]
        assert s["needs"] == [n["detail"] for n in p["needs"]] and s["knowledge_base"] == p["knowledge_base"]


def test_assess_record_summary_is_one_line() -> None:
    is_error, data = assess_record(3, json.dumps(CASES[0]).encode(), "summary")
    assert not is_error and data.count(b"\n") == 1
    assert json.loads(data) == {"line": 3, "summary": plan_summary(assess(CASES[0]))}


def test_unknown_output_kind_exits_2(tmp_path: Path) -> None:
    done = run("batch", "-", str(tmp_path / "out.jsonl"), "--output", "brief")
    assert done.returncode == 2 and b"--output" in done.stderr and b"Traceback" not in done.stderr
