"""A DAG of 4000 chained tasks: the structural checks stay quick."""


import pendulum

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, chain

with DAG(dag_id="parallel_regions", schedule="@daily", start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
         catchup=False) as dag:
    chain(*[EmptyOperator(task_id=f"step_{i}") for i in range(4000)])
