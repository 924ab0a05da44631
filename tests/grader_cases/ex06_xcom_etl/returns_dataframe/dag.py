"""Wrong: extract returns the pandas DataFrame itself, which an XCom cannot store (it is not JSON)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pendulum

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, BaseHook

USERS_JSON = Path(__file__).parent / "data" / "users.json"


def extract() -> pd.DataFrame:
    return pd.read_json(USERS_JSON)


def transform(ti) -> list[dict]:
    df = ti.xcom_pull(task_ids="extract", key="return_value")
    out = pd.DataFrame({
        "user_id": df["id"].astype(int),
        "full_name": df["first_name"] + " " + df["last_name"],
        "email": df["email"].str.lower(),
    })
    return out


def load(ti) -> int:
    users = ti.xcom_pull(task_ids="transform", key="return_value")
    hook = BaseHook.get_connection("warehouse").get_hook()
    hook.run("CREATE TABLE IF NOT EXISTS clean_users "
             "(user_id INTEGER PRIMARY KEY, full_name TEXT, email TEXT)")
    hook.insert_rows("clean_users", [(int(u["user_id"]), u["full_name"], u["email"]) for u in users],
                     target_fields=["user_id", "full_name", "email"], replace=True,
                     replace_index="user_id")
    ti.xcom_push(key="loaded_count", value=len(users))
    return len(users)


with DAG(
    dag_id="xcom_etl",
    schedule="0 0 * * *",
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
) as dag:
    extract_task = PythonOperator(task_id="extract", python_callable=extract)
    transform_task = PythonOperator(task_id="transform", python_callable=transform)
    load_task = PythonOperator(task_id="load", python_callable=load)

    load_task.set_upstream(transform_task)
    transform_task.set_upstream(extract_task)


if __name__ == "__main__":
    dag.test()
