"""Loading users with the Airflow 1.10 PostgresHook path."""
import csv
from datetime import datetime
from pathlib import Path

from airflow import DAG
from airflow.hooks.postgres_hook import PostgresHook
from airflow.operators.python import PythonOperator


def load():
    with open(Path(__file__).parent / "data" / "users.csv") as f:
        rows = [(r["id"], r["name"], r["age"]) for r in csv.DictReader(f)]
    PostgresHook(postgres_conn_id="warehouse").insert_rows("users", rows)


with DAG("daily_etl", schedule="0 3 * * *", start_date=datetime(2023, 10, 1), catchup=False) as dag:
    PythonOperator(task_id="load", python_callable=load)
