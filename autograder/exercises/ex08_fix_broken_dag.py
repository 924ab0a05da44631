"""Exercise 8: debug an Airflow 2 DAG — removed arguments, a context key, a template, an edge."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from autograder import factories
from autograder.factories import returns
from autograder.common import COMMON_HEAD, COMMON_SCHEDULE, tasks_succeeded
from autograder.exercises import Exercise, chain
from autograder.facts import Facts
from autograder.values import as_int, describe_value

TASKS = ("extract", "transform", "report", "announce")


def expected_from(data: Path) -> dict[str, Any]:
    """The report the hidden events should produce on the graded run's date."""
    with open(data / "events.csv", newline="") as f:
        counts = dict(Counter(row["action"] for row in csv.DictReader(f)))
    return {"report": {"events": sum(counts.values()), "by_action": counts}}


def date_problem(got: object, want: str) -> str:
    """Why ``got`` is not the run's date ``want`` (YYYY-MM-DD): which day it is, which was expected."""
    text = str(got)
    try:
        day = date.fromisoformat(text[:10])
    except ValueError:
        return f"{text!r} is not a date written YYYY-MM-DD; expected {want!r}, the run's `{{{{ ds }}}}`"
    delta = (day - date.fromisoformat(want)).days
    if delta == 0:
        return f"{text!r} has more than the date: expected exactly {want!r} (YYYY-MM-DD)"
    when = {-1: "the day before the run", 1: "the day after the run"}.get(
        delta, f"{abs(delta)} days {'before' if delta < 0 else 'after'} the run")
    return (f"{text!r} is {day:%A %Y-%m-%d}, {when}; expected {want!r}, the run's logical date "
            "(`{{ ds }}`, or context[\"ds\"] in Python)")


@returns("report", "run.output",
          title="report returns the day's summary for the grading data", points=2,
          hint="report returns {'date': <the run's date, YYYY-MM-DD>, 'events': <number of events>, "
               "'by_action': <transform's counts>}.")
def report(facts: Facts, got: Any) -> str:
    want = {"date": facts.exercise.run_ds, **facts.expected["report"]}
    assert isinstance(got, dict), (f"`report` returned {describe_value(got)}; it must return the "
                                   "summary dict, as the starter's report did.")
    problems = []
    if str(got.get("date")) != want["date"]:
        problems.append(f"'date': {date_problem(got.get('date'), want['date'])}")
    if as_int(got.get("events")) != want["events"]:
        problems.append(f"'events' is {got.get('events')!r}, expected {want['events']}")
    counts = got.get("by_action")
    if not isinstance(counts, dict) or {k: as_int(v) for k, v in counts.items()} != want["by_action"]:
        problems.append(f"'by_action' is {describe_value(counts)}, expected {want['by_action']}")
    assert not problems, "On the grading data, report's summary: " + "; ".join(problems) + "."
    return f"Report for {want['date']}: {want['events']} events."


@returns("announce", "run.announce", title="announce names the run's date", points=1,
         hint="In a template, the run's date is {{ ds }} (YYYY-MM-DD) or {{ logical_date }}.")
def announce(facts: Facts, got: Any) -> str:
    text = "" if got is None else str(got).strip()
    run_ds = facts.exercise.run_ds
    assert run_ds in text, (f"`announce` printed {text!r}; for the graded run it must name the date "
                            f"{run_ds}, e.g. 'Event report for {run_ds} is ready'.")
    return f"`announce` printed {text!r}."


EXERCISE = Exercise(
    id="ex08_fix_broken_dag", title="Exercise 8: fix a broken DAG", dag_id="event_report",
    edges=chain(*TASKS), schedule="30 8 * * 1-5", schedule_text="at 08:30 UTC, Monday to Friday",
    checks=(*COMMON_HEAD, *COMMON_SCHEDULE, tasks_succeeded, report, announce,
            factories.airflow2_idioms(
                "fix.airflow3_idioms", title="No Airflow 2 idioms are left", points=1,
                intro="Airflow 2 idioms are still in the file:",
                outro="They log deprecation warnings today and break when the shims go.",
                hint="Import from airflow.sdk (DAG) and from the providers: "
                     "airflow.providers.standard.operators.bash|python.")),
    points=13, expected_from=expected_from,
)
