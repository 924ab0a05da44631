"""Exercise 6 — Passing data with XCom: the lesson's ETL pipeline, from a JSON file to the warehouse.

Complete this DAG (daily from 2023-10-01, no catch-up) so that its three tasks,
``extract >> transform >> load``, hand their data to each other through XCom:

* ``extract`` returns the records of ``data/users.json`` (done for you);
* ``transform`` pulls them and returns, for each user,
  ``{"user_id": id, "full_name": "<first_name> <last_name>", "email": <email in lower case>}``;
* ``load`` pulls those, writes them into the table ``clean_users (user_id, full_name, email)`` of
  the database behind the Airflow connection ``warehouse``, and pushes how many it loaded under the
  XCom key ``loaded_count``.

Look for the TODOs. The README next to this file has the full checklist; grade your work with
``make grade EX=ex06``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pendulum

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

# TODO: you will need this in load.
# from airflow.sdk import BaseHook

# Relative to this file, so the DAG finds its data wherever the folder is deployed.
USERS_JSON = Path(__file__).parent / "data" / "users.json"


def extract() -> list[dict]:
    """Read the users, as an API would return them."""
    # The return value is pushed to XCom under the key "return_value".
    return json.loads(USERS_JSON.read_text(encoding="utf-8"))


def transform(ti) -> list[dict]:
    """Keep the fields the warehouse needs, in the shape it expects."""
    # Airflow passes the task instance to any callable with a `ti` parameter:
    # no `provide_context=True` in Airflow 3.
    users = ti.xcom_pull(task_ids="extract")
    raise NotImplementedError(f"TODO: turn the {len(users)} users into user_id, full_name, email")


def load(ti) -> None:
    """Write the users into the warehouse and report how many were loaded."""
    # TODO:
    # 1. pull transform's result;
    # 2. hook = BaseHook.get_connection("warehouse").get_hook()
    #    hook.run("CREATE TABLE IF NOT EXISTS clean_users "
    #             "(user_id INTEGER PRIMARY KEY, full_name TEXT, email TEXT)")
    #    hook.insert_rows(...)  # see the README
    # 3. ti.xcom_push(key="loaded_count", value=...)
    raise NotImplementedError("TODO: load the users and push loaded_count")


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


if __name__ == "__main__":
    dag.test()
