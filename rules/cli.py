"""`myotomy-cds`: the command line. This module only parses arguments and dispatches; the work is
in rules/batch.py (batch), screening/ (screen), rules/render.py (the Markdown report), rules/kb_check.py (kb check,
kb lock), rules/kb_diff.py (kb diff) and rules/schemas.py (schema, kb schema).

Exit status: 0 success; 2 invalid input, or `kb check`/`kb lock` found problems (stderr names the
file or field and the reason); 1 internal error. No traceback reaches the user; no patient input is
written anywhere but the output the user asked for.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rules.json_input import OUTPUTS as BATCH_OUTPUTS, UsageError, read_json_file

# Each command imports what it needs (the planner, the models, dask): `screen` starts its workers'
# forkserver before it imports anything heavy, so the two overlap (screening/forkserver.py).

EXIT_OK, EXIT_INTERNAL, EXIT_INVALID = 0, 1, 2


def cmd_assess(args: argparse.Namespace) -> int:
    from rules.planner import assess

    plan = assess(read_json_file(args.file))
    if args.format == "markdown":
        from rules.render import to_markdown

        sys.stdout.write(to_markdown(plan))
    else:
        sys.stdout.write(plan.model_dump_json(indent=2) + "\n")
    return EXIT_OK


def cmd_batch(args: argparse.Namespace) -> int:
    from rules import batch

    batch.run(args.input, args.output, args.workers, args.record)
    return EXIT_OK


def cmd_screen(args: argparse.Namespace) -> int:
    from screening import forkserver

    forkserver.start_early(args.scheduler)  # first: it builds the workers' engine while this process imports
    from screening.export import ExportError
    from screening.run import run_cli

    try:
        return run_cli(args.export_dir, args.out, args.as_of, args.scheduler, args.workers, args.full)
    except ExportError as error:
        raise UsageError(str(error)) from None


def _day(text: str) -> str:
    from datetime import date

    try:
        date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None
    return text


def cmd_schema(_args: argparse.Namespace) -> int:
    from rules.planner import default_context
    from rules.schemas import input_schema

    sys.stdout.write(json.dumps(input_schema(default_context()[0]), indent=2) + "\n")
    return EXIT_OK


def cmd_kb_check(_args: argparse.Namespace) -> int:
    from rules import kb_check

    return kb_check.check()


def cmd_kb_lock(_args: argparse.Namespace) -> int:
    from rules import kb_check

    return kb_check.lock()


def cmd_kb_diff(args: argparse.Namespace) -> int:
    from rules import kb_diff

    try:
        return kb_diff.run(args.rev, args.rev2)
    except UsageError as error:
        print(f"kb diff: {error}", file=sys.stderr)
        return EXIT_INVALID


def cmd_kb_schema(args: argparse.Namespace) -> int:
    from rules.schemas import write_knowledge_schemas

    for path in write_knowledge_schemas(Path(args.folder)):
        print(path)
    return EXIT_OK


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of processes, got {text!r}") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"expected 1 to 64 processes, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="myotomy-cds",
        description="Myotomy decision support (supports a clinician's decision; never a diagnosis or an order).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("assess", help="assess one presentation (JSON) into a plan")
    p.add_argument("file", help="JSON file, or - for standard input")
    p.add_argument("--format", choices=("json", "markdown"), default="json")
    p.set_defaults(func=cmd_assess)
    p = sub.add_parser("batch", help="assess one presentation per line (JSON Lines), streaming")
    p.add_argument("input", help="JSON Lines file, or -")
    p.add_argument("output", help="output JSON Lines file, or -")
    p.add_argument(
        "--workers", type=_workers, default=1, metavar="N",
        help="assess in N processes (default 1); the output is the same, in the same order",
    )
    p.add_argument(
        "--output", dest="record", choices=BATCH_OUTPUTS, default="full",
        help="what each record holds: the whole plan (full, the default) or a compact summary "
        "(presentations, stopped, steps with option ids and strengths, standing flags, needs, knowledge stamp)",
    )
    p.set_defaults(func=cmd_batch)
    p = sub.add_parser(
        "screen", help="screen a cohort: every patient of a FHIR Bulk Data export, on Dask (screening/run.py)"
    )
    p.add_argument("export_dir", help="folder of the export: manifest.json and <Type>*.ndjson[.gz] files")
    p.add_argument("out", help="output folder: table/ (Parquet), summary.html, summary.md, plots")
    p.add_argument("--as-of", type=_day, metavar="YYYY-MM-DD",
                   help="the day ages are counted on (default: the manifest's transactionTime; required without one)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run on an existing Dask cluster (tcp://host:8786)")
    p.add_argument("--workers", type=_workers, default=2, metavar="N",
                   help="processes of the local Dask cluster (default 2; ignored with --scheduler)")
    p.add_argument("--full", action="store_true", help="also write every plan as JSON Lines (plans.jsonl)")
    p.set_defaults(func=cmd_screen)
    p = sub.add_parser("schema", help="print the JSON Schema of the input")
    p.set_defaults(func=cmd_schema)
    p = sub.add_parser("kb", help="knowledge-base tools")
    kb_sub = p.add_subparsers(dest="kb_command", required=True)
    k = kb_sub.add_parser("check", help="every problem of data/ and its cases, rule versions, rules no case fires")
    k.set_defaults(func=cmd_kb_check)
    k = kb_sub.add_parser("lock", help="record the rules' versions and content in data/rule_versions.yaml")
    k.set_defaults(func=cmd_kb_lock)
    k = kb_sub.add_parser("diff", help="how the plans of the teaching cases change between two revisions")
    k.add_argument("rev", help="git revision of the knowledge before")
    k.add_argument("rev2", nargs="?", help="git revision after (default: the working tree)")
    k.set_defaults(func=cmd_kb_diff)
    k = kb_sub.add_parser("schema", help="write the JSON Schemas of the knowledge files into a folder")
    k.add_argument("folder", help="e.g. docs/schema")
    k.set_defaults(func=cmd_kb_schema)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        return _failed(error)


def _failed(error: Exception) -> int:
    """The message and exit status for a command's error: never a traceback. The error classes are
    imported here, not with this module (see the imports above)."""
    from models.problems import KnowledgeBaseError
    from rules.engine import RuleExecutionError
    from rules.planner import InputError

    if isinstance(error, (UsageError, InputError)):
        print(f"invalid input: {error}", file=sys.stderr)
        return EXIT_INVALID
    if isinstance(error, KnowledgeBaseError):
        from rules.kb_check import print_problems

        print_problems("internal error: knowledge base is broken", error.problems, sys.stderr)
        return EXIT_INTERNAL
    if isinstance(error, RuleExecutionError):
        print(f"internal error: {error}", file=sys.stderr)
        return EXIT_INTERNAL
    print(f"internal error: {type(error).__name__}: {error}", file=sys.stderr)  # last resort
    return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
