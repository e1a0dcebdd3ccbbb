"""The command line, run as a user would: exit status, messages on stderr, no traceback."""

from __future__ import annotations

import json
import re
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from models.loader import DATA_DIR, load_cases

CASES = {case.id: case for _, case in load_cases()}
CASE = CASES["achalasia_type_iii_poem_preferred"]


def run(*args: str, stdin: bytes = b"", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "rules.cli", *args], input=stdin, capture_output=True, timeout=120, env=env)


def test_assess_json_is_the_plan(tmp_path: Path) -> None:
    path = tmp_path / "case.json"
    path.write_text(json.dumps(CASE.input))
    done = run("assess", str(path))
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["options"][0]["id"] == "poem" and plan["options"][0]["strength"] == "preferred"
    assert plan["stopped"] is False and plan["knowledge_base"]["version"] and "not a diagnosis" in plan["disclaimer"]


def test_assess_markdown_puts_the_stop_flag_first() -> None:
    stopped = CASES["achalasia_older_patient_weight_loss"]
    done = run("assess", "-", "--format", "markdown", stdin=json.dumps(stopped.input).encode())
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode()
    order = ["## Stop: address before anything else", "## Do first", "## Steps", "## Options", "## Why not",
             "## What these rules are for", "## From the source documents", "Knowledge base ", "not a diagnosis"]
    at = [text.index(heading) for heading in order]
    assert at == sorted(at), text
    assert "withheld until this is addressed" in text  # the treatment options wait for the stop flag


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        (b"{bad", b"invalid JSON at line 1"),
        (b"", b"input is empty"),
        (bytes(range(256)) * 20, b"not UTF-8"),
        (b"[" * 100_000, b"nested too deeply"),
        (b'{"conditions": [{"presentation": "achalasia", "subtype": "type_iv"}]}', b"conditions.0.subtype"),
        (b'{"conditions": [{"presentation": "achalasiaa"}]}', b"did you mean 'achalasia'"),
        (b'{"age": {"value": -2}, "conditions": [{"presentation": "achalasia"}]}', b"age.value"),
        (b" " * (2 << 20), b"larger than"),
    ],
    ids=["json", "empty", "bytes", "nested", "subtype", "presentation", "age", "huge"],
)
def test_invalid_input_exits_2_with_message(stdin: bytes, message: bytes) -> None:
    done = run("assess", "-", stdin=stdin)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and b"Traceback" not in done.stderr and done.stdout == b""


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
    assert records[0]["plan"]["options"][0]["id"] == "poem" and records[3]["plan"] == records[0]["plan"]
    assert records[1]["error"]["kind"] == "invalid_input" and "invalid JSON" in records[1]["error"]["message"]
    assert "unknown presentation" in records[2]["error"]["message"]
    assert b"2 assessed, 2 lines with errors" in done.stderr


def test_schema_is_the_input_model_of_the_knowledge_base() -> None:
    done = run("schema")
    assert done.returncode == 0, done.stderr
    schema = json.loads(done.stdout)
    achalasia = schema["$defs"]["Condition_achalasia"]["properties"]
    assert achalasia["presentation"]["const"] == "achalasia"
    assert achalasia["subtype"]["anyOf"][0]["enum"] == ["type_i", "type_ii", "type_iii"]


def test_kb_check_passes_on_the_knowledge_base() -> None:
    done = run("kb", "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert b"rules not exercised by any teaching case: 0" in done.stdout and done.stderr == b""


@pytest.fixture()
def data_copy(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of data/ to break, and the environment that points the command at it."""
    root = tmp_path / "data"
    shutil.copytree(DATA_DIR, root)
    return root, {**os.environ, "MYOTOMY_CDS_DATA": str(root)}


def test_kb_check_prints_every_problem_with_file_line_and_did_you_mean(data_copy: tuple[Path, dict[str, str]]) -> None:
    root, env = data_copy
    rules = root / "presentations" / "strabismus" / "rules.yaml"
    rules.write_text(rules.read_text(encoding="utf-8").replace("    amblyopia: untreated\n", "    amblyopia: treatd\n", 1))
    cases = root / "presentations" / "strabismus" / "cases.yaml"
    cases.write_text(cases.read_text(encoding="utf-8").replace("    - rectus_recession\n", "    - rectus_recesion\n", 1))
    done = run("kb", "check", env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    err = done.stderr.decode()
    assert "knowledge base is broken: 2 problems" in err and "Traceback" not in err
    assert "data/presentations/strabismus/rules.yaml:" in err and "did you mean 'treated'" in err
    assert "data/presentations/strabismus/cases.yaml:" in err and "did you mean 'rectus_recession'" in err


def test_kb_check_reports_a_rule_no_case_fires_with_exit_2(data_copy: tuple[Path, dict[str, str]]) -> None:
    root, env = data_copy
    rules = root / "presentations" / "achalasia" / "rules.yaml"
    text = rules.read_text(encoding="utf-8")
    rules.write_text(text.replace("    operative_risk: high\n", "    operative_risk: high\n    age_years:\n      gte: 119\n", 1))
    assert run("kb", "lock", env=env).returncode == 2  # changed under the same version: not locked
    done = run("kb", "check", env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert b"rules not exercised by any teaching case: 1\n  achalasia_unfit_botulinum_toxin_first" in done.stdout
    assert re.search(rb"rule achalasia_unfit_botulinum_toxin_first changed but its version is still \d+: bump it", done.stderr)


def test_the_plan_is_the_same_in_every_process(tmp_path: Path) -> None:
    """Nothing in the plan may depend on the process's hash seed (batch workers compare byte for byte)."""
    path = tmp_path / "case.json"
    path.write_text(json.dumps(CASES["achalasia_dysphagia_without_manometry"].input))
    outputs = {run("assess", str(path), env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")}
    assert len(outputs) == 1


def test_the_command_line_module_imports_nothing_heavy() -> None:
    """`myotomy-cds screen` starts its workers' forkserver (which builds the engine) before it imports
    the planner, the models or dask, so that the two overlap: importing rules.cli must not import them."""
    code = ("import sys, rules.cli; print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'models', 'pydantic', 'durable', 'dask', 'distributed', 'pyarrow', 'screening', 'service'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
