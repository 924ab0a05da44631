"""Right: classic BashOperators joined with ``chain()``, the schedule as a cron string."""

from __future__ import annotations

from datetime import timedelta

import pendulum

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, chain

with DAG(
    dag_id="hello_world",
    default_args={"owner": "airflow", "retries": 3, "retry_delay": timedelta(seconds=300)},
    schedule="0 0 * * *",
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
    description="My first Airflow DAG",
    tags=["example"],
) as dag:
    chain(
        BashOperator(task_id="say_hello", bash_command="echo Hello from Airflow!"),
        BashOperator(task_id="print_date", bash_command="date +%Y-%m-%d"),
        BashOperator(task_id="sleep_5_seconds", bash_command="sleep 1"),
    )


if __name__ == "__main__":
    dag.test()
