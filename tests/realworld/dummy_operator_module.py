"""The Airflow 1.10 module path of DummyOperator, still in many blog posts."""
from datetime import datetime

from airflow import DAG
from airflow.operators.dummy_operator import DummyOperator

dag = DAG("hello_world", schedule="@daily", start_date=datetime(2023, 10, 1), catchup=False)
start = DummyOperator(task_id="say_hello", dag=dag)
