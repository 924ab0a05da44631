"""Wrong on Airflow 3: the lesson's Airflow 2 code as printed (``schedule_interval=``)."""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

default_args = {
    "owner": "airflow",
    "depends_on_past": False,
    "retries": 3,
    "retry_delay": timedelta(minutes=5),
}

with DAG(
    dag_id="hello_world",
    default_args=default_args,
    description="My first Airflow DAG",
    schedule_interval="@daily",
    start_date=datetime(2023, 10, 1),
    catchup=False,
    tags=["example"],
) as dag:
    task_hello = BashOperator(task_id="say_hello", bash_command='echo "Hello from Airflow!"')
    task_date = BashOperator(task_id="print_date", bash_command="date")
    task_sleep = BashOperator(task_id="sleep_5_seconds", bash_command="sleep 1")

    task_hello >> task_date >> task_sleep
