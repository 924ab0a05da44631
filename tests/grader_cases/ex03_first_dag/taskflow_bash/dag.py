"""Right: TaskFlow with ``@task.bash`` — each function returns the command to run."""

from __future__ import annotations

from datetime import timedelta

import pendulum

from airflow.sdk import dag, task


@dag(
    dag_id="hello_world",
    default_args={"retries": 3, "retry_delay": timedelta(minutes=5)},
    schedule="@daily",
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
    description="My first Airflow DAG",
    tags=["example"],
)
def hello_world():
    @task.bash
    def say_hello() -> str:
        return "echo 'Hello from Airflow!'"

    @task.bash
    def print_date() -> str:
        return "date -u"

    @task.bash
    def sleep_5_seconds() -> str:
        return "sleep 1"

    say_hello() >> print_date() >> sleep_5_seconds()


dag = hello_world()


if __name__ == "__main__":
    dag.test()
