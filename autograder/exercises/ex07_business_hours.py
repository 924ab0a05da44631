"""Exercise 7: every 15 minutes during business hours, and the run's logical_date."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from dateutil import parser as dateparser

from typing import Any

from autograder.checks import check
from autograder.factories import returns
from autograder.common import (COMMON_HEAD, COMMON_SCHEDULE, airflow3_idioms,
                               tasks_succeeded)
from autograder.exercises import Exercise, dag_section
from autograder.facts import Facts
from autograder.config import RUN_TIMES, SCHEDULE_REFERENCE
from autograder.values import describe_value

SCHEDULE = "*/15 9-17 * * 1-5"
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
WEEK_START = datetime.fromisoformat(SCHEDULE_REFERENCE)  # a Sunday
WEEK_END = WEEK_START + timedelta(days=7)


def _zone_of(schedule: str) -> str:
    """The time zone a timetable's description names (UTC when it names none)."""
    zone = re.search(r"timezone=(?:Timezone\()?'([^']+)'", schedule)
    return zone.group(1) if zone else "UTC"


def _in_week(stamps: list[str], end: datetime) -> list[datetime]:
    return [t for t in map(datetime.fromisoformat, stamps) if t < end]


def _names(values: Iterable[int], fmt: str = "{}") -> str:
    return ", ".join(fmt.format(v) for v in sorted(values))


def _differences(have: list[datetime], want: list[datetime]) -> list[str]:
    """The fields (days, hours, minutes) on which two lists of run times differ, in words."""
    days, want_days = {r.weekday() for r in have}, {r.weekday() for r in want}
    hours, want_hours = {r.hour for r in have}, {r.hour for r in want}
    minutes, want_minutes = {r.minute for r in have}, {r.minute for r in want}
    found = []
    if days - want_days:
        found.append(f"it also runs on {_names_of_days(days - want_days)} (day of week: 1-5 is "
                     "Monday to Friday, 0 is Sunday)")
    if want_days - days:
        found.append(f"it never runs on {_names_of_days(want_days - days)}")
    if hours - want_hours:
        found.append(f"it also runs during hour(s) {_names(hours - want_hours, '{:02d}:xx')}")
    if want_hours - hours:
        missing = want_hours - hours
        found.append(f"it never runs during hour(s) {_names(missing, '{:02d}:xx')}"
                     + (" — the hour field 9-17 includes 17, so the last run of the day is 17:45"
                        if 17 in missing else ""))
    if minutes != want_minutes:
        found.append(f"it runs at minute(s) {_names(minutes, ':{:02d}')} past the hour, the exercise "
                     "at :00, :15, :30 and :45 (minute field */15)")
    return found


def _moments(times: list[datetime], shown: int = 4) -> str:
    text = ", ".join(f"{t:%a %H:%M}" for t in times[:shown])
    return text + (f" and {len(times) - shown} more" if len(times) > shown else "")


def _names_of_days(days: set[int]) -> str:
    return ", ".join(DAYS[d] for d in sorted(days))


@check("schedule.week", title="Over a whole week, runs are exactly Mon–Fri, 09:00–17:45 UTC, every "
       "15 minutes", points=2, needs=["import.dag_id"],
       hint=f"schedule=\"{SCHEDULE}\": minute */15, hour 9-17, any day of month, any month, day of "
            "week 1-5. The cron times are in UTC unless the timetable says otherwise.")
def whole_week(facts: Facts) -> str:
    """Judged on the times the DAG's own timetable fires (any kind of timetable), not its text."""
    dag = facts.dag
    assert dag.run_times, (f"Your DAG has no scheduled runs ({dag.schedule_text}). Set "
                           f"`schedule=\"{SCHEDULE}\"`.")
    # The runs listed may end before the week does (a busy schedule): judge the part both cover.
    end = min([WEEK_END, *(datetime.fromisoformat(times[-1]) + timedelta(seconds=1)
                           for times in (dag.run_times, dag.expected_run_times)
                           if len(times) >= RUN_TIMES)])
    have, want = _in_week(dag.run_times, end), _in_week(dag.expected_run_times, end)
    if have == want:
        return f"{len(want)} runs a week, Monday–Friday 09:00–17:45 UTC."
    zone = _zone_of(dag.schedule)
    utc = zone.upper() in ("UTC", "ETC/UTC")
    # Judge the fields in the schedule's own time zone; then say what the zone does.
    found = _differences(have if utc else [r.astimezone(ZoneInfo(zone)) for r in have], want)
    if not utc and have:
        local = have[0].astimezone(ZoneInfo(zone))
        found.append(f"its times are in {zone}, not UTC: its first run of the week, {local:%a %H:%M} "
                     f"there, is {have[0]:%a %H:%M} UTC. Give the timetable timezone=\"UTC\" or use "
                     "a cron string")
    if not found:
        missing = sorted(set(want) - set(have))
        extra = sorted(set(have) - set(want))
        if missing:
            found.append(f"it never runs at {_moments(missing)}")
        if extra:
            found.append(f"it also runs at {_moments(extra)}")
    span = "week" if end == WEEK_END else f"days up to {end:%a %H:%M}"
    raise AssertionError(
        f"In the {span} from Sunday {WEEK_START:%Y-%m-%d}, your schedule ({dag.schedule_text}) runs "
        f"{len(have)} times, the exercise's {len(want)} times: " + "; ".join(found) + ".")


@check("advice.timetable", title="Cron runs are labelled with their own time (advice)", points=0,
       visibility="instructor",
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


SLOT_FORMAT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d")


@returns("report_slot", "run.output",
          title="report_slot returns the run's logical date and time", points=2,
          hint="context[\"logical_date\"].strftime(\"%Y-%m-%d %H:%M\") in a task that accepts **context.")
def slot(facts: Facts, got: Any) -> str:
    run_at = facts.exercise.run_date
    want = f"{run_at:%Y-%m-%d %H:%M}"
    if isinstance(got, dict) and isinstance(got.get("timestamp"), int | float):
        # A datetime returned as it is: Airflow stored it with its timestamp.
        moment = datetime.fromtimestamp(got["timestamp"], tz=timezone.utc)
        assert moment == run_at, (f"`report_slot` returned the datetime {moment:%Y-%m-%d %H:%M} UTC; "
                                  f"the graded run's logical date is {want} UTC: read "
                                  "context[\"logical_date\"].")
        return (f"`report_slot` returned the datetime {want} UTC itself; as text, "
                ".strftime(\"%Y-%m-%d %H:%M\"), it reads better in logs and emails.")
    assert isinstance(got, str) and got.strip(), (
        f"`report_slot` returned {describe_value(got)}; return the logical date as text, "
        f"expected {want!r}.")
    text = got.strip()
    if text == want:
        return f"`report_slot` returned {text!r} for the run of {want} UTC."
    moment = _as_datetime(text)
    twelve = f"{run_at:%Y-%m-%d %I:%M}"
    if text.startswith(twelve):
        why = (f"that is a 12-hour clock: %I prints {run_at:%I} for {run_at:%H}:00. Write the hour "
               "with %H")
    elif moment is not None and moment == run_at:
        why = ("that is the right moment in another format; the exercise fixes the format "
               "\"YYYY-MM-DD HH:MM\": strftime(\"%Y-%m-%d %H:%M\")")
    elif text == run_at.date().isoformat():
        why = ("that is `ds`, the day only. A DAG that runs every 15 minutes needs the time too: "
               "use context[\"logical_date\"]")
    elif moment is not None and abs(moment - datetime.now(timezone.utc)) < timedelta(hours=14):
        why = ("that is the clock's time, not the run's. A run keeps its logical_date even when it "
               "starts late or is re-run: read context[\"logical_date\"]")
    elif moment is None:
        why = "the grader could not read it as a date and time"
    else:
        why = "read it from context[\"logical_date\"]"
    raise AssertionError(f"`report_slot` returned {text!r}, expected {want!r} (the graded run's "
                         f"logical date, UTC): {why}.")


CHECKLIST = (
    dag_section("frequent_pipeline",
                "runs every 15 minutes from 09:00 to 17:45 UTC, Monday to Friday, and at no other time:\n"
                '      `schedule="*/15 9-17 * * 1-5"` (or any equivalent: `0,15,30,45 9-17 * * MON-FRI`,\n'
                '      `CronTriggerTimetable("*/15 9-17 * * 1-5", timezone="UTC")`, ...)',
                schedule_checks=("schedule.timing", "schedule.week")),
    ("**One task**", (
        ("""`report_slot` returns the run's **logical date** and time as text, exactly `"YYYY-MM-DD HH:MM"`
      (24-hour clock): `context["logical_date"].strftime("%Y-%m-%d %H:%M")`. For the run of 09:15
      on Monday 2 October 2023 that is `"2023-10-02 09:15"`.""",
         ("structure.tasks", "structure.edges", "run.output")),
    ), ""),
)

EXERCISE = Exercise(
    id="ex07_business_hours", title="Exercise 7: scheduling business hours",
    dag_id="frequent_pipeline", tasks=frozenset({"report_slot"}), edges=frozenset(),
    schedule=SCHEDULE, schedule_text="every 15 minutes, 09:00–17:45 UTC, Monday to Friday",
    checks=(*COMMON_HEAD, *COMMON_SCHEDULE, whole_week, trigger_timetable, tasks_succeeded, slot,
            airflow3_idioms),
    points=13, checklist=CHECKLIST,
)
