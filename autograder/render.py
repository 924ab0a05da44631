"""Renderers for a Report: a readable checklist for the terminal, and JSON for tools."""

from __future__ import annotations

import json

from autograder.model import Report
from autograder.text import plain

MARK = {"pass": "✓", "fail": "✗", "error": "!", "skip": "-"}


def as_json(report: Report) -> str:
    return json.dumps(report.to_dict(), ensure_ascii=False)


def as_text(report: Report, color: bool = False) -> str:
    def paint(text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if color else text

    lines = [paint(f"{report.exercise} — {plain(report.submission, 300)}", "1")]
    for c in report.checks:
        points = f"{c.points:g}/{c.max_points:g}" if c.max_points else "advice"
        tint = {"pass": "32", "fail": "31", "error": "35", "skip": "2"}[c.status]
        if c.max_points == 0 and c.status == "fail":
            tint = "33"
        if c.status == "skip":
            lines.append(paint(f"  {MARK[c.status]} {c.title}  [{points}]  {plain(c.message)}", tint))
            continue
        lines.append(paint(f"  {MARK[c.status]} {c.title}  [{points}]", tint))
        if c.message:  # a passing check has one only when its spec declares it worth showing
            lines += [f"      {line}" for line in plain(c.message).splitlines()]
        if c.hint and c.status in ("fail", "error"):
            lines.append(f"      hint: {c.hint}")
    for task_id, log in report.task_logs.items():
        lines.append(paint(f"  log of the failed task `{plain(task_id, 250)}` (last lines):", "2"))
        lines += [f"      | {line}" for line in plain(log, 20_000).splitlines()]
    lines += [f"  note: {plain(note)}" for note in report.notes]
    verdict = "PASS" if report.status == "pass" else "NOT YET"
    lines.append(paint(f"  {verdict}: {report.score:g}/{report.max_score:g} points "
                       f"({report.duration_s:.1f} s)", "1;32" if report.status == "pass" else "1;31"))
    return "\n".join(lines)
