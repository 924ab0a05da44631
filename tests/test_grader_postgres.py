"""Exercise 1's load checked against a real PostgreSQL warehouse (CI starts one; see .ci/run)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autograder.config import GradeConfig
from autograder.exercises import find
from autograder.grade import grade

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
URL = os.environ.get("COURSE_TEST_POSTGRES_URL")


@pytest.fixture(scope="module")
def postgres_url() -> str:
    if not URL:
        if os.environ.get("CI"):
            pytest.fail("COURSE_TEST_POSTGRES_URL is not set: .ci/run should have started PostgreSQL")
        pytest.skip("set COURSE_TEST_POSTGRES_URL=postgresql://user:pw@host:port/postgres to run")
    return URL


def _databases(url: str) -> set[str]:
    import psycopg2

    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database")
        return {row[0] for row in cur.fetchall()}


def test_solution_loads_the_warehouse_on_postgres(postgres_url):
    before = _databases(postgres_url)
    report = grade(find("ex01"), ROOT / "solutions" / "ex01_daily_etl" / "dag.py",
                   GradeConfig.from_env(warehouse_url=postgres_url))
    checks = {c.id: c for c in report.checks}
    assert checks["run.warehouse"].status == "pass", checks["run.warehouse"].message
    assert checks["run.idempotent"].status == "pass", checks["run.idempotent"].message
    assert report.status == "pass"
    assert _databases(postgres_url) == before, "the grader left its per-submission database behind"


def test_off_by_one_is_caught_on_postgres(postgres_url, tmp_path):
    source = (ROOT / "solutions" / "ex01_daily_etl" / "dag.py").read_text()
    assert "> 18" in source
    wrong = tmp_path / "dag.py"
    wrong.write_text(source.replace("> 18", ">= 18"))
    report = grade(find("ex01"), wrong, GradeConfig.from_env(warehouse_url=postgres_url))
    checks = {c.id: c for c in report.checks}
    assert checks["run.warehouse"].status == "fail"
    assert "18 itself is dropped" in checks["run.warehouse"].message
