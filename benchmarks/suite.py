"""The sections of `make bench`: each measures, prints its table and returns Markdown and verdicts.

A verdict line reads `target <name>: <measured> (goal <goal>) met` or `... missed`.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pyinstrument import Profiler

from benchmarks import batch, decision, inputs, synthetic, timing
from models.loader import KnowledgeBase, load, load_cases
from rules import assess
from rules.engine import Engine
from rules import planner
from rules.batch import plan_json
from rules.json_input import parse_json
from rules.planner import facts_of, parse_presentation


@dataclass
class Section:
    title: str
    lines: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def target(self, name: str, measured: str, goal: str, met: bool) -> None:
        if goal == "none (information)":  # a figure kept for comparison, with no goal to meet or miss
            self.targets.append(f"info {name}: {measured}")
            return
        self.targets.append(f"target {name}: {measured} (goal {goal}) {'met' if met else 'missed'}")

    def markdown(self) -> str:
        return "\n".join([f"## {self.title}", "", *self.lines, ""])


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i == 0 else "--:" for i in range(len(header))) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]


# The owner's absolute goals, "assess median <= 300 us" and a batch of ">= 3,000/s" in one process (333 us a
# line), as ratios of the floors measured on the kind of machine issue 17 names (2-core Intel Xeon,
# 2026-12-02, load 0.3 to 1.8): validate + serialise took 45 to 49 us a plan, so 300 us is 6.1x to 6.7x it;
# parse + validate + serialise took 54 us a line, so 333 us is 6.2x it. Both rounded down to 6.0x. The
# ratios are measured on new inputs with cold memos, stricter than the teaching cases with warm memos on
# which the 300 us goal was met. (Until 2026-12-02 both goals were 3.0x, a figure picked without this
# derivation; BENCHMARKS.md, "Goals against the floor".)
ASSESS_VS_FLOOR_GOAL = 6.0
BATCH_VS_FLOOR_GOAL = 6.0


def _profile(work: Callable[[], None], threshold: float = 0.04) -> list[str]:
    """A pyinstrument call tree of `work` (frames under `threshold` of the total left out)."""
    profiler = Profiler(interval=0.0002)
    profiler.start()
    work()
    profiler.stop()
    text = profiler.output_text(time="percent_of_total", short_mode=True,
                                processor_options={"filter_threshold": threshold})
    kept = [line.removeprefix(".  ") for line in text.splitlines() if "%" in line]
    return ["```text", *kept, "```", ""]


# ---------------------------------------------------------------- single assessment latency


def single_assessment(kb: KnowledgeBase, engine: Engine, rounds: int) -> Section:
    section = Section("Single assessment (every teaching case, warm process)")
    cases = [(case.id, case.input) for _, case in load_cases(kb)]
    context = (kb, engine)
    for _, raw in cases:
        assess(raw, context=context)
    per_case: dict[str, list[float]] = {cid: [] for cid, _ in cases}
    overhead = timing.timer_overhead_ns()
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for cid, raw in cases:
            start = clock()
            assess(raw, context=context)
            per_case[cid].append(clock() - start - overhead)
    every = [t for times in per_case.values() for t in times]
    med, p95 = timing.median(every) / 1000, timing.p95(every) / 1000
    section.add(
        f"`assess()` on each of the {len(cases)} teaching cases, {rounds} rounds ({len(every)} calls), "
        "validation, rules and the whole assessment with its basis records included; garbage collector on.",
        "",
        *_table(["", "median (µs)", "p95 (µs)"], [["all calls", f"{med:.0f}", f"{p95:.0f}"]]),
        "<details><summary>Per teaching case, slowest first</summary>",
        "",
        *_table(
            ["teaching case", "median (µs)", "p95 (µs)"],
            [
                [cid, f"{timing.median(t) / 1000:.0f}", f"{timing.p95(t) / 1000:.0f}"]
                for cid, t in sorted(per_case.items(), key=lambda kv: -timing.median(kv[1]))
            ],
        ),
        "</details>",
        "",
        "Where the time goes (pyinstrument, the same calls):",
        "",
        *_profile(lambda: [assess(raw, context=context) for _ in range(max(1, rounds // 4)) for _, raw in cases]),
    )
    vs_floor, floor_us, product_us, distinct = _assess_vs_floor(kb, engine, cases)
    section.add(
        "Against a floor measured in the same run: on "
        f"{distinct:,} distinct generated presentations (the teaching cases with about a third of their details "
        "drawn again), each timed once, interleaved: `assess()` and the plan's JSON "
        f"(median {product_us:.0f} µs) against validating the same input and serialising the same plan, computed "
        f"beforehand, alone (median {floor_us:.0f} µs): {vs_floor:.2f}x (median of per-input ratios). The "
        "plans computed beforehand are built with the planner's memos off, so the timed `assess()` calls meet "
        "them cold, as a batch of new presentations does. The per-case table above repeats the same 144+ inputs, "
        "where the memos of derived records (rules/planner.py) are warm after the first round: it shows the "
        "planner on known patterns, the ratio shows it on new ones.",
        "",
    )
    section.target("assess_median_latency", f"{med:.0f} us (p95 {p95:.0f} us) (information; was a goal of <= 300 us)",
                   "none (information)", True)
    section.target("assess_vs_floor", f"{vs_floor:.2f}x ({product_us:.0f} us vs {floor_us:.0f} us, distinct inputs)",
                   f"<= {ASSESS_VS_FLOOR_GOAL:.2f}x validate + serialise: 300 us on a 2-core Xeon",
                   vs_floor <= ASSESS_VS_FLOOR_GOAL)
    return section


def _assess_vs_floor(kb: KnowledgeBase, engine: Engine, cases: list[tuple[str, Any]], count: int = 3000) -> tuple[float, float, float, int]:
    """assess + JSON against the floor (validate the input, serialise its plan computed beforehand)."""
    raws = list(inputs.variations(kb, [raw for _, raw in cases], count, seed=77))
    context = (kb, engine)
    with planner.records_cached(False):
        plans = [assess(raw, context=context) for raw in raws]
    items = list(zip(raws, plans))
    planner.forget_records(kb)

    def product(item: tuple[Any, Any]) -> None:
        plan_json(assess(item[0], context=context))

    def floor(item: tuple[Any, Any]) -> None:
        parse_presentation(item[0], kb)
        plan_json(item[1])

    samples = timing.interleaved({"product": product, "floor": floor}, items, 1)
    return samples.ratio("product", "floor"), samples.median_us("floor"), samples.median_us("product"), len(items)


# ---------------------------------------------------------------- decision step three ways


def decision_three_ways(kb: KnowledgeBase, engine: Engine, count: int, rounds: int) -> Section:
    section = Section("Achalasia decision step: product engine vs CLIPS vs plain Python")
    findings = [decision.recorded(kb, f) for f in inputs.findings(kb, decision.PRESENTATION, count, seed=4)]
    peer = decision.Clips()
    try:
        checked = decision.check(kb, engine, peer, findings)
    except AssertionError as error:  # never time contenders that do not give the same answers
        section.add(
            "Not measured: the hand translations (`benchmarks/achalasia.clp` and `decision.floor`) no longer "
            "give the product's answers, so a timing would compare different decisions: the achalasia rules "
            "changed and must be translated again (tests/test_decision_translations.py fails too). First "
            "disagreement:",
            "",
            "```text", str(error)[:600], "```", "",
        )
        section.target("decision_vs_clips", "not measured (translations out of date)", "<= 1.00x", False)
        section.target("decision_vs_python_floor", "not measured (translations out of date)", "<= 10.0x", False)
        return section
    product = decision.product(kb, engine)
    samples = timing.interleaved({"product": product, "clips": peer.decide, "floor": decision.floor}, findings, rounds)
    vs_clips = samples.ratio("product", "clips")
    vs_floor = samples.ratio("product", "floor")
    names = {
        "product": "product: `Engine.fire` (durable-rules) + the fired rules' options, strengths merged as the planner merges them",
        "clips": "CLIPS 6.4 via clipspy, same rules and definitions by hand (`benchmarks/achalasia.clp`)",
        "floor": "plain Python `if` statements (floor; also lists the rules fired and the flags raised)",
    }
    section.add(
        f"Check first: on {checked['inputs']} distinct generated findings (every declared achalasia detail, prior "
        f"treatments and age varied; all {checked['rules']} rules fire somewhere) the three give the same "
        "options with the same strengths, and CLIPS and the floor fire the same rules and raise the same flags "
        "as the product (the recorded findings in; each contender works out the 5 named definitions itself, "
        "the product as `facts_of` does). "
        f"{len(checked['outcomes'])} distinct outcomes, for example: "
        + "; ".join(_options_text(o) for o in _examples(checked["outcomes"])) + ".",
        "",
        f"Timed: the findings dict in, the sorted (option, strength) pairs out; {rounds} rounds over the same inputs, the "
        "three contenders called one after another on each input in rotating order "
        f"({len(samples.times['product'])} calls each); clock overhead subtracted.",
        "",
        *_table(
            ["contender", "median (µs)", "p95 (µs)", "product / this (median of per-input ratios)"],
            [
                [names[n], f"{samples.median_us(n):.2f}", f"{samples.p95_us(n):.2f}",
                 "1.00" if n == "product" else f"{samples.ratio('product', n):.2f}"]
                for n in ("product", "clips", "floor")
            ],
        ),
        "Where the product's decision step goes (pyinstrument):",
        "",
        *_profile(lambda: [product(f) for _ in range(3) for f in findings], threshold=0.03),
    )
    section.target("decision_vs_clips", f"{vs_clips:.2f}x", "<= 1.00x", vs_clips <= 1.0)
    section.target("decision_vs_python_floor", f"{vs_floor:.1f}x", "<= 10.0x", vs_floor <= 10.0)
    return section


def _options_text(options: tuple[tuple[str, str], ...]) -> str:
    return "(" + ", ".join(f"{o} {s}" for o, s in options) + ")" if options else "(none)"


def _examples(outcomes: list[tuple[tuple[str, str], ...]], count: int = 4) -> list[tuple[tuple[str, str], ...]]:
    """The empty outcome, the largest, and a few between: the range of what the decision gives."""
    ordered = sorted(outcomes, key=len)
    if len(ordered) <= count:
        return ordered
    return [ordered[round(i * (len(ordered) - 1) / (count - 1))] for i in range(count)]


# ---------------------------------------------------------------- batch and scale


def _spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def parallel_capacity(n: int = 15_000_000) -> float:
    """Speed-up of two processes over one on pure Python arithmetic: what the machine gives right now."""
    start = time.perf_counter()
    _spin(n)
    _spin(n)
    serial = time.perf_counter() - start
    with multiprocessing.get_context("fork").Pool(2) as pool:
        start = time.perf_counter()
        pool.map(_spin, [n, n])
        parallel = time.perf_counter() - start
    return serial / parallel


def batch_scale(kb: KnowledgeBase, workdir: Path, sizes: tuple[int, ...], repeats: int) -> tuple[Section, dict[str, Any]]:
    section = Section("Batch: `myotomy-cds batch` over generated presentations")
    cases = [case.input for _, case in load_cases(kb)]
    largest = max(sizes)
    started = time.perf_counter()
    source = {largest: workdir / f"in-{largest}.jsonl"}
    inputs.write_jsonl(source[largest], inputs.variations(kb, cases, largest, seed=20261124))
    for size in sizes:
        if size != largest:
            source[size] = workdir / f"in-{size}.jsonl"
            with source[largest].open("rb") as full, source[size].open("wb") as part:
                for _, line in zip(range(size), full):
                    part.write(line)
    generated = time.perf_counter() - started
    startup = batch.startup_seconds(workdir, json.dumps(cases[0]))

    runs: dict[tuple[int, int], list[batch.Run]] = {}
    summary: dict[int, list[batch.Run]] = {1: [], 2: []}
    capacity: list[float] = []
    for size in sizes:
        for _ in range(repeats):
            capacity.append(parallel_capacity())
            for workers in (1, 2):
                runs.setdefault((size, workers), []).append(batch.run_batch(source[size], size, workers, workdir))
                if size == sizes[0]:
                    summary[workers].append(batch.run_batch(source[size], size, workers, workdir, record="summary"))

    rows = []
    for (size, workers), done in sorted(runs.items()):
        med = statistics.median(r.seconds for r in done)
        rows.append([
            f"{size:,}", str(workers), f"{med:.2f}", f"{size / med:,.0f}", f"{size / max(med - startup, 1e-9):,.0f}",
            f"{max(r.peak_rss_mb for r in done):.1f}",
            f"{max(r.peak_worker_rss_mb for r in done):.1f}" if workers > 1 else "",
            f"{max(r.peak_tree_rss_mb for r in done):.1f}",
            f"{done[0].output_mb:,.0f}", done[0].output_sha256[:12],
        ])
    identical = all(
        len({r.output_sha256 for w in (1, 2) for r in runs[(size, w)]}) == 1 for size in sizes
    )
    section.add(
        f"Inputs: the {len(cases)} teaching cases in turn, each with its age and about a third of its details drawn "
        f"again (validated; seeded), written to a temporary directory ({generated:.0f} s to generate). Each run is "
        "the installed `myotomy-cds batch IN OUT --workers N` as a separate process, timed from start to exit "
        f"(process start and knowledge-base load included: {startup:.2f} s for a one-line file). Runs alternate "
        f"1 and 2 workers, {repeats} of each per size; the table gives the median time and the highest memory.",
        "",
        *_table(
            ["presentations", "workers", "wall (s)", "assessments/s", "without start-up (/s)",
             "peak RSS, batch process (MB)", "peak RSS, largest worker (MB)", "peak RSS, all processes (MB)",
             "output (MB)", "output SHA-256"],
            rows,
        ),
        f"Output of 1 and 2 workers identical (SHA-256) at every size: {'yes' if identical else 'NO'}. "
        f"Parallel capacity of the machine during these runs (two processes of pure Python arithmetic vs one, "
        f"measured before each pair of runs): {', '.join(f'{c:.2f}x' for c in capacity)}; other work on the "
        "machine takes its share of the two cores. Start-up is serial (the knowledge base is loaded once, "
        "before the workers fork), so it limits the two-worker speed-up most on the smaller file; the column "
        "without start-up shows the steady rate. With 2 workers the batch process itself only reads the "
        "lines and deals them out in runs of 32; the workers parse, assess, serialise and write, each run "
        "in one write (one process alone writes record by record), so the two-worker figure can exceed "
        "the arithmetic capacity above.",
        "",
    )
    small = sizes[0]
    full_one = runs[(small, 1)]
    section.add(
        f"`--output summary` (one compact record per line: presentations, stopped, steps with option ids and "
        f"strengths, standing flags with severity, needs, knowledge stamp) against the full plan, {small:,} "
        "presentations, each run beside the full runs above (median of "
        f"{repeats}):",
        "",
        *_table(
            ["record", "workers", "wall (s)", "records/s", "bytes per record", "output (MB)"],
            [
                [kind, str(w), f"{statistics.median(r.seconds for r in done):.2f}",
                 f"{small / statistics.median(r.seconds for r in done):,.0f}",
                 f"{done[0].output_mb * 1024 * 1024 / small:,.0f}", f"{done[0].output_mb:,.1f}"]
                for kind, w, done in (("full", 1, full_one), ("summary", 1, summary[1]),
                                      ("full", 2, runs[(small, 2)]), ("summary", 2, summary[2]))
            ],
        ),
    )
    floor_ratio, floor_rate, product_rate = _batch_vs_floor(kb, source[small], min(small, 3000))
    section.add(
        f"In one process, the batch loop (`rules.batch.assess_record`: JSON in, plan JSON out) over the first "
        f"{min(small, 3000):,} lines, each line once, interleaved with a floor that only parses and validates the "
        f"line and serialises its plan computed beforehand (memos off): {product_rate:,.0f} records/s against "
        f"{floor_rate:,.0f}/s for the floor, {floor_ratio:.2f}x the floor's time per record (median of "
        "per-line ratios).",
        "",
    )
    one_worker = {size: size / statistics.median(r.seconds for r in runs[(size, 1)]) for size in sizes}
    speedups = {
        size: statistics.median(r.seconds for r in runs[(size, 1)]) / statistics.median(r.seconds for r in runs[(size, 2)])
        for size in sizes
    }
    rss = {size: max(r.peak_rss_mb for r in runs[(size, 1)]) for size in sizes}
    low = min(one_worker.values())
    section.target(
        "batch_throughput_one_process",
        ", ".join(f"{v:,.0f}/s at {s:,}" for s, v in one_worker.items()) + " (information; was a goal of >= 3,000/s)",
        "none (information)", True,
    )
    section.target(
        "batch_record_vs_floor", f"{floor_ratio:.2f}x (parse + validate + serialise alone: {floor_rate:,.0f}/s)",
        f"<= {BATCH_VS_FLOOR_GOAL:.2f}x: 3,000/s on a 2-core Xeon", floor_ratio <= BATCH_VS_FLOOR_GOAL,
    )
    summary_rate = small / statistics.median(r.seconds for r in summary[1])
    section.target(
        "batch_summary_output",
        f"{summary[1][0].output_mb * 1024 * 1024 / small:,.0f} bytes per record vs "
        f"{full_one[0].output_mb * 1024 * 1024 / small:,.0f} full; {summary_rate:,.0f}/s vs {small / statistics.median(r.seconds for r in full_one):,.0f}/s full",
        "none (information)", True,
    )
    spread = max(rss.values()) - min(rss.values())
    section.target(
        "batch_peak_rss_flat", f"{spread:.1f} MB apart ({', '.join(f'{v:.1f} MB at {s:,}' for s, v in rss.items())})",
        "within 20 MB", spread <= 20,
    )
    section.target("batch_peak_rss", f"{max(rss.values()):.1f} MB", "< 250 MB", max(rss.values()) < 250)
    goal = min(1.7, 0.85 * statistics.median(capacity))
    section.target(
        "batch_two_workers_speedup",
        ", ".join(f"{v:.2f}x at {s:,}" for s, v in speedups.items())
        + f" (machine's parallel capacity {statistics.median(capacity):.2f}x)",
        f">= {goal:.2f}x: 1.70x or 85 % of the capacity, the lower", min(speedups.values()) >= goal,
    )
    section.target("batch_workers_same_output", "identical" if identical else "different", "identical", identical)
    return section, {"source": source, "startup": startup}


def _batch_vs_floor(kb: KnowledgeBase, source: Path, lines: int) -> tuple[float, float, float]:
    """The batch loop per line against parse + validate + serialise a plan computed beforehand."""
    from rules.batch import assess_record

    with source.open("rb") as handle:
        data = [line for _, line in zip(range(lines), handle)]
    with planner.records_cached(False):
        plans = [assess(json.loads(line)) for line in data]
    items = list(enumerate(zip(data, plans), start=1))
    planner.forget_records(kb)

    def product(item: tuple[int, tuple[bytes, Any]]) -> None:
        assess_record(item[0], item[1][0])

    def floor(item: tuple[int, tuple[bytes, Any]]) -> None:
        number, (line, plan) = item
        parse_presentation(parse_json(line, f"line {number}"), kb)
        b"".join((b'{"line": %d, "plan": ' % number, plan_json(plan), b"}\n"))

    samples = timing.interleaved({"product": product, "floor": floor}, items, 1)
    return (samples.ratio("product", "floor"), 1e6 / samples.median_us("floor"), 1e6 / samples.median_us("product"))


def rule_base_growth(kb: KnowledgeBase, engine: Engine, workdir: Path, batch_source: Path, batch_lines: int,
                     count: int, rounds: int, repeats: int) -> Section:
    section = Section("Growth with the rule base: ten times as many rules")
    grown_dir, before, after = synthetic.grown_copy(workdir / "grown")
    started = time.perf_counter()
    big = load(grown_dir)
    big_engine = Engine(big)
    build = time.perf_counter() - started
    started = time.perf_counter()
    Engine(load())
    base_build = time.perf_counter() - started
    cases = [case.input for _, case in load_cases(kb)]
    sample = list(inputs.variations(kb, cases, count, seed=99))
    base, grown = (kb, engine), (big, big_engine)
    for raw in sample[:50]:
        assess(raw, context=base)
        assess(raw, context=grown)
    samples = timing.interleaved(
        {"base": lambda raw: assess(raw, context=base), "grown": lambda raw: assess(raw, context=grown)},
        sample, rounds,
    )
    in_process = samples.ratio("grown", "base")
    findings = []
    for raw in sample:
        presentation = parse_presentation(raw, kb)
        findings += [(c.presentation, facts_of(c, presentation, kb)) for c in presentation.conditions]
    fire = timing.interleaved(
        {"base": lambda item: engine.fire(*item), "grown": lambda item: big_engine.fire(*item)}, findings, rounds
    )
    fired = {
        "base": statistics.mean(len(engine.fire(*item)) for item in findings),
        "grown": statistics.mean(len(big_engine.fire(*item)) for item in findings),
    }
    env = {"MYOTOMY_CDS_DATA": str(grown_dir)}
    runs: dict[str, list[batch.Run]] = {"base": [], "grown": []}
    for _ in range(repeats):
        runs["base"].append(batch.run_batch(batch_source, batch_lines, 1, workdir))
        runs["grown"].append(batch.run_batch(batch_source, batch_lines, 1, workdir, env=env))
    line = json.dumps(cases[0])
    startup = {"base": batch.startup_seconds(workdir, line), "grown": batch.startup_seconds(workdir, line, env=env)}
    wall = {k: statistics.median(r.seconds for r in v) for k, v in runs.items()}
    section.add(
        f"A temporary copy of data/ with {after - before:,} synthetic rules added to its {before} "
        f"({after:,} in all; `benchmarks/synthetic.py`: each is a refinement of a real rule of its presentation, "
        "its conditions with thresholds moved plus one more declared detail required, with the real rule's effects, "
        "appended to the presentation folder's rules.yaml). "
        "In one process, `assess()` with each knowledge base in turn on the same "
        f"{len(sample):,} generated presentations, {rounds} rounds:",
        "",
        *_table(
            ["knowledge base", "rules", "assess() median (µs)", "assess() p95 (µs)", "Engine.fire median (µs)",
             "rules fired per condition (mean)", "load + engine build (s)"],
            [
                ["data/", str(before), f"{samples.median_us('base'):.0f}", f"{samples.p95_us('base'):.0f}",
                 f"{fire.median_us('base'):.1f}", f"{fired['base']:.2f}", f"{base_build:.2f}"],
                ["data/ + 10x synthetic", f"{after:,}", f"{samples.median_us('grown'):.0f}",
                 f"{samples.p95_us('grown'):.0f}", f"{fire.median_us('grown'):.1f}", f"{fired['grown']:.2f}",
                 f"{build:.2f}"],
                ["ratio (median of per-input ratios)", "", f"{in_process:.2f}", "", f"{fire.ratio('grown', 'base'):.2f}",
                 f"{fired['grown'] / fired['base']:.2f}", ""],
            ],
        ),
        f"Rulesets in durable-rules' C core: {engine.ruleset_count} for data/, {big_engine.ruleset_count} for the "
        "grown copy (a presentation whose rules add more than `SHARD_PATHS` alternatives is split, and its rules "
        "grouped by the value of one decisive finding so that a fact meets only the rulesets that can match it, "
        "see rules/engine.py). Each engine asserts under one sid and retracts the fact once read, so no state "
        "is built and deleted per fact. `Engine.fire` grows with the rules that match (the grown copy's synthetic "
        "rules refine real ones and fire with them) and with the size of each ruleset's network. `assess()` grows "
        "with the fired rules' basis records. \"Why not\" and the needs prompts read which tests fail from bits "
        "(`rules/masks.py`: one bit per distinct test of a presentation, the bits of one finding's tests kept per "
        "value), so counting each naming rule's unmet conditions is one AND and a popcount, and a need is kept by "
        "the failing bits of the tests it reads.",
        "",
        f"The batch command on the {batch_lines:,}-presentation file, one worker, `MYOTOMY_CDS_DATA` set to the "
        f"copy, alternating with the plain knowledge base ({repeats} runs each, median):",
        "",
        *_table(
            ["knowledge base", "wall (s)", "assessments/s", "start-up, one line (s)", "peak RSS (MB)"],
            [
                [k, f"{wall[k]:.2f}", f"{batch_lines / wall[k]:,.0f}", f"{startup[k]:.2f}",
                 f"{max(r.peak_rss_mb for r in runs[k]):.1f}"]
                for k in ("base", "grown")
            ],
        ),
    )
    batch_ratio = wall["grown"] / wall["base"]
    section.target(
        "rule_base_10x_time_per_assessment",
        f"{in_process:.2f}x in process ({fired['grown'] / fired['base']:.2f}x the rules fired, Engine.fire "
        f"{fire.ratio('grown', 'base'):.2f}x), {batch_ratio:.2f}x batch wall time",
        "< 2.00x", in_process < 2.0,
    )
    return section


def batch_profile(source: Path, lines: int) -> Section:
    """What one batch process spends its time on (in this process, same code path as the command)."""
    from rules import batch as command  # the batch loop of `myotomy-cds batch`

    section = Section("Profile of the batch loop (one process)")
    with source.open("rb") as handle:
        data = [line for _, line in zip(range(lines), handle)]
    for _ in command.records(data[:100]):
        pass
    section.add(
        f"`rules.batch.records` over the first {len(data):,} generated presentations, output discarded "
        "(pyinstrument):",
        "",
        *_profile(lambda: [None for _ in command.records(data)], threshold=0.04),
    )
    gc.collect()
    return section
