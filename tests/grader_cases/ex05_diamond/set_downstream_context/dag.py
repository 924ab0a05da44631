"""Right: the lesson's four explicit lines, ``**context`` callables and ``get_current_context``."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

import pandas as pd
import pendulum

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, get_current_context

VISITS_CSV = Path(__file__).parent / "data" / "visits.csv"


def extract() -> list[dict]:
    return pd.read_csv(VISITS_CSV).to_dict("records")


def transform_a(**context) -> dict:
    visits = context["ti"].xcom_pull(task_ids="extract")
    return {page: int(n) for page, n in Counter(v["page"] for v in visits).items()}


def transform_b(**context) -> float:
    visits = context["ti"].xcom_pull(task_ids="extract")
    return round(statistics.mean(v["seconds"] for v in visits), 1)


def merge() -> dict:
    ti = get_current_context()["ti"]
    a = ti.xcom_pull(task_ids="transform_a")
    b = ti.xcom_pull(task_ids="transform_b")
    return {"visits_per_page": a, "average_seconds": b, "total_visits": sum(a.values())}


with DAG(
    dag_id="diamond_pipeline",
    schedule="0 */6 * * *",
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
) as dag:
    task_extract = PythonOperator(task_id="extract", python_callable=extract)
    task_transform_a = PythonOperator(task_id="transform_a", python_callable=transform_a)
    task_transform_b = PythonOperator(task_id="transform_b", python_callable=transform_b)
    task_merge = PythonOperator(task_id="merge", python_callable=merge)
    task_load = PythonOperator(task_id="load", python_callable=lambda: None)

    task_extract >> [task_transform_a, task_transform_b]
    task_transform_a >> task_merge
    task_transform_b >> task_merge
    task_merge >> task_load


if __name__ == "__main__":
    dag.test()
