"""Hostile submissions: each file attacks the grader one way and must get a plain verdict.

Each folder tests/grader_cases/hostile/<attack>/ holds a `dag.py` and an `expected.json`
({"exercise", "status", "checks", "messages"} as in the golden cases). Beyond its own verdict,
every attack is checked for what a user cares about: nothing of the grader's machine or
environment in the report, no terminal escapes in the text report, no process of its left
behind, and the next submission graded by the same warm grader still graded right. Class-level
attacks (a classmate's file, the grades, links) are graded through ``grade-class``.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path

import psutil
import pytest
from conftest import assert_report_reveals_nothing, secret_in_grader_environment

from autograder.classroom import grade_class, grader_sources
from autograder.config import GradeConfig
from autograder.exercises import find
from autograder.grade import grade
from autograder.model import Report
from autograder.runner import WarmServer
from autograder.sandbox import isolate

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(isolate.available() is not None,
                                 reason=f"no sandbox here: {isolate.available()}")]

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = ROOT / "tests" / "grader_cases" / "hostile"
CASES = sorted(p for p in HOSTILE.glob("*") if (p / "expected.json").exists())
SECRET = "grader-secret-7f3a9c"
SOLUTION = ROOT / "solutions" / "ex02_parallel_regions" / "dag.py"
FAST = GradeConfig.from_env(run_timeout=30.0, import_timeout=20.0)


def _sandbox_processes(started_before: float) -> list[psutil.Process]:
    """Processes running as one of the sandbox's throwaway uids, started before ``started_before``
    (a time.time()): a grading that runs beside this test starts sandboxes of its own later."""
    found = []
    for proc in psutil.process_iter(["uids", "create_time"]):
        uids = proc.info["uids"]
        if uids and uids.real >= 100_000 and (proc.info["create_time"] or 0) < started_before:
            found.append(proc)
    return found


@pytest.fixture(scope="module")
def reports() -> dict[str, Report]:
    """Every attack graded by one warm grader, then the reference solution by the same one."""
    with secret_in_grader_environment(SECRET), WarmServer(FAST) as server:
        graded = {case.name: grade(find(json.loads((case / "expected.json").read_text())["exercise"]),
                                   case / "dag.py", FAST, server) for case in CASES}
        graded["after the attacks"] = grade(find("ex02"), SOLUTION, FAST, server)
    return graded


def _summary(report: Report) -> str:
    return "\n".join(f"{c.id}: {c.status} — {c.message}" for c in report.checks)


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_attack_gets_the_expected_verdict(case: Path, reports: dict[str, Report]):
    expected = json.loads((case / "expected.json").read_text())
    report = reports[case.name]
    by_id = {c.id: c for c in report.checks}
    assert report.status == expected["status"], _summary(report)
    for check_id, status in expected.get("checks", {}).items():
        assert by_id[check_id].status == status, f"{check_id}\n{_summary(report)}"
    for check_id, fragments in expected.get("messages", {}).items():
        for fragment in fragments:
            assert fragment in by_id[check_id].message, f"{check_id}: {fragment!r}\n{_summary(report)}"
    assert not [c for c in report.checks if c.status == "error"], _summary(report)
    assert not report.notes or not any("Not isolated" in n for n in report.notes)


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_attack_learns_nothing_of_the_grader(case: Path, reports: dict[str, Report]):
    assert_report_reveals_nothing(reports[case.name], SECRET)


def test_forged_facts_earn_no_run_points(reports: dict[str, Report]):
    for name in ("forged_events", "computes_expected_from_grader", "patches_airflow",
                 "xcom_for_another_task"):
        report = reports[name]
        assert not [c for c in report.checks if c.id.startswith("run.") and c.status == "pass"
                    and c.max_points], f"{name}\n{_summary(report)}"


def test_later_submissions_are_still_graded_right(reports: dict[str, Report]):
    report = reports["after the attacks"]
    assert report.status == "pass" and report.score == report.max_score, _summary(report)


def test_nothing_of_the_attacks_keeps_running(reports: dict[str, Report]):
    # Every attack was graded before this test began. A sandbox that a grading elsewhere on the
    # machine started meanwhile ends within its own run's limit; an attack's daemon never does.
    graded_by = time.time()
    deadline = time.monotonic() + FAST.run_timeout + 10
    while _sandbox_processes(graded_by) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _sandbox_processes(graded_by), [p.info for p in _sandbox_processes(graded_by)]
    assert not Path("/tmp/daemon-was-here").exists()


ATTACK_CLASSMATES = '''
"""Overwrites a classmate's file and the class's grades, then fails."""
from pathlib import Path

for target, text in {TARGETS!r}.items():
    try:
        Path(target).write_text(text)
    except OSError:
        pass
raise SystemExit(0)
'''


def test_grade_class_protects_the_class(tmp_path: Path):
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    victim = submitted / "bob" / "ex02_parallel_regions" / "dag.py"
    victim.parent.mkdir(parents=True)
    shutil.copy(SOLUTION, victim)
    attacker = submitted / "mallory" / "ex02_parallel_regions" / "dag.py"
    attacker.parent.mkdir(parents=True)
    attacker.write_text(ATTACK_CLASSMATES.replace("{TARGETS!r}", repr({
        str(victim): "raise SystemExit('hacked')\n", str(out / "grades.csv"): "forged\n",
        str(ROOT / "autograder" / "grade.py"): "# hacked\n"})))
    linked = submitted / "trudy" / "ex02_parallel_regions"
    linked.mkdir(parents=True)
    (linked / "dag.py").symlink_to("/etc/passwd")
    (submitted / "victor").mkdir()
    (submitted / "victor" / "ex02_parallel_regions").symlink_to(victim.parent)
    before = victim.read_bytes()

    grade_class(submitted, out, jobs=2, config=FAST, notebooks=False)

    assert victim.read_bytes() == before
    assert "hacked" not in (ROOT / "autograder" / "grade.py").read_text()
    with open(out / "grades.csv", newline="") as f:
        grades = {r["student"]: r for r in csv.DictReader(f)}
    assert grades["bob"]["status"] == "pass"
    assert grades["mallory"]["status"] == "fail"
    for student in ("trudy", "victor"):
        report = json.loads((out / "reports" / student / "ex02_parallel_regions.json").read_text())
        assert report["status"] == "fail" and report["content_hash"] is None
        assert "symbolic link" in report["checks"][0]["message"]
        assert "root:" not in json.dumps(report)


def test_every_grader_source_counts_for_regrading():
    names = {str(p.relative_to(ROOT)) for p in grader_sources(find("ex02"))}
    for needed in ("autograder/world.py", "autograder/model.py", "autograder/grade.py",
                   "autograder/exercises/__init__.py", "autograder/sandbox/supervise.py",
                   "course/schedules.py", "autograder/hidden/ex02_parallel_regions/data/sales.csv"):
        assert needed in names
