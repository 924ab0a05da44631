"""Right: ``**context`` callables as in the lesson (minus provide_context), delete-then-insert,
a timetable object for the schedule."""

from __future__ import annotations

import json
from pathlib import Path

import pendulum

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, BaseHook, CronTriggerTimetable

USERS_JSON = Path(__file__).parent / "data" / "users.json"


def extract(**context):
    data = json.loads(USERS_JSON.read_text(encoding="utf-8"))
    print(f"Extracted {len(data)} records for {context['ds']}")
    return data


def transform(**context):
    ti = context["ti"]
    data = ti.xcom_pull(task_ids="extract")
    transformed = []
    for record in data:
        transformed.append({
            "user_id": record["id"],
            "full_name": f"{record['first_name']} {record['last_name']}",
            "email": record["email"].lower(),
        })
    return transformed


def load(**context):
    ti = context["ti"]
    data = ti.xcom_pull(task_ids="transform")
    hook = BaseHook.get_connection("warehouse").get_hook()
    hook.run("CREATE TABLE IF NOT EXISTS clean_users (user_id INTEGER, full_name TEXT, email TEXT)")
    hook.run("DELETE FROM clean_users")
    hook.insert_rows("clean_users", [(r["user_id"], r["full_name"], r["email"]) for r in data],
                     target_fields=["user_id", "full_name", "email"])
    context["ti"].xcom_push(key="loaded_count", value=str(len(data)))
    print(f"Loaded {len(data)} records")


with DAG(
    dag_id="xcom_etl",
    schedule=CronTriggerTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
) as dag:
    extract_task = PythonOperator(task_id="extract", python_callable=extract)
    transform_task = PythonOperator(task_id="transform", python_callable=transform)
    load_task = PythonOperator(task_id="load", python_callable=load)

    extract_task >> transform_task >> load_task


if __name__ == "__main__":
    dag.test()
