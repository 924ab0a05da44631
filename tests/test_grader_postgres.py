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
    before, roles = _databases(postgres_url), _grade_roles(postgres_url)
    report = grade(find("ex01"), ROOT / "solutions" / "ex01_daily_etl" / "dag.py",
                   GradeConfig.from_env(warehouse_url=postgres_url))
    checks = {c.id: c for c in report.checks}
    assert checks["run.warehouse"].status == "pass", checks["run.warehouse"].message
    assert checks["run.idempotent"].status == "pass", checks["run.idempotent"].message
    assert report.status == "pass"
    assert _databases(postgres_url) == before, "the grader left its per-submission database behind"
    assert _grade_roles(postgres_url) == roles, "the grader left its per-submission role behind"


def test_off_by_one_is_caught_on_postgres(postgres_url, tmp_path):
    source = (ROOT / "solutions" / "ex01_daily_etl" / "dag.py").read_text()
    assert "> 18" in source
    wrong = tmp_path / "dag.py"
    wrong.write_text(source.replace("> 18", ">= 18"))
    report = grade(find("ex01"), wrong, GradeConfig.from_env(warehouse_url=postgres_url))
    checks = {c.id: c for c in report.checks}
    assert checks["run.warehouse"].status == "fail"
    assert "18 itself is dropped" in checks["run.warehouse"].message


def _grade_roles(url: str) -> set[str]:
    import psycopg2

    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'grade\\_%'")
        return {row[0] for row in cur.fetchall()}


# Each attack that works is written down; a single one fails the load, so the verdict tells.
ATTACKS = '''
def load(ti) -> int:
    import psycopg2

    own = BaseHook.get_connection("warehouse")
    at = dict(host=own.host, port=own.port, user=own.login, password=own.password, connect_timeout=5)
    worked = []
    try:
        psycopg2.connect(dbname=CLASSMATE, **at).close()
        worked.append("connected to a classmate's database")
    except psycopg2.Error:
        pass
    mine = psycopg2.connect(dbname=own.schema, **at)
    mine.autocommit = True
    cur = mine.cursor()
    for sql in (f'DROP DATABASE "{CLASSMATE}"', 'CREATE DATABASE "LOOT"'):
        try:
            cur.execute(sql)
            worked.append(sql)
        except psycopg2.Error:
            pass
    cur.execute("SELECT pid, coalesce(query, '') FROM pg_stat_activity "
                "WHERE usename IS DISTINCT FROM current_user")
    for pid, query in cur.fetchall():
        if "SECRET" in query:
            worked.append("read the grader's query")
        try:
            cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
            if cur.fetchone()[0]:
                worked.append(f"ended the session {pid}")
        except psycopg2.Error:
            pass
    mine.close()
    if worked:
        raise RuntimeError("; ".join(worked))
    return _load(ti)
'''


def test_a_submission_cannot_touch_a_classmate_or_the_grader(postgres_url, tmp_path):
    import psycopg2

    from autograder.world import PostgresWarehouse

    roles_before, dbs_before = _grade_roles(postgres_url), _databases(postgres_url)
    loot = f"loot_{tmp_path.name[-12:].lower()}"
    source = (ROOT / "solutions" / "ex01_daily_etl" / "dag.py").read_text()
    assert "\ndef load(ti) -> int:" in source
    with PostgresWarehouse(postgres_url) as classmate:
        seat = classmate.connection()
        mate = psycopg2.connect(host=seat["host"], port=seat["port"], user=seat["login"],
                                password=seat["password"], dbname=seat["schema"])
        mate.autocommit = True
        mate.cursor().execute("CREATE TABLE users AS SELECT 1 AS id, 'Ada' AS name")
        grader = psycopg2.connect(postgres_url)
        grader.autocommit = True
        grader.cursor().execute("SELECT 'SECRET answer key'")
        hostile = tmp_path / "dag.py"
        hostile.write_text(source.replace("\ndef load(ti) -> int:", "\ndef _load(ti) -> int:")
                           .replace("\nwith DAG(", f"\nCLASSMATE = {classmate.database!r}\n"
                                    + ATTACKS.replace("LOOT", loot) + "\n\nwith DAG(", 1))
        try:
            report = grade(find("ex01"), hostile, GradeConfig.from_env(warehouse_url=postgres_url))
            checks = {c.id: c for c in report.checks}
            # the load ran and raised nothing: every attack was refused
            assert checks["run.warehouse"].status == "pass", checks["run.warehouse"].message
            with mate.cursor() as cur:
                cur.execute("SELECT id, name FROM users")
                assert cur.fetchall() == [(1, "Ada")]
            with grader.cursor() as cur:
                cur.execute("SELECT 1")
                assert cur.fetchone() == (1,)
            assert loot not in _databases(postgres_url)
        finally:
            mate.close()
            grader.close()
            conn = psycopg2.connect(postgres_url)
            conn.autocommit = True
            conn.cursor().execute(f'DROP DATABASE IF EXISTS "{loot}"')
            conn.close()
    assert _grade_roles(postgres_url) == roles_before
    assert _databases(postgres_url) == dbs_before


def test_a_role_without_createrole_is_told_what_to_run(postgres_url, tmp_path, monkeypatch, capsys):
    from urllib.parse import urlsplit, urlunsplit

    from autograder.__main__ import main
    from autograder.world import PostgresWarehouse, WarehouseSetupError

    submitted = tmp_path / "submitted" / "ada" / "ex01_daily_etl"
    submitted.mkdir(parents=True)
    (submitted / "dag.py").write_text((ROOT / "solutions" / "ex01_daily_etl" / "dag.py").read_text())

    with PostgresWarehouse(postgres_url) as plain:  # a role with neither CREATEDB nor CREATEROLE
        parts = urlsplit(postgres_url)
        url = urlunsplit(parts._replace(netloc=f"{plain.role}:{plain.password}@{parts.hostname}:"
                                               f"{parts.port or 5432}", path=f"/{plain.database}"))
        with pytest.raises(WarehouseSetupError) as err:
            PostgresWarehouse(url).__enter__()
        monkeypatch.setenv("AUTOGRADER_WAREHOUSE_URL", url)
        code = main(["grade-class", str(tmp_path / "submitted"), "--out", str(tmp_path / "out")])
    message = str(err.value)
    assert f"role '{plain.role}' lacks CREATEDB and CREATEROLE" in message
    assert f'ALTER ROLE "{plain.role}" CREATEDB CREATEROLE' in message
    assert plain.role not in _grade_roles(postgres_url)
    # grade-class stops before grading anyone, with the same words
    assert code == 2
    assert f'ALTER ROLE "{plain.role}" CREATEDB CREATEROLE' in capsys.readouterr().err
    assert not (tmp_path / "out" / "grades.csv").exists()
