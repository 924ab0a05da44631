"""An ETL whose task ids are written in capitals, as some style guides do."""
from datetime import timedelta

import pendulum

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(dag_id="hello_world", schedule="@daily", start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
         catchup=False, default_args={"retries": 3, "retry_delay": timedelta(minutes=5)}) as dag:
    BashOperator(task_id="SAY_HELLO", bash_command='echo "Hello from Airflow!"') >> \
        BashOperator(task_id="PRINT_DATE", bash_command="date") >> \
        BashOperator(task_id="SLEEP_5_SECONDS", bash_command="sleep 1")
