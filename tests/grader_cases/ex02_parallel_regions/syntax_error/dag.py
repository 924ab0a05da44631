"""Wrong: a syntax error (an unclosed bracket in the fan-out): the file does not even parse."""

from __future__ import annotations

import pendulum

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(
    dag_id="parallel_regions",
    schedule="@daily",
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
) as dag:
    extract = EmptyOperator(task_id="extract_all")
    us = EmptyOperator(task_id="process_us")
    eu = EmptyOperator(task_id="process_eu")
    asia = EmptyOperator(task_id="process_asia")
    merge = EmptyOperator(task_id="merge_results")
    report = EmptyOperator(task_id="send_report")

    extract >> [us, eu, asia >> merge >> report
