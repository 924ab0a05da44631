"""Exercise 7: every 15 minutes during business hours, and the run's logical_date."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter
from dateutil import parser as dateparser

from autograder.checks import check
from autograder.common import (COMMON_HEAD, COMMON_SCHEDULE, airflow3_idioms,
                               tasks_succeeded)
from autograder.exercises import Exercise
from autograder.facts import Facts
from autograder.runner import RUN_DATE, SCHEDULE_REFERENCE
from autograder.values import describe_value

SCHEDULE = "*/15 9-17 * * 1-5"
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
WANT_DAYS, WANT_HOURS, WANT_MINUTES = set(range(5)), set(range(9, 18)), {0, 15, 30, 45}
MAX_RUNS = 2100  # a week of runs every 5 minutes; a busier schedule is judged on what fits
RUN_AT = datetime.fromisoformat(RUN_DATE)


def _week_start() -> datetime:
    return datetime.fromisoformat(SCHEDULE_REFERENCE)


def _cron_of(schedule: str) -> tuple[str, str] | None:
    """The cron expression and time zone of a cron timetable, as Airflow describes the DAG's own.

    None when the description does not show both plainly (another kind of timetable, or a time
    zone given as a fixed offset): the caller then falls back to the runs the runner listed.
    """
    expression = re.search(r"expression='([^']+)'", schedule)
    zone = re.search(r"timezone=(?:Timezone\()?'([^']+)'", schedule)
    if expression is None or (zone is None and "timezone=" in schedule):
        return None
    return expression.group(1), zone.group(1) if zone else "UTC"


def _week_runs(expression: str, zone: str) -> list[datetime]:
    """When a cron schedule runs during one whole week (Sunday to Sunday, UTC), in UTC."""
    # croniter, not Airflow: importing Airflow here would reconfigure the grader's own logging.
    start = _week_start()
    end = start + timedelta(days=7)
    times = croniter(expression, start.astimezone(ZoneInfo(zone)) - timedelta(seconds=1))
    runs = []
    while len(runs) < MAX_RUNS:
        moment = times.get_next(datetime).astimezone(timezone.utc)
        if moment >= end:
            break
        runs.append(moment)
    return runs


def _names(values: Iterable[int], fmt: str = "{}") -> str:
    return ", ".join(fmt.format(v) for v in sorted(values))


def _differences(have: list[datetime]) -> list[str]:
    days = {r.weekday() for r in have}
    hours = {r.hour for r in have}
    minutes = {r.minute for r in have}
    found = []
    if days - WANT_DAYS:
        found.append(f"it also runs on {_names_of_days(days - WANT_DAYS)} (day of week: 1-5 is "
                     "Monday to Friday, 0 is Sunday)")
    if WANT_DAYS - days:
        found.append(f"it never runs on {_names_of_days(WANT_DAYS - days)}")
    if hours - WANT_HOURS:
        found.append(f"it also runs during hour(s) {_names(hours - WANT_HOURS, '{:02d}:xx')}")
    if WANT_HOURS - hours:
        missing = WANT_HOURS - hours
        found.append(f"it never runs during hour(s) {_names(missing, '{:02d}:xx')}"
                     + (" — the hour field 9-17 includes 17, so the last run of the day is 17:45"
                        if 17 in missing else ""))
    if minutes != WANT_MINUTES:
        found.append(f"it runs at minute(s) {_names(minutes, ':{:02d}')} past the hour, the exercise "
                     "at :00, :15, :30 and :45 (minute field */15)")
    return found


def _names_of_days(days: set[int]) -> str:
    return ", ".join(DAYS[d] for d in sorted(days))


def _first_runs_only(facts: Facts) -> str:
    """Judge a timetable that cannot be expanded here on the runs the runner listed."""
    dag = facts.dag
    assert dag.run_times == dag.expected_run_times and dag.run_times, (
        f"Your schedule ({dag.schedule_text}) does not run every 15 minutes during business "
        f"hours. Set `schedule=\"{SCHEDULE}\"`.")
    return f"The first {len(dag.run_times)} runs match (the whole week could not be listed)."


@check("schedule.week", title="Over a whole week, runs are exactly Mon–Fri, 09:00–17:45 UTC, every "
       "15 minutes", points=2, needs=["import.dag_id"],
       hint=f"schedule=\"{SCHEDULE}\": minute */15, hour 9-17, any day of month, any month, day of "
            "week 1-5. The cron times are in UTC unless the timetable says otherwise.")
def whole_week(facts: Facts) -> str:
    dag = facts.dag
    cron = _cron_of(dag.schedule)
    want = _week_runs(SCHEDULE, "UTC")
    if cron is None:
        return _first_runs_only(facts)
    expression, zone = cron
    try:
        have = _week_runs(expression, zone)
    except (ValueError, KeyError, CroniterError):  # ZoneInfoNotFoundError is a KeyError
        return _first_runs_only(facts)
    if have == want:
        return f"{len(want)} runs a week, Monday–Friday 09:00–17:45 UTC."
    utc = zone.upper() in ("UTC", "ETC/UTC")
    # Judge the fields in the schedule's own time zone; then say what the zone does.
    found = _differences(have if utc else [r.astimezone(ZoneInfo(zone)) for r in have])
    if not utc and have:
        local = have[0].astimezone(ZoneInfo(zone))
        found.append(f"its times are in {zone}, not UTC: its first run of the week, {local:%a %H:%M} "
                     f"there, is {have[0]:%a %H:%M} UTC. Give the timetable timezone=\"UTC\" or use "
                     "a cron string")
    if not found:
        found.append(f"it runs at other moments (first: {', '.join(f'{r:%a %H:%M}' for r in have[:3])})")
    count = f"{len(have)}{'+' if len(have) == MAX_RUNS else ''}"
    raise AssertionError(
        f"In the week from Sunday {_week_start():%Y-%m-%d}, `{expression}` runs {count} times, the "
        f"exercise's schedule {len(want)} times: " + "; ".join(found) + ".")


@check("advice.timetable", title="Cron runs are labelled with their own time (advice)", points=0,
       needs=["import.dag_id"])
def trigger_timetable(facts: Facts) -> None:
    schedule = facts.dag.schedule
    assert "DataIntervalTimetable" not in schedule, (
        "Your DAG uses a data-interval timetable (the Airflow 2 behaviour): each run's logical_date "
        "is the *start* of the 15 minutes before it, so the run at 09:15 reports 09:00. A cron "
        "string, or CronTriggerTimetable, labels each run with the moment it was scheduled for.")


def _as_datetime(text: str) -> datetime | None:
    try:
        moment = dateparser.parse(text)
    except (ValueError, OverflowError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@check("run.output", title="report_slot returns the run's logical date and time", points=2,
       needs=["run.tasks_succeeded"],
       hint="context[\"logical_date\"].strftime(\"%Y-%m-%d %H:%M\") in a task that accepts **context.")
def slot(facts: Facts) -> str:
    got = facts.run.xcoms.get("report_slot")
    want = f"{RUN_AT:%Y-%m-%d %H:%M}"
    if isinstance(got, dict) and isinstance(got.get("timestamp"), int | float):
        # A datetime returned as it is: Airflow stored it with its timestamp.
        moment = datetime.fromtimestamp(got["timestamp"], tz=timezone.utc)
        assert moment == RUN_AT, (f"`report_slot` returned the datetime {moment:%Y-%m-%d %H:%M} UTC; "
                                  f"the graded run's logical date is {want} UTC: read "
                                  "context[\"logical_date\"].")
        return (f"`report_slot` returned the datetime {want} UTC itself; as text, "
                ".strftime(\"%Y-%m-%d %H:%M\"), it reads better in logs and emails.")
    assert isinstance(got, str) and got.strip(), (
        f"`report_slot` returned {describe_value(got)}; return the logical date as text, "
        f"for example {want!r}.")
    text = got.strip()
    moment = _as_datetime(text)
    if moment is not None and moment == RUN_AT and re.search(r"\d:\d\d", text):
        return f"`report_slot` returned {text!r} for the run of {want} UTC."
    if text == RUN_AT.date().isoformat():
        why = ("that is `ds`, the day only. A DAG that runs every 15 minutes needs the time too: "
               "use context[\"logical_date\"]")
    elif moment is not None and abs(moment - datetime.now(timezone.utc)) < timedelta(hours=14):
        why = ("that is the clock's time, not the run's. A run keeps its logical_date even when it "
               "starts late or is re-run: read context[\"logical_date\"]")
    elif moment is None:
        why = "the grader could not read it as a date and time"
    else:
        why = "read it from context[\"logical_date\"]"
    raise AssertionError(f"`report_slot` returned {text!r}; the graded run's logical date is "
                         f"{want} UTC: {why}.")


EXERCISE = Exercise(
    id="ex07_business_hours",
    title="Exercise 7: scheduling business hours",
    dag_id="frequent_pipeline",
    tasks=frozenset({"report_slot"}),
    edges=frozenset(),
    schedule=SCHEDULE,
    schedule_text="every 15 minutes, 09:00–17:45 UTC, Monday to Friday",
    start_date=date(2023, 10, 1),
    catchup=False,
    checks=(*COMMON_HEAD, *COMMON_SCHEDULE, whole_week, trigger_timetable, tasks_succeeded, slot,
            airflow3_idioms),
)
