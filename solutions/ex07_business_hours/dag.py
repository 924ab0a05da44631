"""Business hours: a DAG that runs every 15 minutes, 09:00–17:45 UTC, Monday to Friday.

Reference solution for exercise 7. The cron expression ``*/15 9-17 * * 1-5`` reads, field by field:

* minute ``*/15`` — 0, 15, 30 and 45;
* hour ``9-17`` — 9 to 17 *inclusive*, so the last run of the day is 17:45;
* day of month ``*`` and month ``*`` — any;
* day of week ``1-5`` — Monday (1) to Friday (5); Sunday is 0.

In Airflow 3 a cron string becomes a ``CronTriggerTimetable``: each run's ``logical_date`` is the
moment it was scheduled for (the run of 09:15 has logical_date 09:15), and there is no data
interval to wait for, unlike Airflow 2.
"""

from __future__ import annotations

import pendulum

from airflow.sdk import DAG, task

with DAG(
    dag_id="frequent_pipeline",
    description="Every 15 minutes during business hours",
    schedule="*/15 9-17 * * 1-5",  # every 15 min, 09:00-17:45 UTC, Monday-Friday
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
    tags=["week14", "exercise"],
) as dag:

    @task
    def report_slot(**context) -> str:
        """Say which 15-minute slot this run is for."""
        # The run's own time, not the clock: a late or re-run slot keeps its logical_date.
        slot = context["logical_date"].strftime("%Y-%m-%d %H:%M")
        print(f"Processing the slot of {slot}")
        return slot

    report_slot()


if __name__ == "__main__":
    dag.test()
