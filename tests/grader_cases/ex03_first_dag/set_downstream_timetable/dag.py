"""Right: the lesson's ``set_downstream`` / ``set_upstream`` form and a timetable object."""

from __future__ import annotations

from datetime import timedelta

import pendulum

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, CronTriggerTimetable

default_args = {"retries": 3, "retry_delay": timedelta(minutes=5)}

with DAG(
    dag_id="hello_world",
    default_args=default_args,
    schedule=CronTriggerTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
    description="My first Airflow DAG",
    tags=["example"],
) as dag:
    task_hello = BashOperator(task_id="say_hello", bash_command='echo "Hello from Airflow!"')
    task_date = BashOperator(task_id="print_date", bash_command="date")
    task_sleep = BashOperator(task_id="sleep_5_seconds", bash_command="sleep 1")

    task_hello.set_downstream(task_date)
    task_sleep.set_upstream(task_date)


if __name__ == "__main__":
    dag.test()
