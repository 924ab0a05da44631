"""An Airflow 1.10 DAG that runs a command over SSH from airflow.contrib."""
from datetime import datetime

from airflow import DAG
from airflow.contrib.operators.ssh_operator import SSHOperator

with DAG("hello_world", schedule="@daily", start_date=datetime(2023, 10, 1), catchup=False) as dag:
    SSHOperator(task_id="say_hello", ssh_conn_id="server", command='echo "Hello from Airflow!"')
