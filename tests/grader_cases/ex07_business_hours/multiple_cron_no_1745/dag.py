"""Wrong: a MultipleCronTriggerTimetable whose second cron runs at 17:00 and 17:30 only."""

from __future__ import annotations

import pendulum

from airflow.sdk import DAG, MultipleCronTriggerTimetable, task

with DAG(
    dag_id="frequent_pipeline",
    schedule=MultipleCronTriggerTimetable("*/15 9-16 * * MON-FRI", "0,30 17 * * MON-FRI",
                                          timezone="UTC"),
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
) as dag:

    @task
    def report_slot(*, logical_date=None) -> str:
        return f"{logical_date:%Y-%m-%d %H:%M}"

    report_slot()


if __name__ == "__main__":
    dag.test()
