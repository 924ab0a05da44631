"""Airflow 2's own tutorial shape: old module paths, provide_context, schedule_interval, days_ago."""
from datetime import timedelta

from airflow import DAG
from airflow.operators.python_operator import PythonOperator
from airflow.utils.dates import days_ago


def greet(**context):
    print("Hello from Airflow!", context["execution_date"])


default_args = {"owner": "airflow", "start_date": days_ago(2), "retries": 1,
                "retry_delay": timedelta(minutes=5)}

dag = DAG("tutorial", default_args=default_args, schedule_interval=timedelta(days=1))

PythonOperator(task_id="say_hello", python_callable=greet, provide_context=True, dag=dag)
