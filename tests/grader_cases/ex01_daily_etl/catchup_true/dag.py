"""Wrong (one checklist line): catchup=True would backfill every day since the start."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import pendulum

from airflow.providers.smtp.operators.smtp import EmailOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, BaseHook

# Relative to this file, so the DAG finds its data wherever the folder is deployed.
USERS_CSV = Path(__file__).parent / "data" / "users.csv"

# Portable SQL: the same statement works on SQLite and PostgreSQL.
CREATE_USERS = "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT, age INTEGER)"

default_args = {
    "owner": "data_team",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
}


def extract() -> list[dict]:
    """Read every row of users.csv, with id and age as integers."""
    with USERS_CSV.open(newline="") as f:
        # csv yields strings, and "19" > 18 raises TypeError: convert once, here.
        return [
            {"id": int(row["id"]), "name": row["name"], "age": int(row["age"])}
            for row in csv.DictReader(f)
        ]


def transform(ti) -> list[dict]:
    """Keep the users older than 18 (18 itself is dropped)."""
    users = ti.xcom_pull(task_ids="extract")
    return [user for user in users if user["age"] > 18]


def load(ti) -> int:
    """Write the adults into the warehouse's users table; running it again changes nothing."""
    adults = ti.xcom_pull(task_ids="transform")
    # The connection's type (sqlite, postgres, ...) picks the matching hook class.
    hook = BaseHook.get_connection("warehouse").get_hook()
    hook.run(CREATE_USERS)
    # replace=True upserts on the primary key (REPLACE INTO on SQLite, ON CONFLICT on PostgreSQL),
    # so a retry or a re-run of the same day does not duplicate users.
    hook.insert_rows(
        table="users",
        rows=[(user["id"], user["name"], user["age"]) for user in adults],
        target_fields=["id", "name", "age"],
        replace=True,
        replace_index="id",
    )
    return len(adults)


with DAG(
    dag_id="daily_etl",
    description="Extract users from CSV, keep adults, load them into the warehouse",
    default_args=default_args,
    schedule="0 3 * * *",  # every day at 03:00 UTC
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=True,
    tags=["week14", "exercise"],
) as dag:
    extract_task = PythonOperator(task_id="extract", python_callable=extract)
    transform_task = PythonOperator(task_id="transform", python_callable=transform)
    load_task = PythonOperator(task_id="load", python_callable=load)
    email_task = EmailOperator(
        task_id="send_email",
        to="team@company.com",
        subject="ETL Success: daily_etl {{ ds }}",
        # Templated: Airflow renders the Jinja just before the task runs.
        html_content="<h3>daily_etl finished</h3>"
        "<p>Loaded {{ ti.xcom_pull(task_ids='load') }} users into the warehouse.</p>",
    )

    extract_task >> transform_task >> load_task >> email_task


if __name__ == "__main__":
    dag.test()
