"""Right: an equivalent cron with names (``0,15,30,45 9-17 * * MON-FRI``); ``@dag``; the context
value injected by parameter name, formatted with an f-string."""

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
        return f"{logical_date:%Y-%m-%d %H:%M}"

    report_slot()


dag = frequent_pipeline()


if __name__ == "__main__":
    dag.test()
