"""Correct: a MultipleCronTriggerTimetable — 09:00-16:45 from one cron, the 17:xx runs from another."""

from __future__ import annotations

import pendulum

from airflow.sdk import DAG, MultipleCronTriggerTimetable, task

with DAG(
    dag_id="frequent_pipeline",
    schedule=MultipleCronTriggerTimetable("*/15 9-16 * * MON-FRI", "0,15,30,45 17 * * MON-FRI",
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
