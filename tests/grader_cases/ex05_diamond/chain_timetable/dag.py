"""Right: ``chain()`` with a list in the middle, one ``xcom_pull`` for both transforms, a timetable."""

from __future__ import annotations

import csv
from pathlib import Path

import pendulum

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, CronTriggerTimetable, chain

VISITS_CSV = Path(__file__).parent / "data" / "visits.csv"


def extract() -> list[dict]:
    with VISITS_CSV.open(newline="") as f:
        return [{"page": r["page"], "seconds": float(r["seconds"])} for r in csv.DictReader(f)]


def transform_a(ti) -> dict:
    counts: dict[str, int] = {}
    for visit in ti.xcom_pull(task_ids="extract"):
        counts[visit["page"]] = counts.get(visit["page"], 0) + 1
    return counts


def transform_b(ti) -> float:
    seconds = [v["seconds"] for v in ti.xcom_pull(task_ids="extract")]
    return sum(seconds) / len(seconds)  # not rounded: still right to within a rounding


def merge(ti) -> dict:
    per_page, average = ti.xcom_pull(task_ids=["transform_a", "transform_b"])
    return {"visits_per_page": per_page, "average_seconds": average,
            "total_visits": str(sum(per_page.values()))}


with DAG(
    dag_id="diamond_pipeline",
    schedule=CronTriggerTimetable("0 0,6,12,18 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
) as dag:
    chain(
        PythonOperator(task_id="extract", python_callable=extract),
        [PythonOperator(task_id="transform_a", python_callable=transform_a),
         PythonOperator(task_id="transform_b", python_callable=transform_b)],
        PythonOperator(task_id="merge", python_callable=merge),
        PythonOperator(task_id="load", python_callable=lambda: print("loaded")),
    )


if __name__ == "__main__":
    dag.test()
