"""Wrong (one checklist line): load reads a key merge does not return, and fails."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pendulum

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

# Relative to this file, so the DAG finds its data wherever the folder is deployed.
VISITS_CSV = Path(__file__).parent / "data" / "visits.csv"


def extract() -> list[dict]:
    """Read every visit, with the numbers as integers."""
    with VISITS_CSV.open(newline="") as f:
        return [
            {"visit_id": int(row["visit_id"]), "page": row["page"], "seconds": int(row["seconds"])}
            for row in csv.DictReader(f)
        ]


def transform_a(ti) -> dict[str, int]:
    """Count the visits of each page."""
    visits = ti.xcom_pull(task_ids="extract")
    return dict(Counter(visit["page"] for visit in visits))


def transform_b(ti) -> float:
    """Average time on a page, in seconds, rounded to 1 decimal."""
    visits = ti.xcom_pull(task_ids="extract")
    return round(sum(visit["seconds"] for visit in visits) / len(visits), 1)


def merge(ti) -> dict:
    """Combine both transforms into one summary."""
    # One pull per upstream task: merge needs both, which is why it waits for both.
    per_page = ti.xcom_pull(task_ids="transform_a")
    average = ti.xcom_pull(task_ids="transform_b")
    return {
        "visits_per_page": per_page,
        "average_seconds": average,
        "total_visits": sum(per_page.values()),
    }


def load(ti) -> None:
    """Publish the summary (here: to the task log)."""
    summary = ti.xcom_pull(task_ids="merge")
    print(f"{summary['visits']} visits, {summary['average_seconds']} s on average")
    for page, count in sorted(summary["visits_per_page"].items()):
        print(f"  {page}: {count}")


with DAG(
    dag_id="diamond_pipeline",
    description="Fan out to two independent transforms, merge their results",
    schedule="0 */6 * * *",  # every 6 hours: 00:00, 06:00, 12:00, 18:00 UTC
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
    tags=["week14", "exercise"],
) as dag:
    task_extract = PythonOperator(task_id="extract", python_callable=extract)
    task_transform_a = PythonOperator(task_id="transform_a", python_callable=transform_a)
    task_transform_b = PythonOperator(task_id="transform_b", python_callable=transform_b)
    task_merge = PythonOperator(task_id="merge", python_callable=merge)
    task_load = PythonOperator(task_id="load", python_callable=load)

    task_extract >> [task_transform_a, task_transform_b] >> task_merge >> task_load


if __name__ == "__main__":
    dag.test()
