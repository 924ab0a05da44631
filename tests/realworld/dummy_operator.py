"""Start and end markers with DummyOperator (Airflow 2)."""
from datetime import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.dummy import DummyOperator

with DAG("hello_world", schedule="@daily", start_date=datetime(2023, 10, 1), catchup=False) as dag:
    start = DummyOperator(task_id="start")
    say_hello = BashOperator(task_id="say_hello", bash_command='echo "Hello from Airflow!"')
    end = DummyOperator(task_id="end")
    start >> say_hello >> end
