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
        rows = list(csv.DictReader(f))
    counts = dict(Counter(row["action"] for row in rows))
    return {"report": {"events": sum(counts.values()), "by_action": counts},
            "event_ids": [int(r["event_id"]) for r in rows]}


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
    want = f"Event report for {run_ds} is ready"
    if text == want:
        return f"`announce` printed {text!r}."
    why = (f"it names the date {run_ds} of the run, but not in the words asked for" if run_ds in text
           else f"for the graded run it must name the date {run_ds}, the run's `{{{{ ds }}}}`")
    raise AssertionError(f"`announce` printed {text!r}, expected {want!r}: {why}.")


@returns("transform", "run.transform", title="transform counts the events of each action", points=1,
         hint="Count the `action` of every row: dict(collections.Counter(row[\"action\"] for row in rows)).")
def counted(facts: Facts, got: Any) -> str:
    want = facts.expected["report"]["by_action"]
    have = {str(k): as_int(v) for k, v in got.items()} if isinstance(got, dict) else None
    assert have == want, (f"On the grading data, `transform` returned {describe_value(got)}; expected "
                          f"the number of events per action, {want}.")
    return f"{len(want)} actions counted."


CHECKLIST = (
    ("", (
        ("""`dag_id="event_report"`, runs at 08:30 UTC from Monday to Friday (`30 8 * * 1-5`), from
      2023-10-01, with `catchup=False`""",
         ("import.dag_id", "schedule.timing", "schedule.start_date", "schedule.catchup")),
        ("four tasks in one chain: `extract >> transform >> report >> announce`",
         ("structure.tasks", "structure.edges")),
        ("`extract` returns the rows of `data/events.csv` (columns `event_id,user_id,action`)",
         ("run.extract",)),
        ("""`transform` returns the number of events per action: `{"login": 3, "logout": 2, ...}`""",
         ("run.transform",)),
        ("""`report` returns the day's summary:
      ```python
      {"date": "2023-10-02", "events": 7, "by_action": {"login": 3, "purchase": 1, ...}}
      ```
      where `date` is the run's **logical date** (`YYYY-MM-DD`), not today's date""", ("run.output",)),
        ("`announce` prints exactly `Event report for <the run's date> is ready`", ("run.announce",)),
        ("""no Airflow 2 idioms are left: every import and argument in the Airflow 3 form (the grader
      runs ruff's Airflow 3 rules on the file)""", ("fix.airflow3_idioms",)),
    ), ""),
)

EXERCISE = Exercise(
    id="ex08_fix_broken_dag", title="Exercise 8: fix a broken DAG", dag_id="event_report",
    edges=chain(*TASKS), schedule="30 8 * * 1-5", schedule_text="at 08:30 UTC, Monday to Friday",
    checks=(*COMMON_HEAD, *COMMON_SCHEDULE, tasks_succeeded,
            factories.returns_rows("extract", "event_id", lambda facts: facts.expected["event_ids"],
                                   "events.csv"),
            counted, report, announce,
            factories.airflow2_idioms(
                "fix.airflow3_idioms", title="No Airflow 2 idioms are left", points=1,
                intro="Airflow 2 idioms are still in the file:",
                outro="They log deprecation warnings today and break when the shims go.",
                hint="Import from airflow.sdk (DAG) and from the providers: "
                     "airflow.providers.standard.operators.bash|python.")),
    points=15, expected_from=expected_from, checklist=CHECKLIST,
)
