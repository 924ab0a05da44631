"""Right but dated: Airflow 2 import paths still work in Airflow 3.3, with a warning."""

from __future__ import annotations

from datetime import timedelta

import pendulum

from airflow import DAG
from airflow.operators.bash import BashOperator

default_args = {"retries": 3, "retry_delay": timedelta(minutes=5)}

with DAG(
    dag_id="hello_world",
    default_args=default_args,
    schedule="@daily",
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
    description="My first Airflow DAG",
    tags=["example"],
) as dag:
    task_hello = BashOperator(task_id="say_hello", bash_command='echo "Hello from Airflow!"')
    task_date = BashOperator(task_id="print_date", bash_command="date")
    task_sleep = BashOperator(task_id="sleep_5_seconds", bash_command="sleep 1")

    task_hello >> task_date >> task_sleep


if __name__ == "__main__":
    dag.test()
