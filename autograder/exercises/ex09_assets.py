"""Exercise 9: data-aware scheduling — a producer DAG updates an Asset, a consumer DAG runs on it.

Both DAGs live in one file (the grader reads one file per exercise). The grader runs the producer
on hidden orders, then lets Airflow's own scheduler code create the consumer's run from the asset
event the producer's task recorded, runs it, and reads both results.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from autograder import factories
from autograder.checks import Failed, KeepGoing, check
from autograder.common import COMMON_HEAD, COMMON_SCHEDULE, airflow3_idioms, tasks_succeeded
from autograder.exercises import Exercise, dag_section
from autograder.facts import DagInfo, Facts, RunInfo
from autograder.factories import _listed, _names
from autograder.values import as_int, close, describe_value, normalize_row

PRODUCER, CONSUMER = "orders_producer", "orders_report"
WRITER, SUMMARY = "publish", "summarize"
TABLE = "orders_clean"
COLUMNS = ("order_id", "customer", "amount")
ASSET_FIX = ("Define the asset once at the top of the file, `ORDERS_CLEAN = Asset(\"orders_clean\")` "
             "(`from airflow.sdk import Asset`), and use that object in both DAGs.")


def expected_from(data: Path) -> dict[str, Any]:
    """The paid orders of the day (status `paid`, in any case) and their summary."""
    with open(data / "orders.csv", newline="") as f:
        paid = [(int(r["order_id"]), r["customer"], float(r["amount"]))
                for r in csv.DictReader(f) if r["status"].strip().lower() == "paid"]
    return {"paid": [normalize_row(r, COLUMNS) for r in paid], "orders": len(paid),
            "revenue": round(sum(a for *_, a in paid), 2)}


def consumer(facts: Facts) -> DagInfo | None:
    """The consumer DAG: by its id, or the file's one other DAG."""
    if CONSUMER in facts.others:
        return facts.others[CONSUMER]
    return next(iter(facts.others.values())) if len(facts.others) == 1 else None


def _schedule_words(dag: DagInfo) -> str:
    """How the consumer's schedule reads in its file: `@daily`, `0 6 * * *`, None, ..."""
    if m := re.search(r"expression='([^']*)'", dag.schedule):
        return f"`{m[1]}`"
    if "NullTimetable" in dag.schedule:
        return "None"
    return f"`{dag.schedule}`"


@check("import.consumer", title=f"The file also defines the consumer DAG `{CONSUMER}`", points=1,
       needs=["import.loads"],
       hint="Write the second DAG in the same file, after the first: `with DAG(dag_id=\"orders_report\", "
            "schedule=[ORDERS_CLEAN], ...)`.")
def consumer_defined(facts: Facts) -> None:
    found = consumer(facts)
    others = sorted(set(facts.dag_ids) - {PRODUCER})
    if found is None:
        assert others, (f"{facts.filename} defines no DAG besides `{PRODUCER}`: the consumer, "
                        f"`{CONSUMER}`, goes into the same file (the grader reads only this file).")
        raise AssertionError(f"{facts.filename} defines {_listed(others)} besides `{PRODUCER}`, and "
                             f"none has dag_id `{CONSUMER}`: give the consumer `dag_id=\"{CONSUMER}\"`.")
    if set(found.tasks) != {SUMMARY}:
        raise AssertionError(f"`{found.dag_id}` has the task(s) {_names(found.tasks) or 'none'}; the "
                             f"exercise asks for one task, `{SUMMARY}`.")
    if found.dag_id != CONSUMER:
        raise KeepGoing(f"Your consumer DAG has dag_id `{found.dag_id}`; the exercise asks for "
                        f"`{CONSUMER}`: set `dag_id=\"{CONSUMER}\"`. The other checks graded it as it is.")


@check("assets.outlet", title=f"`{WRITER}` declares the asset it updates", points=2,
       needs=["structure.tasks"],
       hint="`@task(outlets=[ORDERS_CLEAN])` on publish, or `PythonOperator(task_id=\"publish\", ..., "
            "outlets=[ORDERS_CLEAN])`.")
def outlet_declared(facts: Facts) -> str:
    tasks = facts.dag.tasks
    elsewhere = sorted(t for t, info in tasks.items() if info.outlets and t != WRITER)
    if not tasks[WRITER].outlets:
        if elsewhere:
            raise AssertionError(
                f"{_listed(elsewhere)} declares `outlets=`, but `{WRITER}` is the task that writes the "
                f"table: move `outlets=[ORDERS_CLEAN]` to `{WRITER}` (Airflow marks an asset updated "
                "when the task that declares it succeeds).")
        raise AssertionError(
            f"No task of `{facts.dag.dag_id}` declares an outlet, so Airflow never records that the "
            f"asset changed and `{CONSUMER}` never runs: add `outlets=[ORDERS_CLEAN]` to `{WRITER}`.")
    return f"`{WRITER}` updates {_listed(tasks[WRITER].outlets)}."


@check("assets.schedule", title=f"`{CONSUMER}` is scheduled on an asset, not on a time", points=2,
       needs=["import.consumer"],
       hint="`schedule=[ORDERS_CLEAN]`: a list of assets; the DAG runs when they are updated.")
def scheduled_on_asset(facts: Facts) -> None:
    found = consumer(facts)
    if found.schedule_assets:
        return
    words = _schedule_words(found)
    if words == "None":
        raise AssertionError(f"`{found.dag_id}` has `schedule=None`: it runs only when someone "
                             f"triggers it. Schedule it on the asset: `schedule=[ORDERS_CLEAN]`.")
    raise AssertionError(f"`{found.dag_id}` runs on a time schedule, {words}, whether or not the "
                         f"orders were published: schedule it on the asset instead, "
                         f"`schedule=[ORDERS_CLEAN]`.")


@check("assets.same", title="The consumer waits for the very asset the producer updates", points=2,
       needs=["assets.outlet", "assets.schedule"], show_pass=True, hint=ASSET_FIX)
def same_asset(facts: Facts) -> str:
    found = consumer(facts)
    produced, awaited = set(facts.dag.tasks[WRITER].outlets), set(found.schedule_assets)
    missing = sorted(awaited - produced)
    if not produced & awaited:
        raise AssertionError(
            f"`{WRITER}` updates {_listed(produced)}, but `{found.dag_id}` is scheduled on "
            f"{_listed(awaited)}: a consumer runs only for the asset (the same URI) that its producer "
            "updates.")
    if missing and not found.schedule_any:
        raise AssertionError(
            f"`{found.dag_id}` waits for {_listed(awaited)}, and a list of assets means all of them, "
            f"but nothing updates {_listed(missing)}: so it never runs. Schedule it on "
            f"{_listed(produced & awaited)} alone.")
    return f"Both name {_listed(produced & awaited)}."


def _triggered(facts: Facts) -> RunInfo | None:
    found = consumer(facts)
    runs = facts.triggered.get(found.dag_id, []) if found else []
    return runs[0] if runs else None


@check("assets.triggered", title=f"`{CONSUMER}` runs because `{PRODUCER}` ran", points=3,
       needs=["run.tasks_succeeded", "import.consumer"], show_pass=True,
       hint="Airflow creates the consumer's run when the producer's task that declares the asset "
            "succeeds: check `outlets=` on publish and `schedule=` of orders_report.")
def triggered_by_producer(facts: Facts) -> str:
    found = consumer(facts)
    # An event is the task's own word (its process tells the Execution API what it updated, as in
    # Airflow): only events of an asset the task declares, read from the serialized DAG, count.
    declared = set(facts.dag.tasks[WRITER].outlets)
    said = facts.run.asset_events.get(WRITER, ())
    events = [uri for uri in said if uri in declared]
    undeclared = sorted(set(said) - declared)
    assert not undeclared, (
        f"`{WRITER}` told Airflow at run time that it updated {_listed(undeclared)}, which it does "
        f"not declare: the grader counts the assets a task declares, `@task(outlets=[ORDERS_CLEAN])`.")
    assert events, (f"`{WRITER}` succeeded but recorded no asset event: without "
                    f"`outlets=[ORDERS_CLEAN]` on it, Airflow never learns that the table changed.")
    run = _triggered(facts)
    if run is None:
        raise AssertionError(
            f"`{WRITER}` recorded an event of {_listed(events)}, and Airflow created no run of "
            f"`{found.dag_id}` from it: `{found.dag_id}` must be scheduled on that asset, "
            f"`schedule=[ORDERS_CLEAN]`.")
    sources = {(e["dag_id"], e["task_id"]) for e in run.consumed if e["uri"] in declared}
    assert (facts.dag.dag_id, WRITER) in sources, (
        f"Airflow created a run of `{found.dag_id}`, but not from the event of `{WRITER}`: it "
        f"consumed events of {', '.join(f'{d}.{t}' for d, t in sorted(sources)) or 'nothing'}.")
    uris = sorted({e["uri"] for e in run.consumed})
    return (f"`{WRITER}` recorded an update of {_listed(uris)}; Airflow created a run of "
            f"`{found.dag_id}` from that event ({run.run_type}).")


@check("run.consumer", title=f"`{SUMMARY}` returns the summary of the table the producer wrote",
       points=2, needs=["assets.triggered"], hidden=True, show_pass=True,
       hint="In summarize: hook.get_first(\"SELECT COUNT(*), SUM(amount) FROM orders_clean\"), then "
            "return {\"orders\": count, \"revenue\": round(total, 2)}.")
def consumer_output(facts: Facts) -> str:
    run, want = _triggered(facts), facts.expected
    assert not run.timed_out, (
        f"The run of `{consumer(facts).dag_id}` that the asset triggered did not finish in time: "
        f"{_names(run.running_tasks) or 'no task'} was still running. Does `{SUMMARY}` sleep, wait "
        "for input or loop forever?")
    failed = {t: s for t, s in run.task_states.items() if s != "success"}
    if failed:
        task, state = next(iter(sorted(failed.items())))
        error = run.failures.get(task)
        raise Failed(f"The run of `{consumer(facts).dag_id}` that the asset triggered did not succeed: "
                     f"`{task}` ended {state}"
                     + (f": {error.describe(facts.filename)}" if error else "") + ".",
                     f"Read the log of `{task}`; it runs without a logical date (an asset-triggered "
                     "run has none), so `ds` and `logical_date` are not in its context.")
    got = run.xcoms.get(SUMMARY)
    wanted = {"orders": want["orders"], "revenue": want["revenue"]}
    assert isinstance(got, dict), (f"`{SUMMARY}` returned {describe_value(got)}; return a dict like "
                                   f"{{\"orders\": 4, \"revenue\": 191.5}}.")
    problems = []
    if as_int(got.get("orders")) != want["orders"]:
        problems.append(f"'orders' is {describe_value(got.get('orders'))}, expected {want['orders']}")
    if not close(got.get("revenue"), want["revenue"], 0.01):
        problems.append(f"'revenue' is {describe_value(got.get('revenue'))}, expected {want['revenue']}")
    assert not problems, (f"On the grading data, `{SUMMARY}` returned {got!r}: " + "; ".join(problems)
                          + f". Expected {wanted}: count and sum the rows of `{TABLE}`.")
    return f"{want['orders']} paid orders, {want['revenue']} in total."


CHECKLIST = (
    dag_section(PRODUCER, 'the producer runs every day at midnight UTC: `schedule="@daily"`',
                heading="**The producer DAG**"),
    ("**The producer's tasks**", (
        (f"exactly two tasks, `extract >> {WRITER}`", ("structure.tasks", "structure.edges")),
        (f"""`{WRITER}` writes the *paid* orders of `data/orders.csv` (status `paid`, in any case) into
      the table `{TABLE} (order_id INTEGER PRIMARY KEY, customer TEXT, amount REAL)` of the
      Airflow connection `warehouse`; the grader runs it on other orders""", ("run.warehouse",)),
        (f"`{WRITER}` declares the asset it updates: `outlets=[ORDERS_CLEAN]`", ("assets.outlet",)),
    ), ""),
    ("**The consumer DAG**, in the same file", (
        (f"`dag_id=\"{CONSUMER}\"`, with one task, `{SUMMARY}`", ("import.consumer",)),
        ("scheduled on the asset, not on a time: `schedule=[ORDERS_CLEAN]`", ("assets.schedule",)),
        ("""the very asset the producer updates: define it once, `ORDERS_CLEAN = Asset("orders_clean")`,
      and use that object in both DAGs (two Assets with different names are two assets)""",
         ("assets.same",)),
        (f"""`{CONSUMER}` runs *because* `{PRODUCER}` ran: the grader runs the producer, and Airflow
      creates the consumer's run from the asset event of `{WRITER}`""", ("assets.triggered",)),
        (f"""`{SUMMARY}` reads `{TABLE}` and returns `{{"orders": <row count>, "revenue": <sum of amount,
      rounded to 2 decimals>}}` (`{{"orders": 4, "revenue": 191.5}}` for the sample file)""",
         ("run.consumer",)),
    ), """An asset-triggered run has no logical date: do not use `ds` or `logical_date` in `summarize`."""),
)

EXERCISE = Exercise(
    id="ex09_assets", title="Exercise 9: a producer and a consumer DAG linked by an Asset",
    dag_id=PRODUCER, edges=frozenset({("extract", WRITER)}),
    schedule="0 0 * * *", schedule_text="every day at 00:00 UTC",
    checks=(*COMMON_HEAD, *COMMON_SCHEDULE, consumer_defined, outlet_declared, scheduled_on_asset,
            same_asset, tasks_succeeded,
            factories.warehouse_rows(TABLE, COLUMNS,
                                     lambda facts: facts.expected["paid"], hidden=True, writer=WRITER,
                                     hint=f"Keep the rows whose status is paid (`status.strip().lower() "
                                          f"== \"paid\"`) and insert (order_id, customer, amount) "
                                          f"tuples into `{TABLE}`."),
            triggered_by_producer, consumer_output, airflow3_idioms),
    points=23, expected_from=expected_from, checklist=CHECKLIST, warehouse_table=TABLE,
    also_dags=("*",), asset_runs=True,
)
