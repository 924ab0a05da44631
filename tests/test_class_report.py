"""The instructor's view of a class: spreadsheet-safe tables and the class report, from stored reports.

Fast: reports are built as data and stored as grade-class stores them; nothing runs Airflow.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from autograder.classroom import Submission, store_report, write_tables
from autograder.exercises import all_exercises
from autograder.model import CheckResult, Report

EX01 = all_exercises()["ex01_daily_etl"]
EX02 = all_exercises()["ex02_parallel_regions"]
BAD_BYTES = os.fsdecode(b"caf\xe9-\xff")  # Latin-1 "café" and a stray byte: not UTF-8
HOSTILE = {  # folder name -> the cell a spreadsheet must show as text
    '=HYPERLINK("x")': '\'=HYPERLINK("x")',
    "+1": "'+1",
    "-2": "'-2",
    "@SUM(A1)": "'@SUM(A1)",
    "\tTAB": "'\tTAB",
    "a,b": "a,b",
    'a"b': 'a"b',
    "line\nbreak": "line\nbreak",
    BAD_BYTES: "caf\\xe9-\\xff",
}


def _report(exercise: str, student: str, passed: bool, score: float = 3.0) -> Report:
    checks = [CheckResult("structure.dag_loads", "The DAG file loads", "pass", 1, 1),
              CheckResult("run.tasks_succeeded", "Every task succeeds", "pass" if passed else "fail",
                          score - 1 if passed else 0, score - 1,
                          "" if passed else f"Task load failed for {student}", "Run it locally.")]
    return Report(exercise, f"{student}/{exercise}/dag.py", checks, duration_s=1.5)


def _store(out: Path, student: str, exercise=EX01, report: Report | None = None) -> Submission:
    sub = Submission(student, exercise, out.parent / "submitted" / student / exercise.id / "dag.py")
    store_report(out, student, exercise, report or _report(exercise.id, student, passed=False),
                 "abc123")
    return sub


def _read(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_every_odd_folder_name_gets_one_spreadsheet_safe_row(tmp_path):
    out = tmp_path / "out"
    subs = [_store(out, name) for name in [*HOSTILE, "alice"]]
    write_tables(out, subs)
    grades = _read(out / "grades.csv")
    assert [r["student"] for r in grades] == [*HOSTILE.values(), "alice"]
    assert all(r["exercise"] == "ex01_daily_etl" and float(r["score"]) == 1 for r in grades)
    book = _read(out / "gradebook.csv")
    assert sorted(r["student"] for r in book) == sorted([*HOSTILE.values(), "alice"])
    assert all(float(r["total"]) == 1 for r in book)


def test_no_cell_can_start_a_formula(tmp_path):
    out = tmp_path / "out"
    write_tables(out, [_store(out, name) for name in HOSTILE])
    for table in ("grades.csv", "gradebook.csv"):
        for row in _read(out / table):
            for cell in row.values():
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (table, cell)


def test_a_name_that_is_not_utf8_is_stored_readably_and_nothing_leaves_out(tmp_path):
    out = tmp_path / "out"
    write_tables(out, [_store(out, BAD_BYTES), _store(out, "bob", EX02)])
    stored = out / "reports" / BAD_BYTES / "ex01_daily_etl.json"
    assert '"student": "caf\\\\xe9-\\\\xff"' in stored.read_text(encoding="utf-8")
    written = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert written and all(out in p.parents for p in written)
    assert [r["student"] for r in _read(out / "grades.csv")] == ["caf\\xe9-\\xff", "bob"]


def test_a_lost_report_costs_its_own_row_only(tmp_path):
    out = tmp_path / "out"
    subs = [_store(out, "alice"), _store(out, "bob")]
    (out / "reports" / "alice" / "ex01_daily_etl.json").write_text("{not json")
    write_tables(out, subs)
    rows = {r["student"]: r for r in _read(out / "grades.csv")}
    assert rows["alice"]["status"] == "error" and rows["bob"]["status"] == "fail"


@pytest.mark.parametrize("value, shown", [("=1+1", "'=1+1"), ("\r=x", "'\r=x"), ("ok", "ok"), (-2.5, -2.5)])
def test_spreadsheet_safe(value, shown):
    from autograder.classroom import spreadsheet_safe

    assert spreadsheet_safe(value) == shown
