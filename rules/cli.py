"""`myotomy-cds`: assess, batch, schema and knowledge-base check from the command line.

Exit status: 0 success, 2 invalid input (message on stderr names the field and the reason),
1 internal error. No traceback reaches the user; no patient input is written anywhere but the
output the user asked for.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import IO, Any, Iterator

from models.presentation import Presentation
from rules.assess import InputError, assess, default_context
from rules.engine import RuleExecutionError
from rules.knowledge_base import KnowledgeBase, KnowledgeBaseError, load, load_cases
from rules.render import to_markdown

MAX_INPUT_BYTES = 1 << 20  # one presentation is a few kilobytes; refuse anything far larger
EXIT_OK, EXIT_INTERNAL, EXIT_INVALID = 0, 1, 2


class UsageError(Exception):
    """Invalid input or arguments: exit status 2."""


def _read_json(stream: IO[bytes], name: str) -> Any:
    data = stream.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise UsageError(f"{name}: input is larger than {MAX_INPUT_BYTES // 1024} KiB; one presentation is expected")
    return _parse_json(data, name)


def _parse_json(data: bytes, name: str) -> Any:
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


def cmd_assess(args: argparse.Namespace) -> int:
    if args.file == "-":
        raw = _read_json(sys.stdin.buffer, "standard input")
    else:
        try:
            with open(args.file, "rb") as handle:
                raw = _read_json(handle, args.file)
        except OSError as error:
            raise UsageError(f"{args.file}: cannot be read: {error.strerror}") from None
    result = assess(raw)
    if args.format == "markdown":
        sys.stdout.write(to_markdown(result))
    else:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    return EXIT_OK


def _records(lines: Iterator[bytes]) -> Iterator[dict[str, Any]]:
    """One output record per input line: the assessment, or an error naming the line."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            if len(line) > MAX_INPUT_BYTES:
                raise UsageError(f"line is larger than {MAX_INPUT_BYTES // 1024} KiB")
            result = assess(_parse_json(line, f"line {number}"))
            yield {"line": number, "assessment": result.model_dump(mode="json")}
        except (UsageError, InputError) as error:
            yield {"line": number, "error": {"kind": "invalid_input", "message": str(error)}}
        except RuleExecutionError as error:
            yield {"line": number, "error": {"kind": "internal", "message": str(error)}}


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


def cmd_batch(args: argparse.Namespace) -> int:
    """Stream: one line in, one record out, flushed whole, so memory does not grow with the file
    and an interrupted run leaves only complete lines."""
    try:
        source = sys.stdin.buffer if args.input == "-" else open(args.input, "rb")
    except OSError as error:
        raise UsageError(f"{args.input}: cannot be read: {error.strerror}") from None
    try:
        target = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")
    except OSError as error:
        source.close()
        raise UsageError(f"{args.output}: cannot be written: {error.strerror}") from None
    total = None if source is sys.stdin.buffer else os.fstat(source.fileno()).st_size
    bar = _progress(total)
    counts = {"assessed": 0, "errors": 0}
    try:
        for record in _records(_counted(source, bar)):
            target.write(json.dumps(record, ensure_ascii=False) + "\n")
            target.flush()
            counts["errors" if "error" in record else "assessed"] += 1
    finally:
        if bar is not None:
            bar.close()
        if source is not sys.stdin.buffer:
            source.close()
        if target is not sys.stdout:
            target.close()
        print(f"{counts['assessed']} assessed, {counts['errors']} lines with errors", file=sys.stderr)
    return EXIT_OK


def cmd_schema(_args: argparse.Namespace) -> int:
    sys.stdout.write(json.dumps(input_schema(default_context()[0]), indent=2) + "\n")
    return EXIT_OK


def input_schema(kb: KnowledgeBase) -> dict[str, Any]:
    """The input model's JSON Schema, with the knowledge base's ids as enumerations."""
    schema = Presentation.model_json_schema()
    condition = schema["$defs"]["Condition"]["properties"]
    condition["presentation"]["enum"] = sorted(kb.presentations)
    subtypes = sorted({s for p in kb.presentations.values() for s in p.subtypes})
    condition["subtype"]["anyOf"][0]["enum"] = subtypes
    schema["$defs"]["PriorTreatment"]["properties"]["treatment"]["enum"] = sorted(kb.procedures)
    return schema


def cmd_kb_check(_args: argparse.Namespace) -> int:
    try:
        kb = load()
        cases = load_cases()
    except KnowledgeBaseError as error:
        print(f"knowledge base is broken: {error}", file=sys.stderr)
        return EXIT_INVALID
    from rules.engine import Engine

    context = (kb, Engine(kb))
    fired: set[str] = set()
    failed = 0
    for file, case in cases:
        try:
            fired.update(assess(case.input, context=context).fired_rules)
        except InputError as error:
            failed += 1
            print(f"{file}: case {case.id}: invalid input: {error}", file=sys.stderr)
    unexercised = [r.id for r in kb.rules if r.id not in fired]
    print(f"knowledge base {kb.version} ({kb.content_hash[:16]}): {len(kb.presentations)} presentations, "
          f"{len(kb.procedures)} procedures, {len(kb.rules)} rules, {len(kb.citations)} citations, "
          f"{len(cases)} teaching cases")
    print(f"rules not exercised by any teaching case: {len(unexercised)}")
    for rule_id in unexercised:
        print(f"  {rule_id}")
    return EXIT_OK if not unexercised and not failed else EXIT_INTERNAL


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="myotomy-cds",
        description="Myotomy decision support (supports a clinician's decision; never a diagnosis or an order).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("assess", help="assess one presentation (JSON)")
    p.add_argument("file", help="JSON file, or - for standard input")
    p.add_argument("--format", choices=("json", "markdown"), default="json")
    p.set_defaults(func=cmd_assess)
    p = sub.add_parser("batch", help="assess one presentation per line (JSON Lines), streaming")
    p.add_argument("input", help="JSON Lines file, or -")
    p.add_argument("output", help="output JSON Lines file, or -")
    p.set_defaults(func=cmd_batch)
    p = sub.add_parser("schema", help="print the JSON Schema of the input")
    p.set_defaults(func=cmd_schema)
    p = sub.add_parser("kb", help="knowledge-base tools")
    kb_sub = p.add_subparsers(dest="kb_command", required=True)
    k = kb_sub.add_parser("check", help="validate the knowledge base; report rules no teaching case fires")
    k.set_defaults(func=cmd_kb_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, InputError) as error:
        print(f"invalid input: {error}", file=sys.stderr)
        return EXIT_INVALID
    except (KnowledgeBaseError, RuleExecutionError) as error:
        print(f"internal error: {error}", file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # last resort: a message, never a traceback
        print(f"internal error: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
