"""Right, with advice: ``CronDataIntervalTimetable`` keeps Airflow 2's labelling of runs."""

from __future__ import annotations

import pendulum

from airflow.sdk import DAG, CronDataIntervalTimetable, task

with DAG(
    dag_id="frequent_pipeline",
    schedule=CronDataIntervalTimetable("*/15 9-17 * * 1-5", timezone="UTC"),
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
) as dag:

    @task
    def report_slot(**context) -> str:
        return f"{context['logical_date']:%Y-%m-%d %H:%M}"

    report_slot()


if __name__ == "__main__":
    dag.test()
