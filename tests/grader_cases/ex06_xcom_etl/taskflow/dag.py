"""Right: TaskFlow — return values flow as arguments; load pushes its key via the current context."""

from __future__ import annotations

import json
from pathlib import Path

import pendulum

from airflow.sdk import BaseHook, dag, get_current_context, task

USERS_JSON = Path(__file__).parent / "data" / "users.json"


@dag(
    dag_id="xcom_etl",
    schedule="@daily",
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
)
def xcom_etl():
    @task
    def extract() -> list[dict]:
        with USERS_JSON.open(encoding="utf-8") as f:
            return json.load(f)

    @task
    def transform(users: list[dict]) -> list[dict]:
        return [
            {"user_id": u["id"], "full_name": " ".join([u["first_name"], u["last_name"]]),
             "email": u["email"].casefold()}
            for u in users
        ]

    @task
    def load(users: list[dict]) -> None:
        hook = BaseHook.get_connection("warehouse").get_hook()
        hook.run("CREATE TABLE IF NOT EXISTS clean_users "
                 "(user_id INTEGER PRIMARY KEY, full_name TEXT, email TEXT)")
        hook.insert_rows("clean_users", [tuple(u.values()) for u in users],
                         target_fields=["user_id", "full_name", "email"])
        get_current_context()["ti"].xcom_push(key="loaded_count", value=len(users))

    load(transform(extract()))


dag = xcom_etl()


if __name__ == "__main__":
    dag.test()
