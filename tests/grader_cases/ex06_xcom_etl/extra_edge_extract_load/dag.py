"""Wrong (one checklist line): load also waits for extract directly, an arrow not asked for."""

from __future__ import annotations

import json
from pathlib import Path

import pendulum

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, BaseHook

# Relative to this file, so the DAG finds its data wherever the folder is deployed.
USERS_JSON = Path(__file__).parent / "data" / "users.json"

# Portable SQL: the same statement works on SQLite and PostgreSQL.
CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS clean_users (
    user_id INTEGER PRIMARY KEY,
    full_name TEXT,
    email TEXT
)
"""


def extract() -> list[dict]:
    """Read the users, as an API would return them."""
    # XComs live in Airflow's database: fine for a few records, not for a whole table.
    return json.loads(USERS_JSON.read_text(encoding="utf-8"))


def transform(ti) -> list[dict]:
    """Keep the fields the warehouse needs, in the shape it expects."""
    users = ti.xcom_pull(task_ids="extract")
    return [
        {
            "user_id": user["id"],
            "full_name": f"{user['first_name']} {user['last_name']}",
            "email": user["email"].lower(),
        }
        for user in users
    ]


def load(ti) -> None:
    """Write the users into the warehouse and report how many were loaded."""
    users = ti.xcom_pull(task_ids="transform")
    hook = BaseHook.get_connection("warehouse").get_hook()
    hook.run(CREATE_TABLE)
    # Parameters, not string formatting: a name such as O'Brien cannot break the SQL.
    hook.insert_rows(
        table="clean_users",
        rows=[(u["user_id"], u["full_name"], u["email"]) for u in users],
        target_fields=["user_id", "full_name", "email"],
        replace=True,
        replace_index="user_id",
    )
    ti.xcom_push(key="loaded_count", value=len(users))
    print(f"Loaded {len(users)} records")


with DAG(
    dag_id="xcom_etl",
    description="Extract users, clean them, load them; pass data with XCom",
    schedule="@daily",
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
    tags=["week14", "exercise"],
) as dag:
    extract_task = PythonOperator(task_id="extract", python_callable=extract)
    transform_task = PythonOperator(task_id="transform", python_callable=transform)
    load_task = PythonOperator(task_id="load", python_callable=load)

    extract_task >> transform_task >> load_task
    extract_task >> load_task


if __name__ == "__main__":
    dag.test()
