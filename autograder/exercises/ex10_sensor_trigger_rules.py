"""Exercise 10: a sensor waits for a file; trigger rules decide what runs when it comes and when not.

The grader runs the DAG twice on its own data. In one run it makes the awaited file appear a
little after the sensor began to wait (``Arrival``); in the other the file never comes, in an order
drawn at random for each grading, so that only looking for the file tells them apart. Every verdict
rests on what the grader's metadata database recorded: each task's state, when the sensor started
and ended, how often it was rescheduled.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from autograder.checks import Failed, check
from autograder.common import COMMON_HEAD, COMMON_SCHEDULE, _rule, airflow3_idioms
from autograder.exercises import Arrival, Exercise, dag_section
from autograder.facts import Facts, RunInfo
from autograder.factories import _names
from autograder.values import as_int, close, describe_value

SENSOR, LOAD, MISSING, CLEANUP = "wait_for_orders", "load", "notify_missing", "cleanup"
ORDER = (SENSOR, LOAD, MISSING, CLEANUP)
POKE_INTERVAL, TIMEOUT = 1, 5  # what the README asks for, in seconds
ARRIVES_AFTER = 2.0  # seconds after the sensor of the first graded run began to wait
# A task's time includes its start-up, several seconds on a busy machine: a sensor that looks
# every second, or gives up after 5, ends well within these margins; the defaults (every 60 s,
# a week) do not.
NOTICE_SLACK = 20.0
TIMEOUT_SLACK = 20.0
RULES = {LOAD: {"all_success"}, MISSING: {"one_failed", "all_failed"}, CLEANUP: {"all_done"}}
RULE_WHY = {
    LOAD: "leave `load` at the default, `all_success`: it runs only when the file came",
    MISSING: "give `notify_missing` `trigger_rule=\"one_failed\"`: it runs only when the sensor failed",
    CLEANUP: "give `cleanup` `trigger_rule=\"all_done\"`: it runs once both are done, whatever their "
             "state",
}
FILE = "data/incoming/orders.csv"


def expected_from(data: Path) -> dict[str, Any]:
    """The summary of the orders file the grader delivers during one of the runs."""
    with open(data.parent / "arrivals" / "orders.csv", newline="") as f:
        amounts = [float(r["amount"]) for r in csv.DictReader(f)]
    return {"orders": len(amounts), "revenue": round(sum(amounts), 2)}


@check("structure.sensor", title=f"`{SENSOR}` is a sensor", points=1, needs=["structure.tasks"],
       hint="`FileSensor(task_id=\"wait_for_orders\", filepath=..., poke_interval=1, timeout=5)` from "
            "airflow.providers.standard.sensors.filesystem, or a function decorated with "
            "`@task.sensor(poke_interval=1, timeout=5)` that returns whether the file exists.")
def is_sensor(facts: Facts) -> str:
    task = facts.dag.tasks[SENSOR]
    kind = "`@task` function" if "Decorated" in task.operator else task.operator
    assert task.sensor, (f"`{SENSOR}` is a {kind}, not a sensor: a loop that sleeps in a task holds "
                         "a worker slot and has no timeout of Airflow's. Make it a FileSensor or a "
                         "`@task.sensor` function.")
    return f"`{SENSOR}` is a {task.operator} ({'reschedule' if task.reschedule else 'poke'} mode)."


@check("structure.trigger_rules", title="Each task after the sensor has the trigger rule asked for",
       points=2, needs=["structure.tasks"], show_pass=True,
       hint="`@task(trigger_rule=\"one_failed\")`, or `trigger_rule=TriggerRule.ONE_FAILED` on an "
            "operator (`from airflow.task.trigger_rule import TriggerRule`).")
def trigger_rules(facts: Facts) -> str:
    wrong = [f"`{t}` has trigger_rule=\"{_rule(facts.dag.tasks[t])}\": {RULE_WHY[t]}"
             for t in (LOAD, MISSING, CLEANUP) if _rule(facts.dag.tasks[t]) not in RULES[t]]
    assert not wrong, "; ".join(wrong) + "."
    return ", ".join(f"`{t}` {_rule(facts.dag.tasks[t])}" for t in (LOAD, MISSING, CLEANUP)) + "."


def _states(run: RunInfo) -> str:
    return ", ".join(f"`{t}` {run.task_states.get(t, 'not run')}" for t in ORDER)


def _error(facts: Facts, run: RunInfo, task: str) -> str:
    error = run.failures.get(task)
    return f" ({error.describe(facts.filename)})" if error else ""


def _not_finished(run: RunInfo, which: str) -> None:
    """The run itself did not end: the grader stopped it, or the sensor was deferred."""
    if run.timed_out:
        raise AssertionError(
            f"In the run where {which}, the grader stopped the run before it ended, with "
            f"{_names(run.running_tasks) or 'no task'} still running. Give `{SENSOR}` "
            f"`poke_interval={POKE_INTERVAL}` and `timeout={TIMEOUT}` (seconds) so that it gives up in time.")
    if run.task_states.get(SENSOR) == "deferred":
        raise AssertionError(
            f"`{SENSOR}` was deferred: `deferrable=True` hands the waiting to Airflow's triggerer, "
            "which the grader does not run. Use `mode=\"reschedule\"` (or the default, "
            "`mode=\"poke\"`) instead.")


def _common(facts: Facts, run: RunInfo, which: str) -> list[str]:
    """Problems both runs share: tasks that failed on their own, the other tasks' trigger rules."""
    _not_finished(run, which)
    problems = []
    for task in (LOAD, MISSING, CLEANUP):
        if run.task_states.get(task) == "failed":
            problems.append(f"`{task}` failed{_error(facts, run, task)}")
    if run.task_states.get(CLEANUP) in ("upstream_failed", "skipped"):
        problems.append(f"`{CLEANUP}` ended {run.task_states[CLEANUP]}: {RULE_WHY[CLEANUP]}")
    return problems


@check("run.file_arrives", title="The file arrives late: the sensor waits for it, then `load` runs",
       points=3, needs=["structure.sensor", "structure.acyclic"], show_pass=True,
       hint=f"Wait for `Path(__file__).parent / \"data\" / \"incoming\" / \"orders.csv\"` with "
            f"`poke_interval={POKE_INTERVAL}`; give notify_missing trigger_rule=\"one_failed\".")
def file_arrives(facts: Facts) -> str:
    run = facts.run
    assert run is not None, "The DAG was not run."
    which = f"{FILE} arrives {ARRIVES_AFTER:g} s after `{SENSOR}` began to wait"
    problems = []
    sensor = run.task_states.get(SENSOR)
    waited = run.durations.get(SENSOR)
    if sensor != "success":
        _not_finished(run, which)
        problems.append(f"`{SENSOR}` ended {sensor}{_error(facts, run, SENSOR)} although {FILE} "
                        f"arrived {ARRIVES_AFTER:g} s after it began to wait: make it wait for that "
                        "path built from the DAG file's folder, `Path(__file__).parent / \"data\" / "
                        "\"incoming\" / \"orders.csv\"` (a relative path is looked up elsewhere)")
    elif waited is not None and waited > ARRIVES_AFTER + NOTICE_SLACK:
        problems.append(f"`{SENSOR}` noticed the file only {waited:.0f} s after it started, although "
                        f"it arrived after {ARRIVES_AFTER:g} s: look every second, "
                        f"`poke_interval={POKE_INTERVAL}`")
    if run.task_states.get(MISSING) == "success":
        problems.append(f"`{MISSING}` ran although the file came: {RULE_WHY[MISSING]}")
    problems += _common(facts, run, which)
    if sensor == "success" and run.task_states.get(LOAD) != "success" and \
            run.task_states.get(LOAD) != "failed":
        problems.append(f"`{LOAD}` ended {run.task_states.get(LOAD, 'not run')}: {RULE_WHY[LOAD]}")
    if problems:
        first = next((t for t in ORDER if run.task_states.get(t) == "failed"), None)
        raise Failed(f"In the run where {which}: " + "; ".join(problems) + f". (States: {_states(run)}.)",
                     None if first is None or first == SENSOR else
                     f"Read the log of `{first}` below: it failed on its own.")
    rescheduled = run.reschedules.get(SENSOR, 0)
    return (f"`{SENSOR}` found the file after {waited or 0:.1f} s"
            + (f" ({rescheduled} reschedules)" if rescheduled else "") + f"; {_states(run)}.")


@check("run.output", title=f"`{LOAD}` returns the summary of the file that arrived", points=2,
       needs=["run.file_arrives"], hidden=True, show_pass=True,
       hint="Read the file the sensor waited for with csv.DictReader and return "
            "{\"orders\": <rows>, \"revenue\": round(<sum of amount>, 2)}.")
def load_output(facts: Facts) -> str:
    want, got = facts.expected, facts.run.xcoms.get(LOAD)
    example = '{"orders": 3, "revenue": 237.75}'
    assert isinstance(got, dict), f"`{LOAD}` returned {describe_value(got)}; return a dict like {example}."
    problems = []
    if as_int(got.get("orders")) != want["orders"]:
        problems.append(f"'orders' is {describe_value(got.get('orders'))}, expected {want['orders']}")
    if not close(got.get("revenue"), want["revenue"]):
        problems.append(f"'revenue' is {describe_value(got.get('revenue'))}, expected {want['revenue']}")
    assert not problems, (f"On the grading file, `{LOAD}` returned {got!r}: " + "; ".join(problems)
                          + ". Count the rows and add up `amount`.")
    return f"{want['orders']} orders, {want['revenue']} in total."


@check("run.file_missing", title="The file never arrives: the sensor times out, `notify_missing` runs",
       points=3, needs=["structure.sensor", "structure.acyclic"], show_pass=True,
       hint=f"`timeout={TIMEOUT}` on the sensor, soft_fail left out; notify_missing "
            "trigger_rule=\"one_failed\", cleanup trigger_rule=\"all_done\".")
def file_missing(facts: Facts) -> str:
    run = facts.rerun
    which = f"{FILE} never arrives"
    assert run is not None, (f"The grader did not get to the run where {which}: the other run did not "
                             "end in time.")
    problems = []
    sensor = run.task_states.get(SENSOR)
    waited = run.durations.get(SENSOR)
    if sensor == "success":
        problems.append(f"`{SENSOR}` succeeded although the file never came: it must wait for {FILE} "
                        f"alone (a pattern such as `incoming/*` also finds the folder's README.md)")
    elif sensor == "skipped":
        problems.append(f"`{SENSOR}` ended skipped, not failed: `soft_fail=True` turns its time-out "
                        f"into a skip, and then `{MISSING}` never runs; leave soft_fail out")
    elif sensor != "failed":
        _not_finished(run, which)
        problems.append(f"`{SENSOR}` ended {sensor}")
    elif waited is not None and waited > TIMEOUT + TIMEOUT_SLACK:
        problems.append(f"`{SENSOR}` waited {waited:.0f} s before giving up: a sensor gives up only "
                        f"when it looks, so look every second, `poke_interval={POKE_INTERVAL}`, and give "
                        f"up after `timeout={TIMEOUT}` (seconds)")
    if run.task_states.get(MISSING) != "success" and run.task_states.get(MISSING) != "failed":
        problems.append(f"`{MISSING}` ended {run.task_states.get(MISSING, 'not run')}: "
                        f"{RULE_WHY[MISSING]}")
    problems += _common(facts, run, which)
    if run.task_states.get(LOAD) == "success":
        problems.append(f"`{LOAD}` ran without the file: {RULE_WHY[LOAD]}")
    if problems:
        raise AssertionError(f"In the run where {which}: " + "; ".join(problems)
                             + f". (States: {_states(run)}.)")
    return f"`{SENSOR}` gave up after {waited or 0:.1f} s; {_states(run)}."


CHECKLIST = (
    dag_section("orders_arrival", 'runs every day at 06:00 UTC: `schedule="0 6 * * *"`'),
    ("**The tasks and their arrows**", (
        (f"""exactly these four arrows: `{SENSOR} >> {LOAD}`, `{SENSOR} >> {MISSING}`,
      `{LOAD} >> {CLEANUP}` and `{MISSING} >> {CLEANUP}`""", ("structure.tasks", "structure.edges")),
        (f"""`{SENSOR}` is a sensor that waits for `{FILE}` (build the path from the DAG
      file: `Path(__file__).parent / "data" / "incoming" / "orders.csv"`): a `FileSensor` or a
      `@task.sensor` function""", ("structure.sensor",)),
        (f"""`{LOAD}` keeps the default trigger rule, `{MISSING}` has `trigger_rule="one_failed"` and
      `{CLEANUP}` has `trigger_rule="all_done"`""", ("structure.trigger_rules",)),
    ), f"""`{SENSOR} >> [{LOAD}, {MISSING}] >> {CLEANUP}` draws the four arrows."""),
    ("**The two graded runs**", (
        (f"""when the file arrives late (the grader creates it {ARRIVES_AFTER:g} s after `{SENSOR}`
      began to wait), `{SENSOR}` notices it (`poke_interval={POKE_INTERVAL}`, in seconds), `{LOAD}`
      and `{CLEANUP}` succeed and `{MISSING}` is skipped""", ("run.file_arrives",)),
        (f"""`{LOAD}` reads the file and returns `{{"orders": <rows>, "revenue": <sum of amount, rounded to 2
      decimals>}}` (`{{"orders": 3, "revenue": 237.75}}` for `arrivals/orders.csv`)""", ("run.output",)),
        (f"""when the file never arrives, `{SENSOR}` fails after `timeout={TIMEOUT}` seconds (leave
      `soft_fail` out), `{LOAD}` ends upstream_failed, and `{MISSING}` and `{CLEANUP}` succeed""",
         ("run.file_missing",)),
    ), """Poke or reschedule mode, as you like. Not `deferrable=True`: a deferred sensor waits in
Airflow's triggerer, which the grader does not run."""),
)

EXERCISE = Exercise(
    id="ex10_sensor_trigger_rules", title="Exercise 10: a sensor and trigger rules",
    dag_id="orders_arrival",
    edges=frozenset({(SENSOR, LOAD), (SENSOR, MISSING), (LOAD, CLEANUP), (MISSING, CLEANUP)}),
    schedule="0 6 * * *", schedule_text="every day at 06:00 UTC",
    checks=(*COMMON_HEAD, *COMMON_SCHEDULE, is_sensor, trigger_rules, file_arrives, load_output,
            file_missing, airflow3_idioms),
    points=18, expected_from=expected_from, checklist=CHECKLIST, runs=2,
    arrival=Arrival(source="orders.csv", target="incoming/orders.csv", after=(ARRIVES_AFTER, None)),
)
