"""Correct: TaskFlow ``@dag`` / ``@task``; results passed as arguments draw the edges."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import pendulum

from airflow.providers.smtp.operators.smtp import EmailOperator
from airflow.sdk import BaseHook, dag, task

USERS_CSV = Path(__file__).parent / "data" / "users.csv"


@dag(
    dag_id="daily_etl",
    schedule="0 3 * * *",
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
    default_args={"owner": "data_team", "retries": 2, "retry_delay": timedelta(minutes=5)},
)
def daily_etl():
    @task
    def extract() -> list[dict]:
        with USERS_CSV.open(newline="") as f:
            return [
                {"id": int(r["id"]), "name": r["name"], "age": int(r["age"])} for r in csv.DictReader(f)
            ]

    @task
    def transform(users: list[dict]) -> list[dict]:
        return [u for u in users if u["age"] > 18]

    @task
    def load(adults: list[dict]) -> int:
        hook = BaseHook.get_connection("warehouse").get_hook()
        hook.run("CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT, age INTEGER)")
        hook.insert_rows(
            "users",
            [(u["id"], u["name"], u["age"]) for u in adults],
            target_fields=["id", "name", "age"],
            replace=True,
            replace_index="id",
        )
        return len(adults)

    loaded = load(transform(extract()))
    loaded >> EmailOperator(
        task_id="send_email",
        to="team@company.com",
        subject="ETL Success {{ ds }}",
        html_content="Loaded {{ ti.xcom_pull(task_ids='load') }} users.",
    )


dag = daily_etl()


if __name__ == "__main__":
    dag.test()
