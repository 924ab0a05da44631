"""A tutorial's first DAG: ``days_ago`` for the start date (Airflow 2)."""
from datetime import timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG
from airflow.utils.dates import days_ago

default_args = {"owner": "airflow", "retries": 3, "retry_delay": timedelta(minutes=5)}

with DAG(dag_id="hello_world", default_args=default_args, schedule="@daily",
         start_date=days_ago(1), catchup=False) as dag:
    say_hello = BashOperator(task_id="say_hello", bash_command='echo "Hello from Airflow!"')
    print_date = BashOperator(task_id="print_date", bash_command="date")
    sleep = BashOperator(task_id="sleep_5_seconds", bash_command="sleep 1")
    say_hello >> print_date >> sleep
