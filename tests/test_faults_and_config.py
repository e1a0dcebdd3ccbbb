"""Faults through the CLI, and the privacy defaults a clinical tool ships with."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from models.loader import DATA_DIR, load_cases

ROOT = Path(__file__).resolve().parent.parent


def test_cli_exits_1_with_a_message_when_a_rule_fails(monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path) -> None:
    from rules import RuleExecutionError, cli
    from rules.engine import Engine

    def fail(self, presentation, facts):
        raise RuleExecutionError("rule achalasia_type_iii_prefers_poem failed: injected")

    monkeypatch.setattr(Engine, "fire", fail)
    case = tmp_path / "case.json"
    case.write_text(json.dumps(next(c.input for _, c in load_cases())))
    assert cli.main(["assess", str(case)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing partial on stdout
    assert "internal error" in captured.err and "injected" in captured.err and "Traceback" not in captured.err


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda root: (root / "presentations" / "achalasia" / "rules.yaml").write_text("rules: [\n"), "invalid YAML"),
        (lambda root: (root / "citations.yaml").unlink(), "file missing"),
        (lambda root: (root / "presentations" / "achalasia" / "presentation.yaml").write_text("id: achalasia\n"), "required field missing"),
    ],
    ids=["invalid-yaml", "missing-file", "missing-field"],
)
def test_kb_check_reports_a_broken_knowledge_base_with_exit_2(tmp_path: Path, breakage, expected: str) -> None:
    root = tmp_path / "data"
    shutil.copytree(DATA_DIR, root)
    breakage(root)
    done = subprocess.run([sys.executable, "-m", "rules.cli", "kb", "check"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**__import__("os").environ, "MYOTOMY_CDS_DATA": str(root)})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "knowledge base is broken" in done.stderr and expected in done.stderr and "Traceback" not in done.stderr


def test_streamlit_defaults_keep_data_local_and_errors_plain() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["address"] in ("localhost", "127.0.0.1")
    assert config["browser"]["gatherUsageStats"] is False
    assert config["client"]["showErrorDetails"] == "none"


def test_service_listens_on_localhost_by_default() -> None:
    """make serve: 127.0.0.1, told to the app too, in local development mode unless clients are configured."""
    env = {k: v for k, v in __import__("os").environ.items()
           if not k.startswith("CDS_") and k not in ("SERVE_HOST", "PORT", "MAKEFLAGS", "MAKELEVEL")}
    plan = subprocess.run(["make", "-n", "serve"], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert plan.returncode == 0, plan.stderr
    assert "--host '127.0.0.1'" in plan.stdout and "CDS_BIND_HOST='127.0.0.1'" in plan.stdout
    assert "CDS_INSECURE_DEV='1'" in plan.stdout
    secured = subprocess.run(["make", "-n", "serve"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                             env={**env, "CDS_CLIENTS": "clients.yaml"})
    assert "CDS_INSECURE_DEV='0'" in secured.stdout and "--host '127.0.0.1'" in secured.stdout
