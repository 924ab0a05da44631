"""Exercise 1 — Daily ETL: extract users from a CSV file, keep the adults, load them, email the team.

Complete this DAG so that it:

1. runs every day at 03:00 UTC, from 2023-10-01, without catching up on past days;
2. retries each task twice, five minutes apart, and is owned by ``data_team``;
3. chains four tasks: ``extract >> transform >> load >> send_email``:

   * ``extract`` returns the rows of ``data/users.csv`` as a list of dicts (``id``, ``name``, ``age``);
   * ``transform`` returns only the users older than 18 (someone who is exactly 18 is dropped);
   * ``load`` writes those users into the table ``users (id, name, age)`` of the database behind
     the Airflow connection ``warehouse``, creating the table if needed; running it twice must not
     duplicate anyone;
   * ``send_email`` sends an email to ``team@company.com`` whose subject contains "ETL Success".

Look for the TODOs. The README next to this file has the full checklist; grade your work with
``make grade EX=ex01``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pendulum

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

# TODO: you will need these for the retry delay, the warehouse and the email.
# from datetime import timedelta
# from airflow.providers.smtp.operators.smtp import EmailOperator
# from airflow.sdk import BaseHook

# Relative to this file, so the DAG finds its data wherever the folder is deployed.
USERS_CSV = Path(__file__).parent / "data" / "users.csv"

# TODO: owner "data_team", 2 retries, 5 minutes between them.
default_args: dict = {}


def extract() -> list[dict]:
    """Read every row of users.csv, with id and age as integers."""
    with USERS_CSV.open(newline="") as f:
        # csv yields strings, and "19" > 18 raises TypeError: convert once, here.
        return [
            {"id": int(row["id"]), "name": row["name"], "age": int(row["age"])}
            for row in csv.DictReader(f)
        ]


def transform(ti) -> list[dict]:
    """Keep the users older than 18."""
    # Airflow passes context values such as `ti` (the running task instance) to any
    # callable that names them: no `provide_context=True` in Airflow 3.
    users = ti.xcom_pull(task_ids="extract")
    raise NotImplementedError(f"TODO: filter the {len(users)} users and return the adults")


def load(ti) -> int:
    """Write the adults into the warehouse's users table."""
    # TODO: pull transform's result, get a hook with
    #   BaseHook.get_connection("warehouse").get_hook(),
    # create the table with portable SQL:
    #   CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT, age INTEGER)
    # and insert the rows with hook.insert_rows(...) so that a re-run does not duplicate them.
    raise NotImplementedError("TODO: load the adults into the warehouse")


with DAG(
    dag_id="daily_etl",
    default_args=default_args,
    schedule=None,  # TODO: every day at 03:00 (a cron expression)
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
    tags=["week14", "exercise"],
) as dag:
    extract_task = PythonOperator(task_id="extract", python_callable=extract)
    transform_task = PythonOperator(task_id="transform", python_callable=transform)
    load_task = PythonOperator(task_id="load", python_callable=load)
    # TODO: a `send_email` task (EmailOperator) to team@company.com, subject with "ETL Success".

    # TODO: load and send_email belong in this chain too.
    extract_task >> transform_task


if __name__ == "__main__":
    dag.test()
