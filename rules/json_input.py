"""Reading one presentation as JSON from a file, standard input or a batch line, with a message
that names the place and the reason instead of a traceback (shared by `assess` and `batch`); and what a
batch record may hold, which the command line lists without importing the planner (rules/cli.py)."""

from __future__ import annotations

import json
import sys
from typing import IO, Any

MAX_INPUT_BYTES = 1 << 20  # one presentation is a few kilobytes; refuse anything far larger
OUTPUTS = ("full", "summary")  # what a batch record holds: the whole plan, or `plan_summary` (rules/batch.py)


class UsageError(Exception):
    """Invalid input or arguments: exit status 2."""


def read_json(stream: IO[bytes], name: str) -> Any:
    """At most MAX_INPUT_BYTES are read, so a huge input is refused without filling memory."""
    data = stream.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise UsageError(f"{name}: input is larger than {MAX_INPUT_BYTES // 1024} KiB; one presentation is expected")
    return parse_json(data, name)


def read_json_file(path: str) -> Any:
    """A file's JSON, or standard input for '-'."""
    if path == "-":
        return read_json(sys.stdin.buffer, "standard input")
    try:
        with open(path, "rb") as handle:
            return read_json(handle, path)
    except OSError as error:
        raise UsageError(f"{path}: cannot be read: {error.strerror}") from None


def parse_json(data: bytes, name: str) -> Any:
    if not data.strip():
        raise UsageError(f"{name}: input is empty; expected a JSON object")
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise UsageError(f"{name}: input is not UTF-8 text (byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise UsageError(f"{name}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
    except RecursionError:
        raise UsageError(f"{name}: JSON is nested too deeply") from None
