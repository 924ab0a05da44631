"""The instructor's view of a class: spreadsheet-safe tables and the class report, from stored reports.

Fast: reports are built as data and stored as grade-class stores them; nothing runs Airflow.
"""

from __future__ import annotations

import csv
import html
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.classroom import REFUSED_ID, Submission, store_report, write_tables
from autograder.exercises import all_exercises
from autograder.model import CheckResult, Report

ROOT = Path(__file__).resolve().parent.parent
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


@pytest.mark.parametrize("name", ["..", "../escaped", "a/../../escaped", ""])
def test_a_name_with_path_parts_writes_nothing(tmp_path, name):
    out = tmp_path / "deep" / "out"
    with pytest.raises(ValueError, match="not a student folder name"):
        store_report(out, name, EX01, _report(EX01.id, name, passed=True), "abc123")
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


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


HOSTILE_NAME = '<img src=x onerror=alert(1)>"&'


def _refused(exercise: str, student: str) -> Report:
    return Report(exercise, f"{student}/{exercise}/dag.py", [CheckResult(
        REFUSED_ID, "The submission is a Python file the grader can open", "fail", 0, 0,
        "Not graded: dag.py is a symbolic link; hand in the file itself, not a link to it.")])


def _crashed(exercise: str, student: str) -> Report:
    return Report(exercise, f"{student}/{exercise}/dag.py", [CheckResult(
        "grader.crashed", "The grader could run this submission", "error", 0, 0,
        "OSError: no space left. Grade it again; report it if it persists.")])


def _timed_out(exercise: str, student: str) -> Report:
    return Report(exercise, f"{student}/{exercise}/dag.py", [
        CheckResult("structure.dag_loads", "The DAG file loads", "pass", 1, 1),
        CheckResult("run.tasks_succeeded", "Every task succeeds", "fail", 0, 2,
                    "The test run did not finish in time: load was still running.")])


@pytest.fixture
def graded_class(tmp_path: Path) -> Path:
    """A class as grade-class leaves it: 3 pass ex01, 2 fail it, one each refused/crashed/timed out."""
    out = tmp_path / "out"
    for student in ("ann", "ben", "cat"):
        _store(out, student, EX01, _report(EX01.id, student, passed=True))
    for student in ("dan", HOSTILE_NAME):
        _store(out, student, EX01, _report(EX01.id, student, passed=False))
    _store(out, "eve", EX02, _refused(EX02.id, "eve"))
    _store(out, "fay", EX02, _crashed(EX02.id, "fay"))
    _store(out, "gus", EX02, _timed_out(EX02.id, "gus"))
    hal = _report(EX02.id, "hal", passed=True)
    hal.checks.append(CheckResult("advice.airflow3_imports", "Imports are Airflow 3's", "fail", 0, 0,
                                  "Import DAG from airflow.sdk."))
    _store(out, "hal", EX02, hal)
    return out


def test_summary_counts_what_the_reports_say(graded_class):
    from autograder.class_report import load, summarize

    ex01, ex02 = summarize(load(graded_class))
    assert (ex01.exercise, len(ex01.entries), ex01.passed) == ("ex01_daily_etl", 5, 3)
    rates = {c.id: (c.passed, c.total) for c in ex01.checks}
    assert rates == {"structure.dag_loads": (5, 5), "run.tasks_succeeded": (3, 5)}
    assert [(c.id, c.count) for c in ex01.causes] == [("run.tasks_succeeded", 2)]
    assert sorted(e.student for e in ex01.causes[0].examples) == sorted(["dan", HOSTILE_NAME])
    assert ex01.mean_score == pytest.approx(3 * 3 / 5 + 2 * 1 / 5)
    assert {t.entry.student: t.kind for t in ex02.troubles} == {
        "eve": "refused", "fay": "crashed", "gus": "timed out"}
    assert [(c.id, c.count) for c in ex02.causes] == [
        (REFUSED_ID, 1), ("grader.crashed", 1), ("run.tasks_succeeded", 1)]
    assert {c.id: (c.passed, c.total) for c in ex02.checks}["advice.airflow3_imports"] == (0, 1)


def test_class_report_page_is_self_contained_and_escapes_learner_text(graded_class):
    from autograder.class_report import write_class_report

    path, _ = write_class_report(graded_class)
    page = path.read_text(encoding="utf-8")
    assert path == graded_class / "class-report.html"
    assert page.count("<svg") == 2
    assert "<script" not in page and "http" not in page and "<img" not in page
    assert html.escape(HOSTILE_NAME) in page
    assert "3 of 5 passed" in page and "1 of 4 passed" in page
    for student, kind in (("eve", "refused"), ("fay", "crashed"), ("gus", "timed out")):
        assert f'<a href="reports/{student}/ex02_parallel_regions.json">{student}</a></td><td>{kind}' in page
    assert 'href="reports/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E%22%26/ex01_daily_etl.json"' in page


def test_links_reach_reports_of_names_that_are_not_utf8(tmp_path):
    from urllib.parse import unquote_to_bytes

    from autograder.class_report import load

    out = tmp_path / "out"
    _store(out, BAD_BYTES)
    (entry,) = load(out)
    assert entry.student == "caf\\xe9-\\xff"
    assert (out / os.fsdecode(unquote_to_bytes(entry.link))).is_file()


def test_class_report_command_rebuilds_the_page_and_prints_the_table(graded_class):
    done = subprocess.run([sys.executable, "-m", "autograder", "class-report", str(graded_class)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (graded_class / "class-report.html").is_file()
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["exercise", "subs", "passed"]
    assert lines[1].split()[:5] == ["ex01_daily_etl", "5", "3", "2.2/3", "run.tasks_succeeded"]
    assert "  gus / ex02_parallel_regions: timed out" in lines


def test_class_report_command_says_what_to_run_first(tmp_path):
    done = subprocess.run([sys.executable, "-m", "autograder", "class-report", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "grade-class" in done.stderr


def test_report_for_200_submissions_is_built_in_under_2_s(tmp_path):
    from autograder.class_report import write_class_report

    out = tmp_path / "out"
    for n in range(200):
        exercise = list(all_exercises().values())[n % 8]
        _store(out, f"s{n:03}", exercise, _report(exercise.id, f"s{n:03}", passed=n % 3 == 0))
    t0 = time.monotonic()
    write_class_report(out)
    assert time.monotonic() - t0 < 2.0


def test_every_number_on_the_page_comes_from_the_json_reports(graded_class):
    import json
    import re

    from autograder.class_report import write_class_report

    page = write_class_report(graded_class)[0].read_text(encoding="utf-8")
    reports = [json.loads(p.read_text(encoding="utf-8")) for p in (graded_class / "reports").glob("*/*.json")]
    for exercise in {r["exercise"] for r in reports}:
        mine = [r for r in reports if r["exercise"] == exercise]
        passed = sum(r["status"] == "pass" for r in mine)
        mean = sum(r["score"] for r in mine) / len(mine)
        top = max(r["max_score"] for r in mine)
        troubles = sum(any(c["id"] in (REFUSED_ID, "grader.crashed") or "did not finish in time"
                           in c["message"] for c in r["checks"]) for r in mine)
        row = re.search(rf'<tr><td><a href="#{exercise}">{exercise}</a></td>(.*?)</tr>', page).group(1)
        assert re.findall(r'<td class="n">([^<]*)</td>', row) == [
            str(len(mine)), str(passed), f"{mean:.1f} / {top:g}", str(troubles)]
        assert f"{passed} of {len(mine)} passed; mean score {mean:.1f} of {top:g}." in page
        firsts = [next(c["id"] for c in r["checks"] if c["status"] in ("fail", "error")
                       and (c["max_points"] or c["id"] in (REFUSED_ID, "grader.crashed")))
                  for r in mine if r["status"] != "pass"]
        section = page.split(f'<h2 id="{exercise}">')[1].split("<h2 ")[0]
        for check_id in set(firsts):
            assert re.search(rf'<code>{re.escape(check_id)}</code>[^<]*</td><td class="n">'
                             rf'{firsts.count(check_id)}</td>', section)
