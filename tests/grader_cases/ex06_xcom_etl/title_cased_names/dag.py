"""Title-cases the full names: McAllister becomes Mcallister, van der Berg Van Der Berg."""
import json
from pathlib import Path

import pendulum
from airflow.sdk import BaseHook, dag, task


@dag(schedule="@daily", start_date=pendulum.datetime(2023, 10, 1, tz="UTC"), catchup=False)
def xcom_etl():
    @task
    def extract():
        return json.loads((Path(__file__).parent / "data/users.json").read_text())

    @task
    def transform(users):
        return [{"user_id": u["id"], "full_name": f"{u['first_name']} {u['last_name']}".title(),
                 "email": u["email"].lower()} for u in users]

    @task
    def load(rows, ti=None):
        hook = BaseHook.get_connection("warehouse").get_hook()
        hook.run("CREATE TABLE IF NOT EXISTS clean_users (user_id INTEGER PRIMARY KEY, full_name TEXT, email TEXT)")
        hook.insert_rows("clean_users", [(r["user_id"], r["full_name"], r["email"]) for r in rows],
                         target_fields=["user_id", "full_name", "email"], replace=True, replace_index="user_id")
        ti.xcom_push(key="loaded_count", value=len(rows))

    load(transform(extract()))


xcom_etl()
