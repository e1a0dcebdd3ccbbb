"""The command line, run as a user would: exit status, messages on stderr, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rules.knowledge_base import load_cases

CASE = next(case for _, case in load_cases() if case.id == "achalasia_type_iii_poem_preferred")


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "rules.cli", *args], input=stdin, capture_output=True, timeout=120)


def test_assess_json_and_markdown(tmp_path: Path) -> None:
    path = tmp_path / "case.json"
    path.write_text(json.dumps(CASE.input))
    done = run("assess", str(path))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["suggestions"][0]["procedure"] == "poem"
    md = run("assess", "-", "--format", "markdown", stdin=json.dumps(CASE.input).encode())
    assert md.returncode == 0 and b"## Candidate procedures" in md.stdout and b"not a diagnosis" in md.stdout


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        (b"{bad", b"invalid JSON at line 1"),
        (b"", b"input is empty"),
        (bytes(range(256)) * 20, b"not UTF-8"),
        (b"[" * 100_000, b"nested too deeply"),
        (b'{"conditions": [{"presentation": "achalasia", "subtype": "type_iv"}]}', b"conditions.0.subtype"),
        (b'{"age": {"value": -2}, "conditions": [{"presentation": "achalasia"}]}', b"age.value"),
        (b" " * (2 << 20), b"larger than"),
    ],
    ids=["json", "empty", "bytes", "nested", "subtype", "age", "huge"],
)
def test_invalid_input_exits_2_with_message(stdin: bytes, message: bytes) -> None:
    done = run("assess", "-", stdin=stdin)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and b"Traceback" not in done.stderr


def test_missing_file_exits_2(tmp_path: Path) -> None:
    done = run("assess", str(tmp_path / "nope.json"))
    assert done.returncode == 2 and b"cannot be read" in done.stderr


def test_batch_keeps_going_past_bad_lines(tmp_path: Path) -> None:
    good = json.dumps(CASE.input)
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join([good, "{broken", '{"conditions": [{"presentation": "nope"}]}', good]) + "\n")
    out = tmp_path / "out.jsonl"
    done = run("batch", str(source), str(out))
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3, 4]
    assert "assessment" in records[0] and "assessment" in records[3]
    assert records[1]["error"]["kind"] == "invalid_input" and "invalid JSON" in records[1]["error"]["message"]
    assert "unknown presentation" in records[2]["error"]["message"]
    assert b"2 assessed, 2 lines with errors" in done.stderr


def test_schema_lists_presentations() -> None:
    done = run("schema")
    schema = json.loads(done.stdout)
    assert "achalasia" in schema["$defs"]["Condition"]["properties"]["presentation"]["enum"]


def test_kb_check_reports_zero_unexercised_rules() -> None:
    done = run("kb", "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert b"rules not exercised by any teaching case: 0" in done.stdout
