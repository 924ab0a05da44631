"""Golden scenarios: real submissions graded for real, against the verdict and messages expected.

Each folder tests/grader_cases/<exercise>/<case>/ holds a `dag.py` and an `expected.json`:
{"status": "pass"|"fail", "checks": {check_id: status}, "messages": {check_id: [substring]},
"hints": {check_id: [substring]}, "only": true}. With "only", the checks marked "fail" are the only
graded checks that fail: the file breaks one line of the exercise's checklist.
Also: every reference solution passes, every starter fails without a grader error, and no report
carries what the hostile cases reach for: the grader's environment, the machine's /etc/passwd,
terminal escapes.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import assert_report_reveals_nothing, secret_in_grader_environment

from autograder.config import GradeConfig
from autograder.exercises import all_exercises, find
from autograder.grade import grade
from autograder.model import Report
from autograder.runner import WarmServer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CASES = sorted(p for p in (ROOT / "tests" / "grader_cases").glob("*/*")
               if (p / "expected.json").exists() and p.parent.name != "hostile")  # test_hostile.py
EXERCISES = sorted(all_exercises())
SECRET = "grader-secret-golden-5d1e"  # in the grader's environment while the cases are graded


def _jobs() -> dict[str, tuple[str, Path]]:
    jobs = {f"case:{c.parent.name}/{c.name}": (c.parent.name, c / "dag.py") for c in CASES}
    for ex in EXERCISES:
        jobs[f"solution:{ex}"] = (ex, ROOT / "solutions" / ex / "dag.py")
        jobs[f"starter:{ex}"] = (ex, ROOT / "exercises" / ex / "dag.py")
    return jobs


def _job_key(item: pytest.Item) -> str | None:
    if item.module is not sys.modules[__name__]:
        return None  # another module's test, whatever its parameters are called
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "case" in params:
        return f"case:{params['case'].parent.name}/{params['case'].name}"
    if "exercise" in params:
        kind = "solution" if "solution" in item.name else "starter"
        return f"{kind}:{params['exercise']}"
    return None


@pytest.fixture(scope="module")
def reports(request: pytest.FixtureRequest) -> dict[str, Report]:
    """Grade each selected submission once, two at a time (each in its own child process).

    Only the jobs of the tests this session runs: `-k ex05` grades the ex05 cases alone.
    """
    selected = {_job_key(item) for item in request.session.items}
    jobs = {key: job for key, job in _jobs().items() if key in selected}
    config = GradeConfig.from_env(run_timeout=20.0, import_timeout=15.0)
    with (secret_in_grader_environment(SECRET), WarmServer(config) as server,
          ThreadPoolExecutor(max_workers=2) as pool):
        futures = {key: pool.submit(grade, find(ex), path, config, server)
                   for key, (ex, path) in jobs.items()}
        return {key: f.result() for key, f in futures.items()}


def _summary(report: Report) -> str:
    return "\n".join(f"{c.id}: {c.status} — {c.message}" for c in report.checks)


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden_case(case: Path, reports: dict[str, Report]):
    expected = json.loads((case / "expected.json").read_text())
    report = reports[f"case:{case.parent.name}/{case.name}"]
    by_id = {c.id: c for c in report.checks}
    assert report.status == expected["status"], _summary(report)
    for check_id, status in expected.get("checks", {}).items():
        assert by_id[check_id].status == status, f"{check_id}\n{_summary(report)}"
    for check_id, fragments in expected.get("messages", {}).items():
        for fragment in fragments:
            assert fragment in by_id[check_id].message, f"{check_id}: {fragment!r}\n{_summary(report)}"
    for check_id, fragments in expected.get("hints", {}).items():
        for fragment in fragments:
            assert fragment in by_id[check_id].hint, f"{check_id}: {fragment!r}\n{by_id[check_id].hint}"
    assert not [c for c in report.checks if c.status == "error"], _summary(report)
    assert_report_reveals_nothing(report, SECRET)
    if expected.get("only"):  # a file that breaks one checklist line: no other graded check fails
        failed = {c.id for c in report.checks if c.status == "fail" and c.max_points}
        assert failed == {i for i, s in expected["checks"].items() if s == "fail"}, _summary(report)


@pytest.mark.parametrize("exercise", EXERCISES)
def test_reference_solution_passes(exercise: str, reports: dict[str, Report]):
    report = reports[f"solution:{exercise}"]
    assert report.status == "pass", _summary(report)
    assert report.score == report.max_score


@pytest.mark.parametrize("exercise", EXERCISES)
def test_starter_fails_without_grader_errors(exercise: str, reports: dict[str, Report]):
    report = reports[f"starter:{exercise}"]
    assert report.status == "fail"
    assert [c.id for c in report.checks if c.status == "error"] == [], _summary(report)
    assert by_status(report, "pass") >= 1, "the starter should at least import"


def by_status(report: Report, status: str) -> int:
    return sum(1 for c in report.checks if c.status == status)


def test_every_exercise_has_cases():
    for ex in EXERCISES:
        # The lesson's two exercises carry the most weight: they get the most scenarios.
        least = 12 if ex.startswith(("ex01", "ex02")) else 6
        assert len(list((ROOT / "tests" / "grader_cases" / ex).glob("*/expected.json"))) >= least, ex
