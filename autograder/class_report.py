"""The instructor's view of a class, from the reports grade-class stored.

    python -m autograder class-report OUT

``load`` reads ``OUT/reports/<student>/<exercise>.json``, ``summarize`` counts what they say,
``render_html`` and ``render_table`` show the counts, ``chart_svg`` draws them with matplotlib.
The page is one file: charts are inline SVG, styles inline, nothing is fetched from a network.
"""

from __future__ import annotations

import html
import io
import json
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from autograder.classroom import REFUSED_ID, readable
from autograder.exercises import all_exercises
from autograder.text import plain

REPORT_NAME = "class-report.html"
CRASHED_ID = "grader.crashed"
TIMED_OUT = "did not finish in time"  # what the import and run checks say when the clock ran out
EXAMPLES = 3
TOP_CAUSES = 5


@dataclass(frozen=True)
class Entry:
    """One stored report: who, what, how it went, and where it is (relative to OUT)."""

    student: str
    exercise: str
    status: str
    score: float
    max_score: float
    link: str
    checks: tuple[dict, ...]


@dataclass(frozen=True)
class CheckRate:
    id: str
    title: str
    passed: int
    total: int


@dataclass(frozen=True)
class Cause:
    """A check that was the first to fail, how often, and a few of the students it stopped."""

    id: str
    title: str
    count: int
    examples: tuple[Entry, ...]


@dataclass(frozen=True)
class Trouble:
    entry: Entry
    kind: str  # "timed out", "refused" or "crashed"
    message: str


@dataclass
class ExerciseSummary:
    exercise: str
    title: str
    entries: list[Entry]
    checks: list[CheckRate] = field(default_factory=list)
    causes: list[Cause] = field(default_factory=list)
    troubles: list[Trouble] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(e.status == "pass" for e in self.entries)

    @property
    def max_score(self) -> float:
        return max((e.max_score for e in self.entries), default=0.0)

    @property
    def mean_score(self) -> float:
        return sum(e.score for e in self.entries) / len(self.entries) if self.entries else 0.0


def load(out: Path) -> list[Entry]:
    """Every report under ``out/reports``, in a stable order; unreadable files are left out."""
    entries = []
    for path in sorted((out / "reports").glob("*/*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
            entries.append(Entry(
                student=str(data.get("student") or readable(path.parent.name)),
                exercise=str(data.get("exercise") or path.stem), status=str(data["status"]),
                score=float(data["score"]), max_score=float(data["max_score"]),
                link=f"reports/{quote(os.fsencode(path.parent.name))}/{quote(os.fsencode(path.name))}",
                checks=tuple(c for c in data.get("checks", []) if isinstance(c, dict))))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return entries


def first_failure(entry: Entry) -> dict | None:
    """The first check with points (or the refusal, or the crash) that failed or raised.

    Advice checks carry no points: a submission that passed never "went wrong" on one.
    """
    return next((c for c in entry.checks if c.get("status") in ("fail", "error")
                 and (_number(c.get("max_points")) > 0 or c.get("id") in (REFUSED_ID, CRASHED_ID))), None)


def _number(value: object) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def trouble(entry: Entry) -> Trouble | None:
    """Why a submission could not be graded as usual, if it could not."""
    for c in entry.checks:
        if c.get("id") == REFUSED_ID:
            return Trouble(entry, "refused", str(c.get("message", "")))
        if c.get("id") == CRASHED_ID:
            return Trouble(entry, "crashed", str(c.get("message", "")))
    for c in entry.checks:
        if c.get("status") in ("fail", "error") and TIMED_OUT in str(c.get("message", "")):
            return Trouble(entry, "timed out", str(c.get("message", "")))
    return None


def summarize(entries: Iterable[Entry]) -> list[ExerciseSummary]:
    """Per exercise, in id order: pass rate of each check, first failing causes, troubles."""
    titles = {ex.id: ex.title for ex in all_exercises().values()}
    by_exercise: dict[str, list[Entry]] = {}
    for e in entries:
        by_exercise.setdefault(e.exercise, []).append(e)
    summaries = []
    for exercise, mine in sorted(by_exercise.items()):
        summary = ExerciseSummary(exercise, titles.get(exercise, exercise), mine)
        seen: dict[str, list] = {}  # check id -> [title, passed, total], in the order checks run
        for e in mine:
            for c in e.checks:
                if c.get("id") in (REFUSED_ID, CRASHED_ID):
                    continue
                rate = seen.setdefault(str(c.get("id")), [str(c.get("title", "")), 0, 0])
                rate[1] += c.get("status") == "pass"
                rate[2] += 1
        summary.checks = [CheckRate(i, t, p, n) for i, (t, p, n) in seen.items()]
        firsts = [(f, e) for e in mine if (f := first_failure(e)) is not None]
        counts = Counter(str(f.get("id")) for f, _ in firsts)
        for check_id, count in counts.most_common(TOP_CAUSES):
            stopped = [(f, e) for f, e in firsts if str(f.get("id")) == check_id]
            summary.causes.append(Cause(check_id, str(stopped[0][0].get("title", "")), count,
                                        tuple(e for _, e in stopped[:EXAMPLES])))
        summary.troubles = [t for e in mine if (t := trouble(e)) is not None]
        summaries.append(summary)
    return summaries


_SVG_START = re.compile(r"^.*?(?=<svg)", re.S)
_NAMESPACES = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)


def chart_svg(summary: ExerciseSummary) -> str:
    """The score distribution and the pass rate of each check, as one inline SVG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    rows = max(len(summary.checks), 1)
    height = max(2.6, 0.3 * rows + 1.0)
    fig = Figure(figsize=(10, height))
    # Fixed margins (inches) rather than a layout engine: half the drawing time, check ids fit.
    bottom, plot = 0.55 / height, 1 - 0.95 / height
    dist = fig.add_axes((0.06, bottom, 0.3, plot))
    rates = fig.add_axes((0.62, bottom, 0.36, plot))
    top = summary.max_score or 1.0
    # One bar per whole point, centred on it; twenty bars at most for exercises worth more.
    edges = [n - 0.5 for n in range(int(top) + 2)] if top <= 20 else 20
    dist.hist([e.score for e in summary.entries], bins=edges, color="#4c72b0", edgecolor="white")
    dist.xaxis.get_major_locator().set_params(integer=True)
    dist.set_title("Scores")
    dist.set_xlabel(f"points (of {top:g})")
    dist.set_ylabel("submissions")
    dist.yaxis.get_major_locator().set_params(integer=True)
    names = [c.id for c in summary.checks][::-1]
    shares = [100 * c.passed / c.total if c.total else 0 for c in summary.checks][::-1]
    rates.barh(names, shares, color=["#55a868" if s >= 80 else "#dd8452" for s in shares])
    rates.set_xlim(0, 100)
    rates.set_title("Passed each check (%)")
    rates.tick_params(axis="y", labelsize=8)
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text: small, searchable
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None,
                                                    "Type": None})
    # Inline SVG in HTML needs no XML prolog, DTD or namespace declarations: none point elsewhere.
    svg = _METADATA.sub("", _SVG_START.sub("", buffer.getvalue(), count=1))
    return _NAMESPACES.sub("", svg)


def _e(text: object, limit: int = 300) -> str:
    return html.escape(plain(str(text), limit))


def _student_link(entry: Entry) -> str:
    return f'<a href="{html.escape(entry.link)}">{_e(entry.student, 120)}</a>'


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem;
       color: #222; }
h2 { border-top: 1px solid #ccc; padding-top: 1rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #ddd; padding: .25rem .6rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.n { text-align: right; }
.chart svg { max-width: 100%; height: auto; }
details { margin: .5rem 0; }
"""


def render_html(summaries: list[ExerciseSummary], charts: dict[str, str]) -> str:
    """The class report page; ``charts`` maps an exercise id to its inline SVG."""
    total = sum(len(s.entries) for s in summaries)
    passed = sum(s.passed for s in summaries)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>Class report</title>", f"<style>{STYLE}</style></head><body>",
             "<h1>Class report</h1>",
             f"<p>{passed} of {total} submissions passed, over {len(summaries)} exercise(s).</p>",
             "<table><tr><th>exercise</th><th>submissions</th><th>passed</th><th>mean score</th>"
             "<th>timed out, refused or crashed</th></tr>"]
    for s in summaries:
        parts.append(f'<tr><td><a href="#{_e(s.exercise)}">{_e(s.exercise)}</a></td>'
                     f'<td class="n">{len(s.entries)}</td><td class="n">{s.passed}</td>'
                     f'<td class="n">{s.mean_score:.1f} / {s.max_score:g}</td>'
                     f'<td class="n">{len(s.troubles)}</td></tr>')
    parts.append("</table>")
    for s in summaries:
        parts += [f'<h2 id="{_e(s.exercise)}">{_e(s.exercise)} · {_e(s.title)}</h2>',
                  f"<p>{s.passed} of {len(s.entries)} passed; mean score {s.mean_score:.1f} of "
                  f"{s.max_score:g}.</p>", f'<div class="chart">{charts.get(s.exercise, "")}</div>',
                  "<h3>Where submissions first went wrong</h3>"]
        if s.causes:
            parts.append("<table><tr><th>check</th><th>submissions</th><th>for example</th></tr>")
            for c in s.causes:
                examples = ", ".join(_student_link(e) for e in c.examples)
                parts.append(f"<tr><td><code>{_e(c.id)}</code> {_e(c.title)}</td>"
                             f'<td class="n">{c.count}</td><td>{examples}</td></tr>')
            parts.append("</table>")
        else:
            parts.append("<p>Every submission passed every check.</p>")
        if s.troubles:
            parts += ["<h3>Timed out, refused or crashed</h3>",
                      "<table><tr><th>student</th><th>what happened</th><th>message</th></tr>"]
            for t in s.troubles:
                parts.append(f"<tr><td>{_student_link(t.entry)}</td><td>{t.kind}</td>"
                             f"<td>{_e(t.message)}</td></tr>")
            parts.append("</table>")
        parts += [f"<details><summary>Every student's report ({len(s.entries)})</summary><p>",
                  ", ".join(f"{_student_link(e)} ({e.status}, {e.score:g})" for e in s.entries),
                  "</p></details>"]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render_table(summaries: list[ExerciseSummary]) -> str:
    """The same summary for a terminal: one line per exercise, then who could not be graded."""
    lines = [f"{'exercise':26} {'subs':>5} {'passed':>6} {'mean':>11}  {'most common first failure'}"]
    for s in summaries:
        top = f"{s.causes[0].id} ({s.causes[0].count})" if s.causes else "-"
        mean = f"{s.mean_score:.1f}/{s.max_score:g}"
        lines.append(f"{s.exercise:26} {len(s.entries):>5} {s.passed:>6} {mean:>11}  {top}")
    troubles = [t for s in summaries for t in s.troubles]
    if troubles:
        lines += ["", "Timed out, refused or crashed:"]
        lines += [f"  {plain(t.entry.student, 80).replace(chr(10), ' ')} / {t.entry.exercise}: "
                  f"{t.kind}" for t in troubles]
    return "\n".join(lines)


def write_class_report(out: Path) -> tuple[Path, list[ExerciseSummary]]:
    """Build ``out/class-report.html`` from the stored reports; return its path and the summary."""
    summaries = summarize(load(out))
    page = render_html(summaries, {s.exercise: chart_svg(s) for s in summaries})
    path = out / REPORT_NAME
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path, summaries
