"""Knowledge-file problems with file, line and id, all reported at once, with "did you mean".

A knowledge engineer fixes a file faster from one list of every mistake, each pointing at the
line, than from the first error alone; a near miss gets the nearest known id.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import ValidationError

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    where: str
    reason: str

    def __str__(self) -> str:
        at = f"{self.file}:{self.line}" if self.line else self.file
        return f"{at}: {self.where}: {self.reason}" if self.where else f"{at}: {self.reason}"


class KnowledgeBaseError(Exception):
    """One or more knowledge files are broken; each problem names its file, line, id and reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0]
        self.file, self.where, self.reason = first.file, first.where, first.reason
        lines = [str(p) for p in problems]
        head = f"{len(problems)} problems in the knowledge base:\n" if len(problems) > 1 else ""
        super().__init__(head + "\n".join(lines))


def did_you_mean(word: Any, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for a near miss, else ''."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def error_reason(error: Any) -> str:
    """One pydantic error (an item of `ValidationError.errors()`) as a reason a reader can act on;
    the one place that words them, for knowledge files and for the input alike."""
    return str(error["msg"]).removeprefix("Value error, ")


class SourceFile:
    """A YAML file's text, with the line of any path in it found on demand (errors only)."""

    def __init__(self, path: Path, rel: str, text: str) -> None:
        self.path, self.rel, self.text = path, rel, text
        self._node: Any = None

    def line(self, keys: Iterable[Any]) -> int | None:
        if self._node is None:
            try:
                self._node = yaml.compose(self.text, Loader=_LOADER) or False
            except yaml.YAMLError:
                self._node = False
        node, line, key_line = self._node, None, None
        for key in keys:
            if not node:
                break
            line, key_line = node.start_mark.line + 1, None
            if isinstance(node, yaml.MappingNode):
                pair = next(((k, v) for k, v in node.value if k.value == str(key)), None)
                # the key's line: a block value starts on the line after its key
                node, key_line = (pair[1], pair[0].start_mark.line + 1) if pair else (None, None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
                node = node.value[key]
            else:
                node = None
        if node:
            line = key_line or node.start_mark.line + 1
        return line


class Collector:
    """Gathers problems while a knowledge base loads; `raise_if_any()` ends the load."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, source: SourceFile | str, keys: tuple[Any, ...], reason: str, where: str = "") -> None:
        if isinstance(source, SourceFile):
            self.problems.append(Problem(source.rel, source.line(keys), where or _path(keys), reason))
        else:
            self.problems.append(Problem(source, None, where or _path(keys), reason))

    def validation(
        self, source: SourceFile, prefix: tuple[Any, ...], error: ValidationError, where: str, fields: Iterable[str] = ()
    ) -> None:
        """Each pydantic error as a problem; an unknown field gets the nearest known field name, and
        a misspelt required field is one problem (the unknown one), not also "required field missing"."""
        errors = error.errors()
        misspelt = {
            (e["loc"][:-1], near)
            for e in errors
            if e["type"] == "extra_forbidden" and e["loc"]
            for near in difflib.get_close_matches(str(e["loc"][-1]), list(fields), n=1, cutoff=0.75)
        }
        for e in errors:
            if e["type"] == "missing" and e["loc"] and (e["loc"][:-1], e["loc"][-1]) in misspelt:
                continue
            loc = tuple(prefix) + tuple(e["loc"])
            reason = error_reason(e)
            if e["type"] == "extra_forbidden":
                reason = "unknown field" + did_you_mean(e["loc"][-1], fields)
            elif e["type"] == "missing":
                reason = "required field missing"
            inside = ".".join(str(p) for p in e["loc"])
            self.add(source, loc, reason, f"{where}: {inside}" if where and inside else where or inside)

    def raise_if_any(self) -> None:
        if self.problems:
            raise KnowledgeBaseError(self.problems)


def _path(keys: tuple[Any, ...]) -> str:
    text = ""
    for key in keys:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text
