"""Every exercise spec over hand-made facts (no Airflow run): a right submission passes every
check; each realistic mistake fails the check it breaks, with that check's message.

The facts are built from the exercise's own contract and its sample data, as the runner would
collect them from a correct DAG; a mistake changes one fact.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from croniter import croniter

from autograder.checks import evaluate
from autograder.exercises import Exercise, SpecError, all_exercises, validate
from autograder.facts import DagInfo, ErrorInfo, Facts, RunInfo, TaskInfo

# Prefect and Dagster exercises have facts of their own: tests/test_orchestrated.py.
EXERCISES = {k: e for k, e in all_exercises().items() if e.engine == "airflow"}
WEEK = datetime(2023, 10, 1, tzinfo=timezone.utc)

OPERATORS = {"ex03_first_dag": {t: "BashOperator" for t in ("say_hello", "print_date", "sleep_5_seconds")},
             "ex04_operators": {"print_run_date": "BashOperator", "total_revenue": "PythonOperator",
                                "send_summary": "EmailOperator"},
             "ex01_daily_etl": {"send_email": "EmailOperator"},
             "ex02_parallel_regions": {"send_report": "EmailOperator"}}
RETRIES = {"ex01_daily_etl": 2, "ex03_first_dag": 3}


def run_times(schedule: str) -> list[str]:
    """Eight days of runs of a cron schedule from the reference Sunday, as the runner lists them."""
    times = croniter(schedule, WEEK - timedelta(seconds=1))
    out = []
    while (moment := times.get_next(datetime)) < WEEK + timedelta(days=8):
        out.append(moment.isoformat())
    return out


def right_xcoms(ex: Exercise, want: dict) -> tuple[dict, dict]:
    """What the tasks of a correct DAG return (and push under other keys) on the sample data."""
    day = ex.run_ds
    if ex.id == "ex01_daily_etl":
        return {"extract": [dict(zip(("id", "name", "age"), r, strict=True)) for r in want["all"]],
                "transform": [dict(zip(("id", "name", "age"), r, strict=True)) for r in want["adults"]]}, {}
    if ex.id == "ex02_parallel_regions":
        merged = want["merge_results"]
        return {"extract_all": [{"order_id": i} for i in want["order_ids"]], "merge_results": merged,
                **{f"process_{r}": merged[r] for r in ("us", "eu", "asia")}}, {}
    if ex.id == "ex03_first_dag":
        return {"say_hello": "Hello from Airflow!", "print_date": "Wed Jan  3 00:00:00 UTC 2024"}, {}
    if ex.id == "ex04_operators":
        return {"print_run_date": f"Processing date: {day}", "total_revenue": want["revenue"]}, {}
    if ex.id == "ex05_diamond":
        return {"extract": [{"visit_id": i} for i in want["visit_ids"]],
                "transform_a": want["transform_a"], "transform_b": want["transform_b"],
                "merge": {"visits_per_page": want["transform_a"], "average_seconds": want["transform_b"],
                          "total_visits": want["total_visits"]}}, {}
    if ex.id == "ex06_xcom_etl":
        return ({"extract": want["users"], "transform": want["clean"]},
                {"load": {"loaded_count": len(want["clean"])}})
    if ex.id == "ex07_business_hours":
        return {"report_slot": f"{ex.run_date:%Y-%m-%d %H:%M}"}, {}
    if ex.id == "ex08_fix_broken_dag":
        return {"extract": [{"event_id": str(i)} for i in want["event_ids"]],
                "transform": want["report"]["by_action"], "report": {"date": day, **want["report"]},
                "announce": f"Event report for {day} is ready"}, {}
    if ex.id == "ex09_assets":
        return {"publish": want["orders"]}, {}
    if ex.id == "ex10_sensor_trigger_rules":
        return {"load": want}, {}
    raise AssertionError(f"no right facts for {ex.id}: add them here")


def right_facts(ex: Exercise) -> Facts:
    """The facts the runner collects from a correct submission graded on the sample data."""
    want = ex.expected_from(ex.sample_data) if ex.sample_data.exists() else {}
    times = run_times(ex.schedule)
    tasks = {t: TaskInfo(t, OPERATORS.get(ex.id, {}).get(t, "PythonOperator"), RETRIES.get(ex.id, 0),
                         300.0, "data_team", tuple(sorted(b for a, b in ex.edges if a == t)))
             for t in ex.tasks}
    dag = DagInfo(dag_id=ex.dag_id, tasks=tasks, schedule=f"CronTriggerTimetable('{ex.schedule}')",
                  schedule_text=ex.schedule_text, run_times=times, expected_run_times=times,
                  start_date=f"{ex.start_date.isoformat()}T00:00:00+00:00", catchup=ex.catchup,
                  tags=("example",), description="My first Airflow DAG")
    xcoms, keys = right_xcoms(ex, want)
    run = RunInfo("success", {t: "success" for t in ex.tasks}, xcoms, {}, xcom_keys=keys)
    facts = Facts(exercise=ex, submission=Path("dag.py"), filename="dag.py", source="",
                  dag_ids=[ex.dag_id], dag=dag, run=run, rerun=copy.deepcopy(run), expected=want)
    if ex.warehouse_table and ex.id not in MORE_FACTS:
        facts.warehouse_rows = ([dict(zip(("id", "name", "age"), r, strict=True)) for r in want["adults"]]
                                if ex.id == "ex01_daily_etl" else [dict(r) for r in want["clean"]])
    revenue = want.get("revenue") or want.get("merge_results", {}).get("total", {}).get("revenue")
    subject = {"ex01_daily_etl": "ETL Success", "ex02_parallel_regions": "Daily sales report",
               "ex04_operators": f"Revenue for {ex.run_ds}: {revenue}"}.get(ex.id)
    if subject:
        facts.mails = [{"from": "airflow@example.com", "to": [ex.email_to], "subject": subject,
                        "body": f"<p>Total revenue: {revenue}</p>"}]
    if ex.id in MORE_FACTS:
        MORE_FACTS[ex.id](facts, want)
    return facts


def _assets_right(facts: Facts, want: dict) -> None:
    """Exercise 9: the producer's outlet, the consumer on the same asset, its triggered run."""
    _task("publish", outlets=("orders_clean",))(facts)
    facts.dag = DagInfo(**{**facts.dag.__dict__, "schedule": "CronTriggerTimetable('@daily')"})
    facts.dag_ids = ["orders_producer", "orders_report"]
    facts.others = {"orders_report": DagInfo(
        dag_id="orders_report", tasks={"summarize": TaskInfo("summarize", "_PythonDecoratedOperator", 0,
                                                             300.0, "airflow", ())},
        schedule="AssetTriggeredTimetable()", schedule_text="", run_times=[], expected_run_times=[],
        start_date="2023-10-01T00:00:00+00:00", catchup=False, schedule_assets=("orders_clean",))}
    facts.run = RunInfo(**{**facts.run.__dict__, "asset_events": {"publish": ("orders_clean",)}})
    facts.triggered = {"orders_report": [RunInfo(
        "success", {"summarize": "success"}, {"summarize": {"orders": want["orders"],
                                                            "revenue": want["revenue"]}}, {},
        run_type="asset_triggered", consumed=({"uri": "orders_clean", "dag_id": "orders_producer",
                                               "task_id": "publish", "run_id": "manual__1"},))]}
    facts.warehouse_rows = [dict(zip(("order_id", "customer", "amount"), r, strict=True))
                            for r in want["paid"]]


ARRIVED = {"wait_for_orders": "success", "load": "success", "notify_missing": "skipped",
           "cleanup": "success"}
NEVER = {"wait_for_orders": "failed", "load": "upstream_failed", "notify_missing": "success",
         "cleanup": "success"}


def _sensor_right(facts: Facts, want: dict) -> None:
    """Exercise 10: a FileSensor, the trigger rules, the two runs' states as Airflow records them."""
    _task("wait_for_orders", operator="FileSensor", sensor=True, reschedule=True)(facts)
    _task("notify_missing", trigger_rule="one_failed")(facts)
    _task("cleanup", trigger_rule="all_done")(facts)
    facts.run = RunInfo("success", dict(ARRIVED), {"load": want}, {},
                        durations={"wait_for_orders": 3.1}, reschedules={"wait_for_orders": 2})
    facts.rerun = RunInfo("success", dict(NEVER), {}, {}, durations={"wait_for_orders": 6.2},
                          reschedules={"wait_for_orders": 5})


MORE_FACTS: dict[str, Callable[[Facts, dict], None]] = {"ex09_assets": _assets_right,
                                                       "ex10_sensor_trigger_rules": _sensor_right}


def _rerun(**change: Any) -> Callable[[Facts], None]:
    def mutate(facts: Facts) -> None:
        facts.rerun = RunInfo(**{**facts.rerun.__dict__, **change})
    return mutate


def _run(**change: Any) -> Callable[[Facts], None]:
    def mutate(facts: Facts) -> None:
        facts.run = RunInfo(**{**facts.run.__dict__, **change})
    return mutate


def _other(dag_id: str, **change: Any) -> Callable[[Facts], None]:
    def mutate(facts: Facts) -> None:
        facts.others[dag_id] = DagInfo(**{**facts.others[dag_id].__dict__, **change})
    return mutate


def _consumer_run(**change: Any) -> Callable[[Facts], None]:
    def mutate(facts: Facts) -> None:
        run = facts.triggered["orders_report"][0]
        facts.triggered["orders_report"] = [RunInfo(**{**run.__dict__, **change})]
    return mutate


def verdicts(facts: Facts) -> dict[str, Any]:
    return {r.id: r for r in evaluate(facts.exercise.checks, facts)}


@pytest.mark.parametrize("exercise", sorted(EXERCISES))
def test_a_right_submission_passes_every_check(exercise: str):
    results = verdicts(right_facts(EXERCISES[exercise]))
    assert {i: r.message for i, r in results.items() if r.status != "pass"} == {}


def _task(name: str, **change: Any) -> Callable[[Facts], None]:
    def mutate(facts: Facts) -> None:
        tasks = dict(facts.dag.tasks)
        tasks[name] = TaskInfo(**{**tasks[name].__dict__, **change})
        facts.dag = DagInfo(**{**facts.dag.__dict__, "tasks": tasks})
    return mutate


def _dag(**change: Any) -> Callable[[Facts], None]:
    def mutate(facts: Facts) -> None:
        facts.dag = DagInfo(**{**facts.dag.__dict__, **change})
    return mutate


def _xcom(task: str, value: Any) -> Callable[[Facts], None]:
    def mutate(facts: Facts) -> None:
        facts.run.xcoms[task] = value(facts.run.xcoms.get(task)) if callable(value) else value
    return mutate


def _set(**change: Any) -> Callable[[Facts], None]:
    def mutate(facts: Facts) -> None:
        for key, value in change.items():
            setattr(facts, key, value(getattr(facts, key)) if callable(value) else value)
    return mutate


def _edges(*edges: tuple[str, str]) -> Callable[[Facts], None]:
    def mutate(facts: Facts) -> None:
        tasks = {t: TaskInfo(**{**i.__dict__, "downstream": tuple(sorted(b for a, b in edges if a == t))})
                 for t, i in facts.dag.tasks.items()}
        facts.dag = DagInfo(**{**facts.dag.__dict__, "tasks": tasks})
    return mutate


def _mail(**change: Any) -> Callable[[Facts], None]:
    def mutate(facts: Facts) -> None:
        facts.mails = [{**facts.mails[0], **change}]
    return mutate


def _ids(n: int) -> list[dict]:
    return [{"id": i} for i in range(n)]


# (exercise, what the learner did, the change, the check that fails, fragments of its message)
MISTAKES = [
    ("ex01", "retry_delay=5", _task("extract", retry_delay_s=5.0), "settings.retries",
     ["`extract` has retry_delay=0.0833333 min", "a bare 5 means 5 seconds; write `timedelta(minutes=5)`"]),
    ("ex01", "retries only on one task", _task("load", retries=0), "settings.retries",
     ["`load` has retries=0"]),
    ("ex01", "18-year-olds kept", _xcom("transform", lambda v: [*v, {"id": 99, "name": "Tom", "age": 18}]),
     "run.output", ["unexpected (id=99, name='Tom', age=18)", "18 itself is dropped"]),
    ("ex01", "load wrote nothing", _set(warehouse_rows=[]), "run.warehouse",
     ["Table `users` exists but is empty after the run", "hook.insert_rows(\"users\", rows)"]),
    ("ex01", "no users table", _set(warehouse_error="there is no table `users`"), "run.warehouse",
     ["there is no table `users`", "connection `warehouse`"]),
    ("ex01", "email to the boss", _mail(to=["boss@company.com"]), "run.email",
     ["Emails went to boss@company.com, not to team@company.com."]),
    ("ex01", "subject without the words", _mail(subject="ETL done"), "run.email",
     ["'ETL done'", "it must contain 'ETL Success'"]),
    ("ex01", "re-run duplicates rows", _set(warehouse_rows=lambda rows: rows + rows), "run.idempotent",
     ["appear more than once"]),
    ("ex01", "no owner", _task("load", owner="airflow"), "settings.owner",
     ["`load` is owned by 'airflow', not 'data_team'", "'owner': 'data_team' in default_args"]),
    ("ex01", "extract returns tuples", _xcom("extract", lambda v: [tuple(r.values()) for r in v]),
     "run.extract", ["`extract` returned rows such as tuple", "as a dict of its columns"]),
    ("ex01", "mail sent from Python", _task("send_email", operator="PythonOperator"), "structure.operators",
     ["`send_email` is a PythonOperator, the exercise asks for an EmailOperator"]),
    ("ex01", "dicts to insert_rows", _set(run=lambda run: RunInfo(**{**run.__dict__, "state": "failed",
     "task_states": {**run.task_states, "load": "failed"}, "failures": {"load": ErrorInfo(
         "IntegrityError", "datatype mismatch", 31, "hook.insert_rows('users', adults)")}})),
     "run.tasks_succeeded", ["IntegrityError: datatype mismatch", "hook.insert_rows takes each row as a "
                             "tuple or list of values in the table's column order"]),
    ("ex01", "a missing edge", _edges(("extract", "transform"), ("transform", "load")), "structure.edges",
     ["missing load >> send_email"]),
    ("ex01", "daily at midnight", _dag(run_times=run_times("0 0 * * *")), "schedule.timing",
     ["first runs Sun 10-01 00:00", "Set `schedule=\"0 3 * * *\"`"]),
    ("ex01", "catchup on", _dag(catchup=True), "schedule.catchup", ["catchup is True; set `catchup=False`"]),
    ("ex01", "another start", _dag(start_date="2024-01-01T00:00:00+00:00"), "schedule.start_date",
     ["start_date is 2024-01-01 00:00", "2023-10-01"]),
    ("ex02", "regions in a row", _edges(("extract_all", "process_us"), ("process_us", "process_eu"),
                                        ("process_eu", "process_asia"), ("process_asia", "merge_results"),
                                        ("merge_results", "send_report")),
     "structure.parallel", ["`process_eu` waits for `process_us` via process_us >> process_eu"]),
    ("ex02", "merge with one_success", _task("merge_results", trigger_rule="one_success"), "structure.joins",
     ["`merge_results` has trigger_rule=\"one_success\"", "`process_asia`, `process_eu` and `process_us`"]),
    ("ex02", "unrounded total", _xcom("merge_results", lambda v: {**v, "total": {"orders": 0, "revenue": 1}}),
     "run.output", ["['total']['orders'] is 0"]),
    ("ex02", "extract_all drops rows", _xcom("extract_all", lambda v: v[:3]), "run.extract",
     ["`extract_all` returned 3 rows with order_ids"]),
    ("ex02", "a region without its name",
     _xcom("process_eu", lambda v: {k: x for k, x in v.items() if k != "region"}), "run.regions",
     ["process_eu's result['region'] is nothing (None), expected 'eu'"]),
    ("ex02", "report sent from Python", _task("send_report", operator="PythonOperator"),
     "structure.operators", ["`send_report` is a PythonOperator"]),
    ("ex02", "email without totals", _mail(body="<p>The report is ready.</p>"), "run.email",
     ["reads '<p>The report is ready.</p>'", "it must show the totals of the run"]),
    ("ex03", "a PythonOperator", _task("say_hello", operator="PythonOperator"), "structure.bash",
     ["`say_hello` is a PythonOperator, the exercise asks for a BashOperator"]),
    ("ex03", "2 retries", _task("print_date", retries=2), "settings.default_args",
     ["`print_date` has retries=2", "retries=3"]),
    ("ex03", "tags dropped", _dag(tags=()), "settings.tags",
     ["its tags are [], without ['example']", "Keep `description='My first Airflow DAG'`"]),
    ("ex03", "description changed", _dag(description="Hello"), "settings.tags",
     ["its description is 'Hello', the starter's is 'My first Airflow DAG'"]),
    ("ex03", "greeting without !", _xcom("say_hello", "Hello from Airflow"), "run.say_hello",
     ["'Hello from Airflow'", "Only capitals, quotes or punctuation differ"]),
    ("ex03", "echo date", _xcom("print_date", "date"), "run.print_date", ["printed 'date'", "not a date"]),
    ("ex04", "a BashOperator for the revenue", _task("total_revenue", operator="BashOperator"),
     "structure.operators", ["`total_revenue` is a BashOperator"]),
    ("ex04", "single quotes", _xcom("print_run_date", "Processing date: $RUN_DATE"), "run.run_date",
     ["single quotes stop bash"]),
    ("ex04", "the timestamp instead of ds",
     _xcom("print_run_date", "Processing date: 2024-01-03T02:00:00+00:00"), "run.run_date",
     ["expected 'Processing date: 2024-01-03'", "`{{ ds }}` renders it as `2024-01-03`"]),
    ("ex04", "ts_nodash", _xcom("print_run_date", "Processing date: 20240103T020000"), "run.run_date",
     ["`{{ ds }}` → `2024-01-03`"]),
    ("ex04", "no env", _xcom("print_run_date", "Processing date:"), "run.run_date", ["$RUN_DATE was empty"]),
    ("ex04", "count instead of sum", _xcom("total_revenue", lambda v: 1), "run.output", ["returned int 1"]),
    ("ex04", "subject without the value", _mail(subject="Revenue for 2024-01-03: None"), "run.email",
     ["It shows None: xcom_pull found no value"]),
    ("ex05", "transforms in a row", _edges(("extract", "transform_a"), ("transform_a", "transform_b"),
                                           ("transform_b", "merge"), ("merge", "load")),
     "structure.parallel", ["`transform_b` waits for `transform_a`"]),
    ("ex05", "merge with one_success", _task("merge", trigger_rule="one_success"), "structure.joins",
     ["`merge` has trigger_rule=\"one_success\"", "`transform_a` and `transform_b` have all succeeded"]),
    ("ex05", "extract returns a path", _xcom("extract", "/data/visits.csv"), "run.extract",
     ["`extract` returned str '/data/visits.csv'"]),
    ("ex05", "integer average", _xcom("transform_b", lambda v: int(v)), "run.transforms",
     ["transform_b returned int"]),
    ("ex05", "merge without the average", _xcom("merge", lambda v: {**v, "average_seconds": None}),
     "run.merge", ["merge['average_seconds'] is nothing (None)", "pull transform_b's result too"]),
    ("ex06", "extract drops records", _xcom("extract", lambda v: v[:1]), "run.extract",
     ["`extract` returned 1 records"]),
    ("ex06", "email not lower-cased",
     _xcom("transform", lambda v: [{**r, "email": r["email"].upper()} for r in v]), "run.output",
     ["(lower-cased)"]),
    ("ex06", "loaded_count returned",
     _set(run=lambda run: RunInfo(**{**run.__dict__, "xcom_keys": {"load": {"return_value": 3}}})),
     "run.xcom_key", ["a return value is stored under the key `return_value`"]),
    ("ex06", "a row missing", _set(warehouse_rows=lambda rows: rows[1:]), "run.warehouse", ["missing ("]),
    ("ex07", "every day", _dag(run_times=run_times("*/15 9-17 * * *")), "schedule.week",
     ["it also runs on Saturday, Sunday"]),
    ("ex07", "until 16:45", _dag(run_times=run_times("*/15 9-16 * * 1-5")), "schedule.week",
     ["it never runs during hour(s) 17:xx"]),
    ("ex07", "a data-interval timetable", _dag(schedule="CronDataIntervalTimetable('*/15 9-17 * * 1-5')"),
     "advice.timetable", ["the run at 09:15 reports 09:00"]),
    ("ex07", "a 12-hour clock", _xcom("report_slot", "2024-01-02 01:00"), "run.output",
     ["returned '2024-01-02 01:00', expected '2024-01-02 13:00'", "12-hour clock"]),
    ("ex07", "ISO with seconds", _xcom("report_slot", "2024-01-02T13:00:00+00:00"), "run.output",
     ["the exercise fixes the format \"YYYY-MM-DD HH:MM\""]),
    ("ex07", "ds only", _xcom("report_slot", "2024-01-02"), "run.output", ["that is `ds`, the day only"]),
    ("ex08", "a day early", _xcom("report", lambda v: {**v, "date": "2024-01-02"}), "run.output",
     ["'2024-01-02' is Tuesday 2024-01-02, the day before the run; expected '2024-01-03'"]),
    ("ex08", "extract returns text", _xcom("extract", "event_id,user_id,action"), "run.extract",
     ["`extract` returned str"]),
    ("ex08", "transform returns pairs", _xcom("transform", lambda v: sorted(v.items())), "run.transform",
     ["`transform` returned list", "expected the number of events per action"]),
    ("ex08", "announce in other words", _xcom("announce", "Report 2024-01-03 ready"), "run.announce",
     ["expected 'Event report for 2024-01-03 is ready'", "not in the words asked for"]),
    ("ex08", "announce without the date", _xcom("announce", "Event report is ready"), "run.announce",
     ["must name the date 2024-01-03"]),
    ("ex09", "no outlet", _task("publish", outlets=()), "assets.outlet",
     ["No task of `orders_producer` declares an outlet", "add `outlets=[ORDERS_CLEAN]` to `publish`"]),
    ("ex09", "the outlet on extract", lambda f: (_task("publish", outlets=())(f),
                                                _task("extract", outlets=("orders_clean",))(f)),
     "assets.outlet", ["`extract` declares `outlets=`", "move `outlets=[ORDERS_CLEAN]` to `publish`"]),
    ("ex09", "consumer on a cron",
     _other("orders_report", schedule_assets=(),
            schedule="CronTriggerTimetable(expression='0 6 * * *', timezone='UTC')"),
     "assets.schedule",
     ["`orders_report` runs on a time schedule, `0 6 * * *`", "`schedule=[ORDERS_CLEAN]`"]),
    ("ex09", "another asset's name", _other("orders_report", schedule_assets=("orders-clean",)),
     "assets.same", ["`publish` updates `orders_clean`, but `orders_report` is scheduled on `orders-clean`"]),
    ("ex09", "waits for two assets", _other("orders_report", schedule_assets=("orders_clean", "customers")),
     "assets.same", ["a list of assets means all of them", "nothing updates `customers`"]),
    ("ex09", "consumer misnamed",
     _set(others=lambda o: {"report": DagInfo(**{**o["orders_report"].__dict__, "dag_id": "report"})},
                                    dag_ids=["orders_producer", "report"]),
     "import.consumer", ["Your consumer DAG has dag_id `report`", "set `dag_id=\"orders_report\"`"]),
    ("ex09", "consumer with two tasks", _other("orders_report", tasks={
        t: TaskInfo(t, "PythonOperator", 0, 300.0, "airflow", ()) for t in ("read", "summarize")}),
     "import.consumer", ["`orders_report` has the task(s) `read`, `summarize`", "one task, `summarize`"]),
    ("ex09", "no consumer run", _set(triggered={}), "assets.triggered",
     ["Airflow created no run of `orders_report` from it"]),
    ("ex09", "no asset event", _set(run=lambda run: RunInfo(**{**run.__dict__, "asset_events": {}})),
     "assets.triggered", ["`publish` succeeded but recorded no asset event"]),
    ("ex09", "summary off by one", _consumer_run(xcoms={"summarize": {"orders": 1, "revenue": 191.5}}),
     "run.consumer", ["'orders' is int 1, expected 4"]),
    ("ex09", "summary uses ds", _consumer_run(state="failed", task_states={"summarize": "failed"},
                                               failures={"summarize": ErrorInfo("KeyError", "'ds'", 60)}),
     "run.consumer", ["`summarize` ended failed: KeyError: 'ds' (dag.py, line 60)"]),
    ("ex09", "summary loops forever", _consumer_run(timed_out="run100", task_states={"summarize": "running"},
                                                    running_tasks=("summarize",)),
     "run.consumer", ["did not finish in time: `summarize` was still running"]),
    ("ex09", "cancelled orders kept", _set(warehouse_rows=lambda rows: rows + [
        {"order_id": 2, "customer": "globex", "amount": 75}]), "run.warehouse",
     ["unexpected (2, 'globex', 75)"]),
    ("ex10", "a Python loop instead of a sensor", _task("wait_for_orders", operator="PythonOperator",
                                                         sensor=False),
     "structure.sensor", ["`wait_for_orders` is a PythonOperator, not a sensor"]),
    ("ex10", "notify_missing on all_done", _task("notify_missing", trigger_rule="all_done"),
     "structure.trigger_rules",
     ["`notify_missing` has trigger_rule=\"all_done\"", "`trigger_rule=\"one_failed\"`"]),
    ("ex10", "notify ran after the file came", _run(task_states={**ARRIVED, "notify_missing": "success"}),
     "run.file_arrives", ["`notify_missing` ran although the file came"]),
    ("ex10", "default poke_interval", _run(durations={"wait_for_orders": 61.0}), "run.file_arrives",
     ["noticed the file only 61 s after it started", "`poke_interval=1`"]),
    ("ex10", "the sensor timed out although the file came",
     _run(task_states={**ARRIVED, "wait_for_orders": "failed", "load": "upstream_failed",
                       "notify_missing": "success"}),
     "run.file_arrives", ["`wait_for_orders` ended failed although data/incoming/orders.csv arrived"]),
    ("ex10", "deferrable sensor", _run(task_states={**ARRIVED, "wait_for_orders": "deferred", "load": "none",
                                                    "notify_missing": "none", "cleanup": "none"}),
     "run.file_arrives", ["`deferrable=True` hands the waiting to Airflow's triggerer"]),
    ("ex10", "load counts wrong", _xcom("load", {"orders": 0, "revenue": 0}), "run.output",
     ["'orders' is int 0, expected 3"]),
    ("ex10", "soft_fail", _rerun(task_states={**NEVER, "wait_for_orders": "skipped", "load": "skipped",
                                              "notify_missing": "skipped"}),
     "run.file_missing", ["`soft_fail=True` turns its time-out into a skip", "leave soft_fail out"]),
    ("ex10", "timeout of a minute", _rerun(durations={"wait_for_orders": 61.0}), "run.file_missing",
     ["waited 61 s before giving up", "`timeout=5`"]),
    ("ex10", "default timeout", _rerun(timed_out="run1", task_states={**NEVER, "wait_for_orders": "running"},
                                       running_tasks=("wait_for_orders",)),
     "run.file_missing", ["the grader stopped the run before it ended",
                          "`poke_interval=1` and `timeout=5` (seconds)"]),
    ("ex10", "cleanup on the default rule", _rerun(task_states={**NEVER, "cleanup": "upstream_failed"}),
     "run.file_missing", ["`cleanup` ended upstream_failed", "`trigger_rule=\"all_done\"`"]),
    ("ex10", "sensor on a glob", _rerun(task_states=dict(ARRIVED)), "run.file_missing",
     ["`wait_for_orders` succeeded although the file never came"]),
    ("ex08", "an Airflow 2 import left", _set(airflow2_idioms=[{"line": 3, "message": "AIR302 moved."}]),
     "fix.airflow3_idioms", ["Line 3: AIR302 moved", "still in the file"]),
]


@pytest.mark.parametrize(("exercise", "mistake", "mutate", "check_id", "fragments"), MISTAKES,
                         ids=[f"{m[0]}-{m[1]}" for m in MISTAKES])
def test_a_mistake_fails_its_check_with_its_message(exercise: str, mistake: str, mutate: Callable,
                                                    check_id: str, fragments: list[str]):
    ex = next(e for key, e in EXERCISES.items() if key.startswith(exercise))
    facts = right_facts(ex)
    mutate(facts)
    result = verdicts(facts)[check_id]
    assert result.status == "fail", result
    for fragment in fragments:
        assert fragment in result.message, result.message


def test_every_graded_check_has_a_mistake_here():
    tested = {(next(k for k in EXERCISES if k.startswith(m[0])), m[3]) for m in MISTAKES}
    shared = {"file.parses", "import.loads", "import.dag_id", "structure.tasks", "structure.acyclic",
              "run.tasks_succeeded", "advice.airflow3_imports"}  # tests/test_grader_unit.py
    untested = sorted((ex, c.id) for ex, e in EXERCISES.items() for c in e.checks
                      if c.id not in shared and (ex, c.id) not in tested and c.points
                      and c.id not in ("structure.edges", "schedule.timing", "schedule.catchup",
                                       "schedule.start_date"))
    assert untested == []


def _spec(**change: Any) -> Exercise:
    ex = EXERCISES["ex05_diamond"]
    return Exercise(**{**{f: getattr(ex, f) for f in ex.__dataclass_fields__}, **change})


def test_the_registry_refuses_a_spec_that_contradicts_itself():
    ex = EXERCISES["ex05_diamond"]
    first, *rest = ex.checks
    with pytest.raises(SpecError, match=r"spec\.py: check 'import\.loads' needs 'file\.parses', which "
                                        r"is no check of this exercise"):
        validate(_spec(checks=tuple(rest)), "spec.py")
    with pytest.raises(SpecError, match=r"spec\.py: check 'file\.parses' is declared twice"):
        validate(_spec(checks=(first, first, *rest)), "spec.py")
    with pytest.raises(SpecError, match=r"spec\.py: the checks' points add up to 16 .* but the exercise "
                                        r"declares points=14"):
        validate(_spec(points=14), "spec.py")
    with pytest.raises(SpecError, match=r"check 'import\.loads' needs 'file\.parses', which runs after it"):
        validate(_spec(checks=(rest[0], first, *rest[1:])), "spec.py")
    # Points are counted in the order a learner reads them: the right total passes.
    validate(ex, "spec.py")


def test_a_consumer_that_any_one_of_its_assets_starts_needs_only_the_producers():
    """``schedule=ORDERS_CLEAN | Asset("manual_refresh")``: publish's event alone starts a run."""
    facts = right_facts(EXERCISES["ex09_assets"])
    _other("orders_report", schedule_assets=("manual_refresh", "orders_clean"), schedule_any=True)(facts)
    assert verdicts(facts)["assets.same"].status == "pass"
    _other("orders_report", schedule_any=False)(facts)  # a list: it waits for both
    assert "nothing updates `manual_refresh`" in verdicts(facts)["assets.same"].message
