"""The screen's summary: counts, what was not read and why, plots; as Markdown and as HTML.

Words, not ids: presentations, flags and details are shown by name. Patient ids appear only in the
list of patients not assessed (the user's own export, in the output the user named); lines that
could not be read are shown by file, line and reason, never by content.
"""

from __future__ import annotations

import html
import textwrap
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fsspec

from models.plan import DISCLAIMER

if TYPE_CHECKING:
    from screening.run import Result

SEVERITY_WORDS = {"stop": "stop", "do_first": "do first", "caution": "caution"}
SEVERITY_COLOURS = {"stop": "#b2182b", "do_first": "#ef8a62", "caution": "#fddbc7"}
LISTED = 50  # problems and not-assessed patients listed in the summary; the rest are counted


@dataclass(frozen=True)
class Labels:
    """What the summary takes from the knowledge base: its stamp and the names of presentations and
    flags. Small and picklable: a worker, which has the knowledge base loaded, sends it to the client,
    which then need not load one (and shows the stamp of the knowledge the workers applied)."""

    version: str
    content_hash: str
    presentations: dict[str, str]  # id -> name
    flags: dict[str, str]  # id -> name, as _flag_name gives it


def _flag_name(kb: Any, fid: str) -> str:
    flag = kb.flags.get(fid) if hasattr(kb, "flags") else None
    name = getattr(flag, "name", None) or getattr(flag, "meaning", None)
    return name if isinstance(name, str) and len(name) < 80 else fid.replace("_", " ")


def labels_of(kb: Any) -> Labels:
    return Labels(kb.version, kb.content_hash, {pid: p.name for pid, p in kb.presentations.items()},
                  {fid: _flag_name(kb, fid) for fid in getattr(kb, "flags", {})})


def _labels(result: "Result") -> Labels:
    """The workers' labels, or (with the multiprocessing scheduler, whose workers do not stay) this process's."""
    if result.labels is not None:
        return result.labels
    from models.loader import load

    return labels_of(load())


def _sections(result: "Result", kb: Labels) -> list[tuple[str, list[str], list[list[str]], str]]:
    """(title, header, rows, note) for each table of the summary."""
    t, e = result.tally, result.export
    names = kb.presentations
    out = []
    out.append(("Counts", ["What", "Number"], [
        ["Patients in the export", f"{t.patients:,}"],
        ["Assessed (one or more presentations)", f"{t.assessed_patients:,}"],
        ["Table rows (patient and presentation)", f"{t.rows:,}"],
        ["Not assessed (listed below with the reason)", f"{t.not_assessed_patients:,}"],
        ["Deceased (not assessed, as the CDS Hooks service does)", f"{t.deceased:,}"],
        ["No condition mapped to a presentation", f"{t.nothing_mapped:,}"],
        ["Conditions whose codes map to no presentation", f"{t.conditions_not_mapped:,}"],
        ["Conditions resolved, inactive, refuted or entered in error (left out)", f"{t.conditions_not_current:,}"],
        ["Conditions skipped (a modifierExtension, or malformed)", f"{t.entries_skipped:,}"],
        *[[f"{rtype} resources read", f"{n:,}"] for rtype, n in sorted(t.resources.items())],
        ["Lines or files not read (below)", f"{len(result.problems):,}"],
    ], f"Ages on {e.today.isoformat()}, from {e.today_from}. Run on {result.scheduler}. "
       "Observations, ServiceRequests and Procedures are read and counted but not yet mapped to details."))
    rows = []
    for pid, n in sorted(t.assessed.items(), key=lambda kv: -kv[1]):
        flags = Counter({sev: 0 for sev in SEVERITY_WORDS})
        for (p, sev, _fid), k in t.flags.items():
            if p == pid:
                flags[sev] += k
        rows.append([names.get(pid, pid), f"{n:,}", f"{t.stopped[pid]:,}",
                     f"{flags['do_first']:,}", f"{flags['caution']:,}"])
    out.append(("By presentation", ["Presentation", "Assessed", "Stop flag standing", "Do-first flags", "Cautions"],
                rows, "A patient with two presentations counts once under each."))
    top = sorted(t.top.items(), key=lambda kv: -kv[1])[:20]
    out.append(("Top options", ["Presentation", "Option", "Strength", "Rows"],
                [[names.get(p, p), o, s, f"{n:,}"] for (p, o, s), n in top], "At the top rank of the treatment step."))
    flags = sorted(t.flags.items(), key=lambda kv: -kv[1])[:20]
    out.append(("Standing flags", ["Presentation", "Severity", "Flag", "Rows"],
                [[names.get(p, p), SEVERITY_WORDS[s], kb.flags.get(f) or f.replace("_", " "), f"{n:,}"] for (p, s, f), n in flags], ""))
    needs = sorted(t.needs.items(), key=lambda kv: -kv[1])[:20]
    out.append(("Details missing that would change the answer", ["Presentation", "Detail", "Rows"],
                [[names.get(p, p), label, f"{n:,}"] for (p, label), n in needs],
                "The record does not hold these details (no record code maps to them yet); each would change an "
                "option's place."))
    reasons = [[kind, f"{n:,}"] for kind, n in t.not_assessed_reasons.most_common()]
    listed = [[pid, names.get(p, p) if p else "", reason] for pid, p, reason in t.not_assessed[:LISTED]]
    out.append(("Not assessed, by reason", ["Reason", "Rows"], reasons, ""))
    out.append(("Not assessed", ["Patient id", "Presentation", "Reason"], listed,
                f"The first {LISTED} by patient id of {sum(t.not_assessed_reasons.values()):,}; every one is in the table "
                "(status not_assessed)." if sum(t.not_assessed_reasons.values()) > LISTED else "Every one is in the table too (status not_assessed)."))
    by_reason = Counter(p.reason.split(" (")[0] for p in result.problems)
    out.append(("Lines and files not read, by reason", ["Reason", "Count"],
                [[r, f"{n:,}"] for r, n in by_reason.most_common()], ""))
    out.append(("Lines and files not read", ["File", "Line", "Reason"],
                [[p.file, str(p.line) if p.line else "(whole file)", p.reason] for p in result.problems[:LISTED]],
                (f"The first {LISTED} of {len(result.problems):,}." if len(result.problems) > LISTED else "")
                + (" Files of other types, not read: " + ", ".join(e.not_read) if e.not_read else "")))
    return out


def _plots(result: "Result", kb: Labels, folder: str) -> list[tuple[str, str]]:
    """(file name, caption) of the PNGs written; none without matplotlib. A Figure drawn on its own (no
    pyplot: no global figure state, less to import); long labels wrapped, so that the layout fits them."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return []
    t = result.tally
    names = {pid: name.split(" (")[0] for pid, name in kb.presentations.items()}
    written = []
    pids = [p for p, _ in sorted(t.assessed.items(), key=lambda kv: kv[1])]
    if pids:
        labels = [_wrap(names[p]) for p in pids]
        fig = Figure(figsize=(8, _height(labels)))
        ax = fig.subplots()
        left = [0] * len(pids)
        for sev in SEVERITY_WORDS:
            counts = [sum(n for (p, s, _), n in t.flags.items() if p == pid and s == sev) for pid in pids]
            ax.barh(labels, counts, left=left, color=SEVERITY_COLOURS[sev], label=SEVERITY_WORDS[sev])
            left = [a + b for a, b in zip(left, counts)]
        ax.set_xlabel("standing flags (rows)")
        ax.legend(loc="lower right")
        fig.suptitle("Standing flags by presentation")
        _fit(fig, ax)
        _save(fig, folder, "flags_by_presentation.png")
        written.append(("flags_by_presentation.png", "Standing flags by presentation and severity"))
    needs = sorted(t.needs.items(), key=lambda kv: kv[1])[-15:]
    if needs:
        labels = [_wrap(f"{names[p]}: {label}") for (p, label), _ in needs]
        fig = Figure(figsize=(8, _height(labels)))
        ax = fig.subplots()
        ax.barh(labels, [n for _, n in needs], color="#4575b4")
        ax.set_xlabel("rows where the detail would change the answer")
        fig.suptitle("Details missing that would change the answer")
        _fit(fig, ax)
        _save(fig, folder, "missing_details.png")
        written.append(("missing_details.png", "The details most often missing that would change the answer"))
    return written


def _import_plotting() -> None:
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError:
        pass


def import_plotting_soon() -> None:
    """Import matplotlib (about 0.3 s of CPU) in a background thread while the cluster starts, so that the
    summary draws at once instead of importing it after the screen's last task. Not while the workers
    assess, as before: the local workers then hold both cores, and the import took its CPU from them."""
    threading.Thread(target=_import_plotting, name="import matplotlib", daemon=True).start()


PLOT_LABEL = 40  # characters a plot label line holds: longer labels are wrapped, not cut


def _wrap(text: str) -> str:
    return textwrap.fill(text, PLOT_LABEL, break_long_words=False)


def _height(labels: list[str]) -> float:
    """Inches: a bar per label, taller for labels wrapped on several lines."""
    return 0.35 * len(labels) + 0.18 * sum(label.count("\n") for label in labels) + 1.2


# Inches around the axes besides the bar labels: label to its tick (tick and pad, 7 points) and figure edge;
# the right end of the last x tick label; the x tick labels and the axis title; the figure's title.
LABEL_PAD, RIGHT, BOTTOM, TOP = 0.25, 0.2, 0.6, 0.5


def _fit(fig: Any, ax: Any) -> None:
    """Margins from the widest bar label, measured as drawn, the rest fixed: the plots are always a title, bars
    with a label each and an x axis. tight_layout laid out every text of the figure in a pass of its own
    before the drawing: the two plots of 100,000 patients took 0.29 CPU s with it, 0.22 without (BENCHMARKS.md)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    label = max((text.get_window_extent(renderer).width for text in ax.get_yticklabels()), default=0) / fig.dpi
    width, height = fig.get_size_inches()
    fig.subplots_adjust(left=(label + LABEL_PAD) / width, right=1 - RIGHT / width,
                        bottom=BOTTOM / height, top=1 - TOP / height)


def _save(fig: Any, folder: str, name: str) -> None:
    with fsspec.open(f"{folder}/{name}", "wb") as handle:
        fig.savefig(handle, format="png", dpi=100)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(result: "Result", sections: list, plots: list[tuple[str, str]], kb: Labels) -> str:
    lines = ["# Cohort screen", "", f"*{DISCLAIMER}*", ""]
    lines += [f"Knowledge base {kb.version} (SHA-256 {kb.content_hash[:12]}).", ""]
    for title, header, rows, note in sections:
        lines += [f"## {title}", ""]
        if rows:
            lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
        else:
            lines.append("None.")
        if note:
            lines += ["", note]
        lines.append("")
    for name, caption in plots:
        lines += [f"![{caption}]({name})", ""]
    return "\n".join(lines)


def to_html(result: "Result", sections: list, plots: list[tuple[str, str]], kb: Labels) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Cohort screen</title><style>",
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;"
        "vertical-align:top}th{background:#f3f3f3}td:last-child{text-align:left}.note{color:#555}"
        ".disclaimer{background:#fff6e0;padding:.5em 1em;border-left:4px solid #e0a000}"
        ".plots{display:flex;flex-wrap:wrap;gap:1em}.plots figure{margin:0}",
        "</style></head><body><h1>Cohort screen</h1>",
        f"<p class='disclaimer'>{e(DISCLAIMER)}</p>",
        f"<p class='note'>Knowledge base {e(kb.version)} (SHA-256 {e(kb.content_hash[:12])}).</p>",
    ]
    first, *rest = sections
    parts.append(_html_section(first))
    if plots:
        parts.append("<div class='plots'>" + "".join(
            f"<figure><img src='{e(name)}' alt='{e(caption)}' width='520'><figcaption>{e(caption)}</figcaption></figure>"
            for name, caption in plots) + "</div>")
    parts += [_html_section(s) for s in rest]
    parts.append("</body></html>")
    return "\n".join(parts)


def _html_section(section: tuple) -> str:
    title, header, rows, note = section
    e = html.escape
    body = (
        "<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"
        + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows) + "</table>"
        if rows else "<p>None.</p>"
    )
    return f"<h2>{e(title)}</h2>{body}" + (f"<p class='note'>{e(note)}</p>" if note else "")


def write_summary(result: "Result") -> list[str]:
    """OUT/summary.md, OUT/summary.html and the PNGs they show; the paths written."""
    kb = _labels(result)
    sections = _sections(result, kb)
    plots = _plots(result, kb, result.out)
    written = []
    for name, text in (("summary.md", to_markdown(result, sections, plots, kb)), ("summary.html", to_html(result, sections, plots, kb))):
        with fsspec.open(f"{result.out}/{name}", "w", encoding="utf-8") as handle:
            handle.write(text)
        written.append(str(Path(result.out) / name))
    return written
