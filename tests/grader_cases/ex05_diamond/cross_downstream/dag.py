"""The five arrows drawn with cross_downstream, a cron list for every 6 hours, lambdas as callables (correct)."""
import csv
from collections import Counter
from pathlib import Path

import pendulum
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, cross_downstream


def extract():
    return list(csv.DictReader((Path(__file__).parent / "data" / "visits.csv").open()))


def transform_a(ti):
    return dict(Counter(r["page"] for r in ti.xcom_pull(task_ids="extract")))


def transform_b(ti):
    rows = ti.xcom_pull(task_ids="extract")
    return round(sum(int(r["seconds"]) for r in rows) / len(rows), 1)


def merge(ti):
    a, b = ti.xcom_pull(task_ids=["transform_a", "transform_b"])
    return {"visits_per_page": a, "average_seconds": b, "total_visits": sum(a.values())}


with DAG(dag_id="diamond_pipeline", schedule="0 0,6,12,18 * * *",
         start_date=pendulum.datetime(2023, 10, 1, tz="UTC"), catchup=False):
    ops = {n: PythonOperator(task_id=n, python_callable=f) for n, f in
           [("extract", extract), ("transform_a", transform_a), ("transform_b", transform_b), ("merge", merge),
            ("load", lambda ti: print(ti.xcom_pull(task_ids="merge")))]}
    cross_downstream([ops["extract"]], [ops["transform_a"], ops["transform_b"]])
    cross_downstream([ops["transform_a"], ops["transform_b"]], [ops["merge"]])
    ops["merge"] >> ops["load"]
