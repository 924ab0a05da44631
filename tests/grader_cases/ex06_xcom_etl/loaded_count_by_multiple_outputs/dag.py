"""load returns {"loaded_count": n} with multiple_outputs=True: Airflow pushes it under that key (correct)."""
import json
from pathlib import Path

import pendulum
from airflow.sdk import BaseHook, dag, task

HERE = Path(__file__).parent


@dag(dag_id="xcom_etl", schedule="@daily", start_date=pendulum.datetime(2023, 10, 1, tz="UTC"), catchup=False)
def xcom_etl():
    @task
    def extract():
        with open(HERE / "data" / "users.json") as fh:
            return json.load(fh)

    @task
    def transform(users):
        out = []
        for u in users:
            out.append({"user_id": u["id"], "full_name": " ".join([u["first_name"], u["last_name"]]),
                        "email": u["email"].lower()})
        return out

    @task(multiple_outputs=True)
    def load(rows):
        hook = BaseHook.get_connection("warehouse").get_hook()
        hook.run("CREATE TABLE IF NOT EXISTS clean_users (user_id INTEGER PRIMARY KEY, full_name TEXT, email TEXT)")
        hook.insert_rows("clean_users", [(r["user_id"], r["full_name"], r["email"]) for r in rows],
                         target_fields=["user_id", "full_name", "email"], replace=True, replace_index="user_id")
        return {"loaded_count": len(rows)}

    load(transform(extract()))


xcom_etl()
