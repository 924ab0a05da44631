"""Wrong: the run's moment as an ISO timestamp (seconds, "T", time zone), not "YYYY-MM-DD HH:MM"."""

from __future__ import annotations

import pendulum

from airflow.sdk import dag, task


@dag(
    dag_id="frequent_pipeline",
    schedule="0,15,30,45 9-17 * * MON-FRI",
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
)
def frequent_pipeline():
    @task
    def report_slot(logical_date=None) -> str:
        return logical_date.isoformat()

    report_slot()


dag = frequent_pipeline()


if __name__ == "__main__":
    dag.test()
