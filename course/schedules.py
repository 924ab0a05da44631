"""When would a DAG run? Ask Airflow's own timetables, without a running lab.

    from course import schedules
    schedules.next_run_times("0 3 * * *", n=3)          # the next three 03:00 UTC runs
    schedules.same_timing("@daily", "0 0 * * *")        # True
    schedules.describe("*/15 9-17 * * 1-5")             # 'every 15 minutes, between 09:00 and ...'

A schedule is anything a DAG's ``schedule=`` accepts: a preset ("@daily"), a cron string, a
``timedelta``, a timetable object (``CronTriggerTimetable``, ``CronDataIntervalTimetable``, ...,
also ``dag.timetable`` of a built DAG), ``"@once"`` or ``None``. Strings and timedeltas become
the timetable Airflow itself would build for ``DAG(schedule=...)``: in Airflow 3 that is a
``CronTriggerTimetable`` for cron strings and presets and a ``DeltaTriggerTimetable`` for a
timedelta, unless ``[scheduler] create_cron_data_intervals`` is switched on.

Run times are the moments a run is *created* (``run_after``), for a DAG that is already running on
its schedule. They are compared at those moments, so ``"@daily"`` and
``CronDataIntervalTimetable("0 0 * * *", "UTC")`` have the same timing even though the second one
labels each run with the day before.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pendulum
from airflow.exceptions import AirflowTimetableInvalid
from airflow.sdk import DAG
from airflow.sdk.bases.timetable import BaseTimetable
from airflow.serialization.encoders import coerce_to_core_timetable
from airflow.timetables.base import DagRunInfo, TimeRestriction, Timetable
from airflow.timetables.simple import ContinuousTimetable, OnceTimetable
from airflow.utils.dates import cron_presets
from cron_descriptor import CasingTypeEnum, ExpressionDescriptor, FormatException, MissingFieldException
from croniter import CroniterBadCronError, CroniterBadDateError, croniter

REFERENCE = datetime(2023, 10, 1, tzinfo=timezone.utc)
"""A fixed starting point, so that comparisons give the same answer on every day."""

CRON_FIELDS = ("minute", "hour", "day of month", "month", "day of week")
FIELD_ALIASES = {"month": " or JAN-DEC", "day of week": " or SUN-SAT"}

ACCEPTED = ("a cron string with 5 fields such as '0 3 * * *', a preset ("
            + ", ".join(sorted(cron_presets)) + "), a datetime.timedelta, a timetable object "
            "such as CronTriggerTimetable('0 3 * * *', timezone='UTC'), a list of assets, '@once' or None")

# Asking Airflow for runs never loops forever on a sane timetable; this bounds a broken one.
_MAX_STEPS = 100_000


def to_timetable(schedule: Any) -> Timetable:
    """The Airflow timetable a DAG with ``schedule=schedule`` would use, checked for validity."""
    if not isinstance(schedule, str) and hasattr(schedule, "timetable"):
        schedule = schedule.timetable  # a whole DAG
    if isinstance(schedule, BaseTimetable) or hasattr(schedule, "next_dagrun_info"):
        # dag.timetable is the DAG-file (SDK) flavour; the core flavour is the one that can
        # compute runs, and Airflow converts between them through its serialization.
        try:
            table = coerce_to_core_timetable(schedule)
        except Exception as exc:
            raise ValueError(f"Airflow could not convert {schedule!r} into the timetable its "
                             f"scheduler uses ({type(exc).__name__}: {exc}).") from exc
    else:
        try:
            # max_active_runs=1 because Airflow requires it for "@continuous"
            dag = DAG(dag_id="schedule_preview", schedule=schedule, max_active_runs=1)
            table = coerce_to_core_timetable(dag.timetable)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Airflow does not accept schedule={schedule!r} ({type(schedule).__name__}): "
                             f"{str(exc).rstrip('.')}. Accepted: {ACCEPTED}.") from exc
    if not hasattr(table, "next_dagrun_info"):
        raise ValueError(f"{schedule!r} is not a timetable Airflow can schedule with. "
                         f"Accepted: {ACCEPTED}.")
    _check(table, schedule)
    return table


def _check(table: Timetable, schedule: Any) -> None:
    """Raise ValueError naming the problem when Airflow would reject the timetable."""
    expression = _cron_expression(table)
    if expression is not None:
        _check_cron(expression, schedule)
    try:
        table.validate()
    except AirflowTimetableInvalid as exc:
        raise ValueError(f"Airflow rejects schedule {schedule!r}: {str(exc).rstrip('.')}. "
                         f"Accepted: {ACCEPTED}.") from exc


def _check_cron(expression: str, schedule: Any) -> None:
    try:
        columns = len(croniter(expression).expanded)
    except CroniterBadCronError as exc:
        raise ValueError(_cron_problem(expression, schedule, exc)) from exc
    if columns > 5:
        # Airflow's validation lets this through, but croniter reads a 6th field as *seconds*:
        # "0 0 * * * *" would start a run every second of the first minute of each day.
        raise ValueError(f"{schedule!r} has {columns} fields; Airflow cron schedules have 5 "
                         f"({', '.join(CRON_FIELDS)}). A 6th field would be read as seconds.")


def _cron_problem(expression: str, schedule: Any, exc: Exception) -> str:
    """Explain a cron error, naming the field at fault and its range when one field is."""
    fields = expression.split()
    intro = f"{schedule!r} is not a valid cron expression"
    if len(fields) == 1 and expression.startswith("@"):
        return (f"{intro}: Airflow knows no preset {expression!r}. Presets: "
                f"{', '.join(sorted(cron_presets))}, @once, @continuous.")
    if len(fields) != 5:
        return (f"{intro}: it has {len(fields)} field(s), a cron expression has 5 "
                f"({', '.join(CRON_FIELDS)}), e.g. '0 3 * * *' for every day at 03:00. "
                f"Presets: {', '.join(sorted(cron_presets))}.")
    for index, (name, value) in enumerate(zip(CRON_FIELDS, fields, strict=True)):
        probe = ["*"] * 5
        probe[index] = value
        try:
            croniter(" ".join(probe))
        except CroniterBadCronError:
            low, high = croniter.RANGES[index]
            return (f"{intro}: the {name} field (field {index + 1}) is {value!r}, but {name} must "
                    f"be {low}-{high}{FIELD_ALIASES.get(name, '')} (croniter says: {exc}).")
    return f"{intro}: {exc}. Fields: {', '.join(CRON_FIELDS)}."


def _cron_expression(table: Timetable) -> str | None:
    data = _serialized(table)
    expression = data.get("expression")
    return expression if isinstance(expression, str) else None


def _serialized(table: Timetable) -> dict:
    try:
        return table.serialize()
    except Exception:  # a custom timetable may not serialize; it then has no cron to inspect
        return {}


def next_run_times(schedule: Any, n: int = 5, after: datetime | None = None) -> list[datetime]:
    """The next ``n`` times (UTC) strictly after ``after`` (default: now) when a run starts.

    ``None`` and asset schedules give ``[]``: no run is ever created by the clock. ``"@once"``
    gives ``[after]``: the single run happens as soon as it may, and ``after`` stands for the
    DAG's start date. A timedelta has no fixed phase, so ``after`` also stands for the previous
    run: ``timedelta(hours=2)`` after 10:00 gives 12:00, 14:00, ...
    """
    table = to_timetable(schedule)
    start = _utc_pendulum(after)
    if n <= 0:
        return []
    if isinstance(table, ContinuousTimetable):
        raise ValueError("'@continuous' has no run times to list: Airflow starts the next run as "
                         "soon as the previous one finishes.")
    first, earliest = _first_run(table, schedule, start)
    if first is None:
        return []
    if isinstance(table, OnceTimetable):
        return [_utc(first.run_after)]
    return _runs_after(table, schedule, first, earliest, start, n)


def _first_run(table: Timetable, schedule: Any,
               start: pendulum.DateTime) -> tuple[DagRunInfo | None, pendulum.DateTime]:
    """A run of a DAG already on this schedule, early enough that none after ``start`` is missed.

    Also returns the ``earliest`` bound (the DAG's start date, in effect) that produced it; the
    following runs must be asked for with the same bound, as the scheduler does.
    """
    earliest = start
    info = _ask(table, schedule, None, earliest)
    step = None
    for _ in range(64):
        if info is None or not (info.run_after > info.data_interval.start > start):
            break
        # Data-interval timetables align the *interval start* to ``earliest`` and run at its end,
        # so the run ending the interval that began before ``start`` would be missed: look back.
        step = step * 2 if step else info.run_after - info.data_interval.start
        earliest = start - step
        info = _ask(table, schedule, None, earliest)
    return info, earliest


def _runs_after(table: Timetable, schedule: Any, info: DagRunInfo, earliest: pendulum.DateTime,
                start: pendulum.DateTime, n: int) -> list[datetime]:
    runs: list[datetime] = []
    previous = None
    for _ in range(_MAX_STEPS):
        if info is None or len(runs) == n:
            return runs
        if previous is not None and info.run_after <= previous:
            raise RuntimeError(f"The timetable of {schedule!r} does not move forward: it gave "
                               f"{info.run_after} after {previous}.")
        if info.run_after > start:
            runs.append(_utc(info.run_after))
        previous = info.run_after
        info = _ask(table, schedule, info.data_interval, earliest)
    return runs


def _ask(table: Timetable, schedule: Any, last: Any, earliest: pendulum.DateTime) -> DagRunInfo | None:
    # catchup=True keeps Airflow from consulting the wall clock, so answers are reproducible.
    try:
        return table.next_dagrun_info(last_automated_data_interval=last,
                                      restriction=TimeRestriction(earliest, None, True))
    except CroniterBadDateError as exc:
        raise ValueError(f"{schedule!r} never fires: no date matches its day-of-month and month "
                         "fields together (30 February, for example, never comes).") from exc


def _utc_pendulum(moment: datetime | None) -> pendulum.DateTime:
    if moment is None:
        return pendulum.now("UTC")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"after={moment!r} has no timezone; pass an aware datetime such as "
                         "pendulum.datetime(2023, 10, 1, tz='UTC').")
    return pendulum.instance(moment).in_timezone("UTC")


def _utc(moment: datetime) -> datetime:
    return datetime.fromtimestamp(moment.timestamp(), tz=timezone.utc)


def same_timing(a: Any, b: Any, n: int = 20, after: datetime = REFERENCE) -> bool:
    """True when both schedules start their next ``n`` runs after ``after`` at the same moments."""
    return next_run_times(a, n, after) == next_run_times(b, n, after)


def describe(schedule: Any) -> str:
    """Short English for a schedule, e.g. 'every day at 03:00 UTC' for '0 3 * * *'."""
    table = to_timetable(schedule)
    data = _serialized(table)
    expression = _cron_expression(table)
    if expression is not None:
        return _describe_cron(expression, str(data.get("timezone") or "UTC"))
    delta = data.get("delta")
    if isinstance(delta, (int, float)):
        return f"every {_duration(timedelta(seconds=delta))}"
    if "delta" in data:
        return f"every {table.summary}"
    text = getattr(table, "description", "") or table.summary
    return text[:1].lower() + text[1:].rstrip(".")


def _describe_cron(expression: str, zone: str) -> str:
    fields = expression.split()
    try:
        if len(fields) != 5:
            raise FormatException(expression)  # presets croniter knows but cron-descriptor doesn't
        if fields[2] != "*" and fields[4] != "*":
            # cron fires when *either* day field matches; cron-descriptor would read "and".
            on_day = _cron_text(" ".join([*fields[:4], "*"]))
            on_weekday = _cron_text(" ".join([*fields[:2], "*", fields[3], fields[4]]))
            text = f"{on_day}; also {on_weekday}"
        else:
            text = _cron_text(expression)
    except (FormatException, MissingFieldException):
        return f"cron {expression!r} ({zone})"
    parts = text.split(", ")
    if len(parts) > 1 and parts[-1] == "every day":
        # verbose mode ends in "every day"; "every day at 03:00" reads better, "every hour" is enough
        first = f"every day {parts[0]}" if re.fullmatch(r"at \d\d:\d\d", parts[0]) else parts[0]
        parts = [first, *parts[1:-1]]
    text = ", ".join(parts)
    # The zone belongs to the last clock time in the sentence: "between 09:00 and 17:59 UTC".
    with_zone, count = re.subn(r"(\d\d:\d\d)(?!.*\d\d:\d\d)", rf"\1 {zone}", text)
    return with_zone if count else f"{text} ({zone})"


def _cron_text(expression: str) -> str:
    text = ExpressionDescriptor(expression, casing_type=CasingTypeEnum.Sentence,
                                use_24hour_time_format=True, verbose=True).get_description()
    return text[:1].lower() + text[1:]


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    units = [("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)]
    parts = []
    for name, size in units:
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount} {name}{'s' if amount != 1 else ''}")
    if len(parts) == 1 and parts[0].startswith("1 "):
        return parts[0][2:]  # "every hour", not "every 1 hour"
    return " ".join(parts) or str(delta)
