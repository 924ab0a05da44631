"""An ETL from a blog that logs instead of mailing: no email task at all."""
import csv
from pathlib import Path

import pendulum

from airflow.sdk import DAG, task

with DAG(dag_id="daily_etl", schedule="0 3 * * *", start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
         catchup=False) as dag:
    @task
    def extract():
        with open(Path(__file__).parent / "data" / "users.csv") as f:
            return list(csv.DictReader(f))

    @task
    def transform(rows):
        return [r for r in rows if int(r["age"]) > 18]

    @task
    def load(rows):
        print(len(rows), "rows")

    load(transform(extract()))
