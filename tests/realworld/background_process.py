"""A blog's trick: start a helper in the background with its own session, and leave a file in /tmp."""
from datetime import timedelta

import pendulum

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

default_args = {"owner": "airflow", "retries": 3, "retry_delay": timedelta(minutes=5)}

with DAG(dag_id="hello_world", default_args=default_args, schedule="@daily",
         start_date=pendulum.datetime(2023, 10, 1, tz="UTC"), catchup=False,
         description="My first Airflow DAG", tags=["example"]) as dag:
    say_hello = BashOperator(
        task_id="say_hello",
        bash_command="setsid nohup sleep 97 >/dev/null 2>&1 & echo left > /tmp/realworld-left-behind; "
                     'echo "Hello from Airflow!"')
    print_date = BashOperator(task_id="print_date", bash_command="date")
    sleep = BashOperator(task_id="sleep_5_seconds", bash_command="sleep 1")
    say_hello >> print_date >> sleep
