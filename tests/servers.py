"""Start a server process on a free localhost port, wait until it answers, always stop it.

One place for what the browser tests, the uvicorn tests and the app benchmark all need: a server
that died or never answered is reported with its own output instead of hanging the run.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable, Iterator, Mapping

ROOT = Path(__file__).resolve().parent.parent


class ServerFailed(RuntimeError):
    """The server exited or did not answer in time; the message ends with its output."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers_ok(url: str) -> Callable[[], bool]:
    """A readiness check: GET `url` gives 200 (and, for Streamlit's health URL, the body `ok`)."""

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200 and (not url.endswith("/health") or response.read().strip() == b"ok")
        except OSError:
            return False

    return check


@contextlib.contextmanager
def running(command: list[str], ready: Callable[[], bool], log: Path, *, timeout: float = 90.0,
            env: Mapping[str, str] | None = None, poll: float = 0.2) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` from the repository root with its output in `log`; yield once `ready()` holds."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                   env=dict(env) if env is not None else None)
    name = " ".join(command[2:4])  # e.g. "streamlit run", "uvicorn service.app:app"
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if process.poll() is not None:
                raise ServerFailed(f"{name} exited with {process.returncode}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                raise ServerFailed(f"{name} did not answer within {timeout:.0f} s:\n{_tail(log)}")
            time.sleep(poll)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def streamlit_command(script: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
            "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"]


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]
