"""Wrong (one checklist line): dag_id hello_world_dag instead of hello_world."""

from __future__ import annotations

from datetime import timedelta

import pendulum

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

# Applied to every task of the DAG, unless a task sets its own value.
default_args = {
    "owner": "airflow",
    "retries": 3,
    "retry_delay": timedelta(minutes=5),
}

with DAG(
    dag_id="hello_world_dag",
    description="My first Airflow DAG",
    default_args=default_args,
    schedule="@daily",  # every day at midnight UTC
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,  # don't create a run for every day since the start date
    tags=["example"],
) as dag:
    task_hello = BashOperator(
        task_id="say_hello",
        bash_command='echo "Hello from Airflow!"',
    )

    task_date = BashOperator(
        task_id="print_date",
        bash_command="date",
    )

    task_sleep = BashOperator(
        task_id="sleep_5_seconds",
        bash_command="sleep 1",
    )

    task_hello >> task_date >> task_sleep


if __name__ == "__main__":
    dag.test()
