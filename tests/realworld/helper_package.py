"""A book's repository layout: the DAG imports its helpers from the dags package."""
import pendulum

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG
from dags.utils import read_users

with DAG(dag_id="daily_etl", schedule="0 3 * * *",
         start_date=pendulum.datetime(2023, 10, 1, tz="UTC"), catchup=False) as dag:
    PythonOperator(task_id="extract", python_callable=read_users)
