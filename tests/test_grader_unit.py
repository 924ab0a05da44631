"""The grader's checks and reports as pure functions over hand-made facts: fast, no Airflow run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.checks import evaluate
from autograder.exercises import find
from autograder.exercises.ex01_daily_etl import expected_from as ex01_expected
from autograder.exercises.ex02_parallel_regions import expected_from as ex02_expected
from autograder.facts import DagInfo, ErrorInfo, Facts, RunInfo, TaskInfo, dependency_order
from autograder.model import CheckResult, Report
from autograder.render import as_json, as_text
from autograder.runner import task_log
from autograder.values import as_int, close, row_differences

ROOT = Path(__file__).resolve().parent.parent
EX02 = find("ex02")
DAILY = [f"2023-10-{d:02d}T00:00:00+00:00" for d in range(2, 14)]


def ex02_dag(edges: set[tuple[str, str]] | None = None, run_times: list[str] | None = None,
             **overrides) -> DagInfo:
    edges = set(EX02.edges) if edges is None else edges
    tasks = {t: TaskInfo(t, "PythonOperator", 0, 300.0, "airflow",
                         tuple(sorted(d for u, d in edges if u == t))) for t in EX02.tasks}
    values = dict(dag_id="parallel_regions", tasks=tasks, schedule="CronTriggerTimetable('0 0 * * *')",
                  schedule_text="every day at 00:00 UTC", run_times=run_times or DAILY,
                  expected_run_times=DAILY, start_date="2023-10-01T00:00:00+00:00", catchup=False)
    values.update(overrides)
    return DagInfo(**values)


def facts_for(dag: DagInfo | None = None, run: RunInfo | None = None, **kw) -> Facts:
    facts = Facts(exercise=EX02, submission=Path("dag.py"), filename="dag.py", source="",
                  dag_ids=["parallel_regions"], dag=dag or ex02_dag(), run=run, **kw)
    facts.expected = ex02_expected(EX02.hidden_data)
    return facts


def results(facts: Facts) -> dict[str, CheckResult]:
    return {r.id: r for r in evaluate(EX02.checks, facts)}


def test_missing_and_extra_edges_are_named():
    edges = set(EX02.edges) - {("process_eu", "merge_results")} | {("process_us", "process_eu")}
    got = results(facts_for(ex02_dag(edges)))
    assert got["structure.edges"].status == "fail"
    assert "missing process_eu >> merge_results" in got["structure.edges"].message
    assert "unexpected process_us >> process_eu" in got["structure.edges"].message
    assert got["structure.parallel"].status == "fail"
    assert "`process_eu` waits for `process_us` via process_us >> process_eu" in \
        got["structure.parallel"].message


def test_wrong_schedule_names_both_timings():
    three_am = [t.replace("T00:", "T03:") for t in DAILY]
    got = results(facts_for(ex02_dag(run_times=three_am, schedule_text="every day at 03:00 UTC")))
    message = got["schedule.timing"].message
    assert got["schedule.timing"].status == "fail"
    assert "every day at 03:00 UTC" in message and "@daily" in message


def test_import_error_explains_the_airflow2_idiom():
    err = ErrorInfo("TypeError", "DAG.__init__() got an unexpected keyword argument "
                    "'schedule_interval'", 12, "    schedule_interval='@daily',")
    facts = facts_for(dag=None, import_error=err)
    facts.dag, facts.dag_ids = None, []
    got = results(facts)
    assert got["import.loads"].status == "fail"
    assert "(dag.py, line 12: `schedule_interval='@daily',`)" in got["import.loads"].message
    assert "write `schedule=` instead" in got["import.loads"].message
    assert got["structure.edges"].status == "skip"
    assert got["run.output"].status == "skip"


def test_a_foreign_dag_id_fails_alone_and_the_dag_is_graded_as_it_is():
    facts = facts_for(ex02_dag(dag_id="my_regions"))
    facts.dag_ids = ["my_regions"]
    got = results(facts)
    assert got["import.dag_id"].status == "fail"
    assert got["import.dag_id"].message.startswith(
        'Your DAG has dag_id `my_regions`; the exercise asks for `parallel_regions`: '
        'set `dag_id="parallel_regions"`.')
    assert {got[c].status for c in ("structure.tasks", "structure.edges", "structure.parallel",
                                    "schedule.timing")} == {"pass"}


def test_several_dags_none_wanted_names_them_all_and_skips_the_rest():
    facts = facts_for()
    facts.dag, facts.dag_ids = None, ["example_a", "example_b"]
    got = results(facts)
    assert got["import.dag_id"].message.startswith(
        "dag.py defines 2 DAGs, `example_a`, `example_b`, and none has dag_id `parallel_regions`.")
    assert got["structure.tasks"].status == "skip"


def test_the_same_dag_id_twice_does_not_pass():
    facts = facts_for()
    facts.dag_ids = ["parallel_regions", "parallel_regions"]
    got = results(facts)
    assert got["import.dag_id"].status == "fail"
    assert "defines 2 DAGs with dag_id `parallel_regions`" in got["import.dag_id"].message
    assert got["structure.tasks"].status == "skip"


def test_task_ids_are_quoted_verbatim():
    tasks = {t.upper(): TaskInfo(t.upper(), "PythonOperator", 0, 300.0, "airflow", ())
             for t in EX02.tasks}
    message = results(facts_for(ex02_dag(tasks=tasks)))["structure.tasks"].message
    assert message.startswith("Missing task(s) `extract_all`")
    assert "unexpected task(s) `EXTRACT_ALL`" in message


def test_a_cycle_skips_the_run_and_names_the_arrow_to_remove():
    edges = set(EX02.edges) | {("merge_results", "extract_all")}
    got = results(facts_for(ex02_dag(edges), run=RunInfo(state=None, task_states={}, xcoms={},
                                                         failures={})))
    assert "`merge_results >> extract_all`, which the exercise does not ask for" in \
        got["structure.acyclic"].message
    assert got["run.tasks_succeeded"].status == "skip"
    assert "structure.acyclic" in got["run.tasks_succeeded"].message


def test_import_hint_names_the_graded_file():
    err = ErrorInfo("KeyError", "'x'", 3, "x = {}['x']")
    facts = facts_for(dag=None, import_error=err)
    facts.dag_ids, facts.shown_as = [], "submissions/ana/dag.py"
    assert results(facts)["import.loads"].hint == \
        "Run `python submissions/ana/dag.py` in a terminal to see the full error."


def test_no_mail_says_what_the_run_recorded():
    states = {t: "success" for t in EX02.tasks}
    run = RunInfo(state="failed", task_states={**states, "process_eu": "failed",
                                               "send_report": "upstream_failed"}, xcoms={}, failures={})
    tasks = {t: TaskInfo(t, "EmailOperator" if t == "send_report" else "PythonOperator", 0, 300.0,
                         "airflow", ()) for t in EX02.tasks}
    message = results(facts_for(ex02_dag(tasks=tasks), run=run))["run.email"].message
    assert "`send_report` ended upstream_failed; `process_eu` failed before" in message
    plain_python = results(facts_for(run=RunInfo(state="success", task_states=states, xcoms={},
                                                 failures={})))["run.email"].message
    assert "No task of your DAG is an EmailOperator" in plain_python and "stopped" not in plain_python


def test_failed_task_is_quoted_with_type_message_and_line():
    run = RunInfo(state="failed", task_states={**{t: "success" for t in EX02.tasks},
                                               "process_asia": "failed", "merge_results": "upstream_failed",
                                               "send_report": "upstream_failed"},
                  xcoms={}, failures={"process_asia": ErrorInfo("KeyError", "'amount'", 31,
                                                                "total += row['amount']")})
    got = results(facts_for(run=run))
    message = got["run.tasks_succeeded"].message
    assert message.startswith("`process_asia` failed: KeyError: 'amount' (dag.py, line 31")
    assert "retries are set to 0" in message
    assert got["run.output"].status == "skip"


def test_failed_tasks_are_listed_upstream_first_and_the_first_is_named_in_the_hint():
    states = {"extract_all": "success", "process_asia": "success", "process_us": "failed",
              "process_eu": "failed", "merge_results": "upstream_failed", "send_report": "upstream_failed"}
    run = RunInfo(state="failed", task_states=states, xcoms={},
                  failures={"process_us": ErrorInfo("KeyError", "'amount'", 31),
                            "process_eu": ErrorInfo("ZeroDivisionError", "division by zero", 40)})
    got = results(facts_for(run=run))["run.tasks_succeeded"]
    assert got.message.startswith("`process_eu` failed: ZeroDivisionError: division by zero (dag.py, "
                                  "line 40). `process_us` failed: KeyError: 'amount' (dag.py, line 31). "
                                  "`merge_results`, `send_report` ended upstream_failed (not run, "
                                  "because a task upstream failed).")
    assert got.hint.startswith("Fix `process_eu` first: it is the first task that failed on its own")


def test_dependency_order_follows_the_learners_edges_before_the_exercises():
    # The learner made load wait for nothing and merge wait for load: their run order wins, and
    # tasks free at the same time keep the exercise's order rather than the alphabet's.
    learner = {("extract", "transform_a"), ("extract", "transform_b"), ("load", "merge")}
    prefer = ["extract", "transform_a", "transform_b", "merge", "load"]
    assert dependency_order(prefer, learner, prefer) == ["extract", "transform_a", "transform_b",
                                                         "load", "merge"]
    assert dependency_order(["b", "a", "c"], {("a", "b"), ("b", "a")}) == ["c", "a", "b"]


def test_a_returned_dataframe_is_explained_with_what_to_return_instead():
    run = RunInfo(state="failed", task_states={**{t: "success" for t in EX02.tasks},
                                               "process_us": "failed"}, xcoms={},
                  failures={"process_us": ErrorInfo(
                      "ModuleNotFoundError", "No module named 'pyarrow' (while storing the return value "
                      "as an XCom, after the task ran)")})
    message = results(facts_for(run=run))["run.tasks_succeeded"].message
    assert "returned a pandas DataFrame" in message
    assert 'return `df.to_dict("records")` instead' in message
    # pyarrow missing elsewhere (a learner's own read_parquet) is not about XComs.
    other = RunInfo(state="failed", task_states={**{t: "success" for t in EX02.tasks},
                                                 "process_us": "failed"}, xcoms={},
                    failures={"process_us": ErrorInfo("ImportError",
                                                      "Missing optional dependency 'pyarrow'")})
    assert "DataFrame" not in results(facts_for(run=other))["run.tasks_succeeded"].message


def test_merge_output_compared_forgivingly_and_wrong_region_located():
    want = ex02_expected(EX02.hidden_data)["merge_results"]
    fine = {k: dict(v) for k, v in want.items()}
    fine["us"]["orders"] = str(fine["us"]["orders"])          # "5" == 5
    fine["eu"]["revenue"] = fine["eu"]["revenue"] + 0.004      # within a cent
    fine["asia"]["extra"] = "ignored"
    ok_run = RunInfo("success", {t: "success" for t in EX02.tasks}, {"merge_results": fine}, {})
    assert results(facts_for(run=ok_run))["run.output"].status == "pass"

    wrong = {k: dict(v) for k, v in want.items()}
    wrong["asia"]["revenue"] = round(wrong["asia"]["revenue"] + 1, 2)
    bad_run = RunInfo("success", {t: "success" for t in EX02.tasks},
                      {"merge_results": wrong, "process_asia": wrong["asia"]}, {})
    message = results(facts_for(run=bad_run))["run.output"].message
    assert f"['asia']['revenue'] is {wrong['asia']['revenue']!r}, expected {want['asia']['revenue']}" \
        in message
    assert "`process_asia` itself returned" in message


def test_email_must_reach_the_team_with_the_word_in_the_subject_and_the_totals_in_its_body():
    run = RunInfo("success", {t: "success" for t in EX02.tasks}, {}, {})
    other = facts_for(run=run, mails=[{"to": ["boss@company.com"], "subject": "Daily report"}])
    assert "not to team@company.com" in results(other)["run.email"].message
    vague = facts_for(run=run, mails=[{"to": ["team@company.com"], "subject": "Totals"}])
    assert "must contain 'report'" in results(vague)["run.email"].message
    revenue = facts_for(run=run).expected["merge_results"]["total"]["revenue"]
    empty = facts_for(run=run, mails=[{"to": ["team@company.com"], "subject": "Sales REPORT",
                                       "body": "<p>The report is ready.</p>"}])
    message = results(empty)["run.email"].message
    assert "reads 'The report is ready.'" in message or "reads '<p>The report is ready.</p>'" in message
    assert f"total revenue {revenue}" in message
    good = facts_for(run=run, mails=[{"to": ["team@company.com"], "subject": "Sales REPORT",
                                      "body": f"<th>Total</th><th>{revenue:,}</th>"}])
    assert results(good)["run.email"].status == "pass"


def test_verdict_ignores_advice_and_needs_every_graded_check():
    advice_failed = [CheckResult("advice.x", "x", "fail", 0, 0), CheckResult("a", "a", "pass", 1, 1)]
    assert Report("ex", "dag.py", advice_failed).status == "pass"
    skipped = [CheckResult("a", "a", "pass", 1, 1), CheckResult("b", "b", "skip", 0, 2)]
    report = Report("ex", "dag.py", skipped)
    assert report.status == "fail" and (report.score, report.max_score) == (1, 3)


def test_json_report_has_the_documented_shape():
    report = Report("ex02_parallel_regions", "exercises/ex02_parallel_regions/dag.py",
                    [CheckResult("structure.edges", "Edges", "fail", 0, 2, "missing a >> b", "hint")],
                    duration_s=4.2)
    data = json.loads(as_json(report))
    assert list(data) == ["schema", "exercise", "submission", "status", "score", "max_score",
                          "duration_s", "checks", "notes"]
    assert data["schema"] == 1 and data["status"] == "fail"
    assert data["checks"][0] == {"id": "structure.edges", "title": "Edges", "status": "fail",
                                 "points": 0, "max_points": 2, "message": "missing a >> b",
                                 "hint": "hint"}
    text = as_text(report)
    assert "✗ Edges  [0/2]" in text and "missing a >> b" in text and "hint: hint" in text


def test_values_are_compared_like_a_reviewer_would():
    assert as_int("5") == 5 and as_int(5.0) == 5 and as_int("x") is None
    assert close("12.345", 12.35) and not close(12.33, 12.35)
    missing, extra = row_differences([{"ID": "3", "name": "Ann ", "age": 19.0}],
                                     [(3, "Ann", 19), (4, "Bo", 40)], ("id", "name", "age"))
    assert missing == [(4, "Bo", 40)] and extra == []


def test_ex01_expected_keeps_only_ages_over_18():
    expected = ex01_expected(find("ex01").hidden_data)
    ages = sorted(r[2] for r in expected["adults"])
    assert ages and min(ages) == 19 and 18 not in ages
    assert len(expected["all"]) > len(expected["adults"])


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True, text=True,
                          cwd=ROOT)


def test_cli_unknown_exercise_is_a_one_line_error():
    done = _cli("grade", "ex99")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: No exercise 'ex99'. Known exercises: ex01_daily_etl, "
                               "ex02_parallel_regions")


def test_cli_missing_submission_is_a_one_line_error(tmp_path):
    done = _cli("grade", "ex02", "--submission", str(tmp_path / "nope.py"))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "nope.py" in done.stderr


def test_cli_syntax_error_is_a_report_with_exit_code_0(tmp_path):
    bad = tmp_path / "dag.py"
    bad.write_text("from airflow.sdk import DAG\nwith DAG(dag_id='x'\n    pass\n")
    done = _cli("grade", "ex02", "--submission", str(bad), "--format", "json")
    assert done.returncode == 0
    report = json.loads(done.stdout)
    first = report["checks"][0]
    assert (report["status"], first["id"], first["status"]) == ("fail", "file.parses", "fail")
    assert "line 2" in first["message"]


def test_cli_lists_the_exercises():
    ids = [line.split()[0] for line in _cli("list").stdout.splitlines()]
    assert ids[:2] == ["ex01_daily_etl", "ex02_parallel_regions"]
    assert ids == sorted(ids)


def test_task_log_keeps_the_learners_lines_and_drops_airflows_bookkeeping():
    output = "\n".join([
        "[DAG TEST] starting task_id=load map_index=-1",
        "2026-01-01T00:00:00Z [warning  ] Using `httpx` with `starlette.testclient` is deprecated "
        "[py.warnings] category=StarletteDeprecationWarning",
        "::group::Pre Execute",
        "Traceback (most recent call last):",
        '  File "/v/site-packages/airflow/sdk/execution_time/task_runner.py", line 9, in run',
        "    result = _execute_task(context=context, ti=ti, log=log)",
        '  File "/dags/dag.py", line 31, in load',
        "    return row['amount']",
        "KeyError: 'amount'",
        "[DAG TEST] end task task_id=load",
        "[DAG TEST] starting task_id=other map_index=-1",
    ])
    assert task_log(output, "load", dags_folder="/dags/") == "\n".join([
        "Traceback (most recent call last):",
        '  File "dag.py", line 31, in load',
        "    return row['amount']",
        "KeyError: 'amount'",
    ])
    assert task_log(output, "missing") == ""


@pytest.mark.parametrize("message", ["No module named 'airflow.datasets'",
                                     "cannot import name 'Dataset' from 'airflow'",
                                     "cannot import name 'Dataset' from 'airflow.sdk'"])
def test_airflow2_datasets_are_explained_as_assets(message):
    from autograder.migration import import_fix

    fix = import_fix(message, [], "ex09_assets")
    assert "was removed in Airflow 3" in fix and "`from airflow.sdk import Asset`" in fix, fix


def test_an_arriving_file_comes_on_time_whole_and_is_gone_after_its_run(tmp_path):
    """The grading process's delivery of exercise 10's file, without a sensor to wait for."""
    import time
    from types import SimpleNamespace

    from autograder import flows

    source, target = tmp_path / "orders.csv", tmp_path / "data" / "incoming" / "orders.csv"
    source.write_text("order_id,customer,amount\n1,acme,2.5\n")
    spec = {"arrival": {"source": str(source), "target": str(target), "staging": str(tmp_path),
                        "after": [0.3, None]}}
    dag = SimpleNamespace(dag_id="orders_arrival", tasks=[])  # no sensor: timed from the start
    with flows.arrival(spec, 0, dag):
        assert not target.exists()
        deadline = time.monotonic() + 10
        while not target.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert target.read_text() == source.read_text()
    assert not target.exists(), "the next run must wait for the file again"
    with flows.arrival(spec, 1, dag):  # None: it never comes
        time.sleep(0.5)
        assert not target.exists()
    assert not list(tmp_path.glob(".*arriving")), "no half-written copy is left behind"


def _warehouse(tmp_path: Path) -> Path:
    """A warehouse file where a sandbox leaves it: <grading folder>/warehouse/warehouse.db."""
    store = tmp_path / "grading" / "warehouse"
    store.mkdir(parents=True)
    return store / "warehouse.db"


def _rows_or_why(path: Path, **limits) -> list[dict] | str:
    from autograder.world import sqlite_rows

    try:
        return sqlite_rows(path, "region_sales", **limits)
    except LookupError as exc:
        return str(exc)


def test_the_warehouse_is_read_from_a_private_copy_whatever_the_learner_left_there(tmp_path):
    import os
    import sqlite3
    import time

    db = _warehouse(tmp_path)
    assert _rows_or_why(db) == "nothing was written to the warehouse (no table 'region_sales')"
    db.touch()
    assert _rows_or_why(db) == "the warehouse has no table 'region_sales'"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE region_sales (region TEXT, orders INTEGER, revenue REAL)")
    conn.execute("INSERT INTO region_sales VALUES ('us', 4, 490.5)")
    conn.commit()
    # a connection left open in WAL mode (a process killed, say): its rows are in warehouse.db-wal
    assert _rows_or_why(db) == [{"region": "us", "orders": 4, "revenue": 490.5}]
    conn.close()
    secret = tmp_path / "classmate.db"
    with sqlite3.connect(secret) as conn:
        conn.execute("CREATE TABLE region_sales (region TEXT)")
        conn.execute("INSERT INTO region_sales VALUES ('a classmate''s row')")
    db.unlink()
    db.symlink_to(secret)
    assert "was replaced by a link" in _rows_or_why(db)
    db.unlink()
    os.mkfifo(db)  # opened by the grader, it would block: refused as not a file
    assert "not a file" in _rows_or_why(db)
    db.unlink()
    db.write_bytes(b"not a database " * 100)
    assert _rows_or_why(db) == "the warehouse cannot be read (file is not a database)"
    db.unlink()
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE VIEW region_sales AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
                     "SELECT x + 1 FROM c) SELECT 'r' || x AS region FROM c")
    assert _rows_or_why(db, max_rows=50) == ("the table 'region_sales' has more than 50 rows, "
                                             "and the exercise needs a few")
    db.unlink()
    with sqlite3.connect(db) as conn:  # a view that makes no row, for ever
        conn.execute("CREATE VIEW region_sales AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
                     "SELECT x + 1 FROM c) SELECT x AS region FROM c WHERE x < 0")
    started = time.monotonic()
    assert "took longer than 1 s (is it a view without end?)" in _rows_or_why(db, seconds=1.0)
    assert time.monotonic() - started < 5
    assert sorted(p.name for p in db.parent.parent.iterdir()) == ["warehouse"]  # no copy left


def test_a_task_log_keeps_its_end_however_much_the_task_prints(tmp_path):
    from autograder.text import CappedLog

    path = tmp_path / "task.log"
    with open(path, "w+", buffering=1) as f:
        log = CappedLog(f, limit=1000)
        for i in range(5000):
            log.write(f"line {i}\n")
        log.write("Traceback: KeyError: 'amount'\n")
    text = path.read_text()
    assert len(text) <= 1000
    assert text.startswith("[... earlier output cut ...]\n")
    assert text.endswith("line 4999\nTraceback: KeyError: 'amount'\n")
    small = tmp_path / "small.log"
    with open(small, "w+", buffering=1) as f:
        CappedLog(f, limit=1000).write("hello\n")
    assert small.read_text() == "hello\n"


def test_the_runs_where_a_file_arrives_and_where_it_never_does_come_in_a_random_order(tmp_path):
    from autograder.runner import _arrival_spec

    exercise = find("ex10")
    orders = set()
    for _ in range(60):
        spec = _arrival_spec(exercise, tmp_path / "data", tmp_path)
        order = spec["order"]
        assert sorted(order) == [0, 1]
        assert spec["after"] == [exercise.arrival.after[i] for i in order]
        orders.add(tuple(order))
    assert orders == {(0, 1), (1, 0)}  # 2**-59 that one of them never comes up
