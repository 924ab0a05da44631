"""Schedules previewed through Airflow's own timetables: run times, equal timings, descriptions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from airflow.sdk import (
    DAG,
    Asset,
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    DeltaDataIntervalTimetable,
)
from airflow.timetables.interval import CronDataIntervalTimetable as CoreCronDataIntervalTimetable
from airflow.timetables.trigger import CronTriggerTimetable as CoreCronTriggerTimetable

from course.schedules import describe, next_run_times, same_timing, to_timetable

UTC = timezone.utc


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_daily_cron_runs_at_three_every_day():
    assert next_run_times("0 3 * * *", 3, after=at(2023, 10, 1)) == [
        at(2023, 10, 1, 3), at(2023, 10, 2, 3), at(2023, 10, 3, 3)]


def test_after_is_excluded_when_it_falls_on_a_run():
    assert next_run_times("0 3 * * *", 2, after=at(2023, 10, 1, 3)) == [
        at(2023, 10, 2, 3), at(2023, 10, 3, 3)]


def test_office_hours_skip_the_weekend():
    friday_evening = at(2023, 10, 6, 17, 50)
    assert next_run_times("*/15 9-17 * * 1-5", 4, after=friday_evening) == [
        at(2023, 10, 9, 9, 0), at(2023, 10, 9, 9, 15), at(2023, 10, 9, 9, 30), at(2023, 10, 9, 9, 45)]


def test_times_are_aware_utc_even_for_another_timezone():
    amsterdam = CronTriggerTimetable("0 3 * * *", timezone="Europe/Amsterdam")
    runs = next_run_times(amsterdam, 2, after=at(2023, 10, 28))
    # 03:00 in Amsterdam is 01:00 UTC in summer time and 02:00 UTC once it ends on 29 October.
    assert runs == [at(2023, 10, 28, 1), at(2023, 10, 29, 2)]
    assert all(run.tzinfo is UTC for run in runs)


def test_after_in_another_timezone_means_the_same_moment():
    plus_two = timezone(timedelta(hours=2))
    assert next_run_times("0 3 * * *", 1, after=datetime(2023, 10, 1, 4, tzinfo=plus_two)) == [
        at(2023, 10, 1, 3)]
    assert next_run_times("0 3 * * *", 1, after=datetime(2023, 10, 1, 5, tzinfo=plus_two)) == [
        at(2023, 10, 2, 3)]


def test_data_interval_timetable_runs_at_the_end_of_each_interval():
    # Airflow lines the first *interval* up with `earliest`; a DAG already on this schedule still
    # starts a run at the next midnight.
    assert next_run_times(CronDataIntervalTimetable("0 0 * * *", "UTC"), 2, after=at(2023, 10, 1, 12)) == [
        at(2023, 10, 2), at(2023, 10, 3)]
    assert next_run_times(CronDataIntervalTimetable("@monthly", "UTC"), 2, after=at(2023, 3, 15)) == [
        at(2023, 4, 1), at(2023, 5, 1)]


def test_timedelta_counts_from_after():
    assert next_run_times(timedelta(hours=2), 3, after=at(2023, 10, 1, 10)) == [
        at(2023, 10, 1, 12), at(2023, 10, 1, 14), at(2023, 10, 1, 16)]
    assert next_run_times(DeltaDataIntervalTimetable(timedelta(hours=2)), 2, after=at(2023, 10, 1, 10)) == [
        at(2023, 10, 1, 12), at(2023, 10, 1, 14)]


def test_none_never_runs_and_once_runs_once_at_the_start():
    assert next_run_times(None, 5, after=at(2023, 10, 1)) == []
    assert next_run_times("@once", 5, after=at(2023, 10, 1, 8)) == [at(2023, 10, 1, 8)]
    assert next_run_times([Asset("s3://bucket/orders.csv")], 5, after=at(2023, 10, 1)) == []


def test_timetable_of_a_built_dag_and_the_dag_itself():
    dag = DAG(dag_id="hourly", schedule="@hourly")
    expected = [at(2023, 10, 1, 1), at(2023, 10, 1, 2)]
    assert next_run_times(dag.timetable, 2, after=at(2023, 10, 1)) == expected
    assert next_run_times(dag, 2, after=at(2023, 10, 1)) == expected


def test_cron_strings_become_trigger_timetables_in_airflow_3():
    table = to_timetable("@daily")
    assert isinstance(table, CoreCronTriggerTimetable)
    assert table.summary == "0 0 * * *"


def test_default_after_is_now():
    before = datetime.now(UTC)
    runs = next_run_times("* * * * *", 2)
    assert before < runs[0] <= before + timedelta(minutes=1)
    assert runs[1] - runs[0] == timedelta(minutes=1)


@pytest.mark.parametrize("other", [
    "0 0 * * *",
    CronTriggerTimetable("0 0 * * *", timezone="UTC"),
    CronDataIntervalTimetable("0 0 * * *", "UTC"),
    CoreCronDataIntervalTimetable("0 0 * * *", "UTC"),
    DAG(dag_id="midnight", schedule="0 0 * * *").timetable,
])
def test_same_timing_as_daily(other):
    assert same_timing("@daily", other)
    assert same_timing(other, "@daily")


@pytest.mark.parametrize(("a", "b"), [
    ("@daily", "0 3 * * *"),
    ("@daily", CronTriggerTimetable("0 0 * * *", timezone="Europe/Amsterdam")),
    ("@weekly", "0 0 * * 1"),
    ("@hourly", "30 * * * *"),
    ("@once", None),
])
def test_different_timing(a, b):
    assert not same_timing(a, b)
    assert not same_timing(b, a)


def test_sunday_is_both_zero_and_seven():
    assert same_timing("@weekly", "0 0 * * 7")


def test_timedelta_matches_a_cron_only_when_the_phase_matches():
    assert same_timing(timedelta(days=1), "@daily", after=at(2023, 10, 1))
    assert not same_timing(timedelta(days=1), "@daily", after=at(2023, 10, 1, 12))


@pytest.mark.parametrize(("schedule", "text"), [
    ("0 3 * * *", "every day at 03:00 UTC"),
    ("@daily", "every day at 00:00 UTC"),
    ("@hourly", "every hour (UTC)"),
    ("30 2 * * 1", "at 02:30 UTC, only on Monday"),
    ("*/15 9-17 * * 1-5", "every 15 minutes, between 09:00 and 17:59 UTC, Monday through Friday"),
    (CronTriggerTimetable("0 3 * * *", timezone="Europe/Amsterdam"), "every day at 03:00 Europe/Amsterdam"),
    (CronDataIntervalTimetable("0 3 * * *", "UTC"), "every day at 03:00 UTC"),
    (timedelta(hours=2), "every 2 hours"),
    (timedelta(days=1), "every day"),
    (timedelta(minutes=90), "every 1 hour 30 minutes"),
    (None, "never, external triggers only"),
    ("@once", "once, as soon as possible"),
])
def test_describe(schedule, text):
    assert describe(schedule) == text


def test_describe_says_either_day_field_fires():
    text = describe("0 0 1 * 1")
    assert "day 1 of the month" in text and "also" in text and "Monday" in text


@pytest.mark.parametrize(("schedule", "fragments"), [
    ("0 25 * * *", ["'0 25 * * *'", "hour field", "'25'", "0-23"]),
    ("61 * * * *", ["minute field", "0-59"]),
    ("0 0 32 * *", ["day of month field", "1-31"]),
    ("0 0 * 13 *", ["month field", "1-12 or JAN-DEC"]),
    ("0 0 * * 8", ["day of week field", "0-6 or SUN-SAT"]),
    ("every day", ["'every day'", "2 field(s)", "minute, hour, day of month, month, day of week"]),
    ("@fortnightly", ["no preset '@fortnightly'", "@daily"]),
    ("0 0 * * * *", ["6 fields", "seconds"]),
    (42, ["schedule=42", "int", "Accepted:", "cron string"]),
    (timedelta(0), ["must be positive"]),
])
def test_bad_schedules_are_explained(schedule, fragments):
    with pytest.raises(ValueError) as error:
        next_run_times(schedule, 1, after=at(2023, 10, 1))
    for fragment in fragments:
        assert fragment in str(error.value)


def test_a_cron_that_never_matches():
    with pytest.raises(ValueError, match="never fires"):
        next_run_times("0 0 30 2 *", 1, after=at(2023, 10, 1))


def test_continuous_has_no_times_but_a_description():
    with pytest.raises(ValueError, match="previous one finishes"):
        next_run_times("@continuous", 1, after=at(2023, 10, 1))
    assert describe("@continuous") == "as frequently as possible, but only one run at a time"


def test_naive_after_is_refused():
    with pytest.raises(ValueError, match="no timezone"):
        next_run_times("@daily", 1, after=datetime(2023, 10, 1))
