"""The plan as a picture: standing flags -> steps in order -> the options of each step.

Only a second view of the steps that "The plan" box lists in text; it says nothing the box does not.
Labels are words from the plan, never ids. The same content is always given as a list beside the
picture (its text alternative, for screen readers and print), and on a narrow screen, where the
picture would shrink past reading, only the list shows (the answer's style sheet, below 700 px). The picture
is drawn by Graphviz on the server when its folded section is first opened (webapp/files.py), not with
every answer.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import textwrap

from models.plan import Plan
from webapp.results import folded
from webapp.text import h, h_list
from webapp.words import SEVERITY_WORDS, strength

PICTURE_CLASS = "mx-graph"  # the style sheet (webapp/results.py) hides it below 700 px

_FLAG_COLOUR = {"stop": "#f8c9c9", "do_first": "#fde7c8", "caution": "#fff6c2"}


def _text(text: str, width: int = 34, lines: int = 4) -> str:
    wrapped = [line for part in text.split("\n") for line in (textwrap.wrap(part, width) or [""])]
    if len(wrapped) > lines:
        wrapped = [*wrapped[: lines - 1], wrapped[lines - 1][: width - 1] + "…"]
    return "\n".join(wrapped).replace("\\", "\\\\").replace('"', '\\"')


def decision_graph(plan: Plan) -> str:
    """Graphviz DOT of the plan; one chain of steps per presentation."""
    lines = ["digraph G {", "rankdir=LR;", 'node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];']
    names = {(o.presentation, o.id): o for o in plan.options}
    previous: dict[str, str] = {}
    first_of: dict[tuple[str, str], str] = {}
    for step in plan.steps:
        node = f"step{step.order}"
        label = f"{step.order}. {step.title}"
        if step.workup:
            label += "\n" + "\n".join(f"• {t.meaning}" for t in step.workup[:3]) + ("\n…" if len(step.workup) > 3 else "")
        colour = "#f8c9c9" if step.kind == "urgent" else "#e3e8f8"
        lines.append(f'{node} [label="{_text(label, 40, 6)}", fillcolor="{colour}"];')
        if step.presentation in previous:
            lines.append(f"{previous[step.presentation]} -> {node} [style=bold];")
        previous[step.presentation] = node
        first_of.setdefault((step.presentation, step.kind), node)
        for oid in step.options:
            option = names.get((step.presentation, oid))
            if option is None:
                continue
            onode = f"opt{step.order}_{len(lines)}"
            colour = "#d7f0d7" if option.strength in ("preferred", "equivalent") else "#f2f2f2"
            lines.append(f'{onode} [label="{_text(option.name)}\n{_text(strength(option.strength))}", fillcolor="{colour}"];')
            lines.append(f"{node} -> {onode};")
    for index, flag in enumerate(plan.standing_flags):
        if flag.severity == "caution":
            continue  # a caution concerns an option's rank, not a step: the card says so
        target = first_of.get((flag.presentation, "urgent" if flag.severity == "stop" else "first"))
        if target is None:
            continue
        fnode = f"flag{index}"
        lines.append(f'{fnode} [label="{_text(SEVERITY_WORDS[flag.severity] + ": " + flag.meaning)}", '
                     f'fillcolor="{_FLAG_COLOUR[flag.severity]}", shape=octagon];')
        lines.append(f"{fnode} -> {target};")
    lines.append("}")
    return "\n".join(lines)


@functools.lru_cache(maxsize=256)
def svg(dot: str) -> str | None:
    """Render DOT with Graphviz; None when `dot` is missing or fails. Served by webapp/files.py."""
    if shutil.which("dot") is None:
        return None
    try:
        done = subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):  # the route answers "not installed"-style, never a server error
        return None
    return done.stdout.decode() if done.returncode == 0 else None


def as_html(plan: Plan) -> str:
    """The graph in words: each step, the flags that lead into it, its checks and its options."""
    names = {(o.presentation, o.id): o for o in plan.options}
    into: dict[tuple[str, str], list[str]] = {}
    for flag in plan.standing_flags:
        if flag.severity != "caution":
            into.setdefault((flag.presentation, "urgent" if flag.severity == "stop" else "first"), []).append(
                f"{SEVERITY_WORDS[flag.severity]}: {flag.meaning}")
    steps, seen = [], set()
    for step in plan.steps:
        items = []
        if (step.presentation, step.kind) not in seen:
            seen.add((step.presentation, step.kind))
            items += [f"because of: {h(f)}" for f in into.get((step.presentation, step.kind), [])]
        items += [f"check: {h(t.meaning)}" for t in step.workup]
        for oid in step.options:
            option = names.get((step.presentation, oid))
            if option is not None:
                items.append(f"{h(option.name)} — {strength(option.strength)}")
        steps.append(f"<li><strong>{h(step.title)}</strong>{h_list(items)}</li>")
    return "<ol>" + "".join(steps) + "</ol>"


def section(plan: Plan, picture_url: str, expanded: bool = False) -> str:
    """The folded section: the picture (fetched only when opened; hidden on a narrow screen, STYLE) and,
    always, its text alternative."""
    if not plan.steps:
        return ""
    body = (f'<img class="{PICTURE_CLASS}" loading="lazy" src="{h(picture_url)}" '
            'alt="The steps of the plan, left to right, with the options of each; the same in words below.">'
            '<p class="mx-caption">The steps of the plan, left to right, with the options of each; the same in '
            "words below.</p><p><strong>The graph in words:</strong></p>" + as_html(plan))
    return folded("The plan as a graph (the steps above, drawn)", body, expanded, "graph")
