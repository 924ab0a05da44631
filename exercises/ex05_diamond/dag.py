"""Exercise 5 — Diamond dependencies: two independent transforms between an extract and a merge.

Complete this DAG so that it runs every 6 hours (at 00:00, 06:00, 12:00 and 18:00 UTC) from
2023-10-01, without catching up, and has the lesson's diamond shape::

                ┌──> transform_a ──┐
    extract ────┤                  ├──> merge ──> load
                └──> transform_b ──┘

* ``extract`` returns the visits of ``data/visits.csv`` (``visit_id``, ``page``, ``seconds``);
* ``transform_a`` returns the number of visits of each page: ``{"/home": 4, "/pricing": 2, ...}``;
* ``transform_b`` returns the average ``seconds`` per visit, rounded to 1 decimal;
* ``merge`` returns ``{"visits_per_page": <transform_a>, "average_seconds": <transform_b>,
  "total_visits": <the sum of visits_per_page>}``;
* ``load`` prints the summary.

Look for the TODOs. The README next to this file has the full checklist; grade your work with
``make grade EX=ex05``.
"""

from __future__ import annotations

import csv
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
    raise NotImplementedError(f"TODO: count the {len(visits)} visits per page")


def transform_b(ti) -> float:
    """Average time on a page, in seconds, rounded to 1 decimal."""
    raise NotImplementedError("TODO: pull extract's visits and return their average seconds")


def merge(ti) -> dict:
    """Combine both transforms into one summary."""
    # TODO: pull the results of transform_a and transform_b (one ti.xcom_pull each).
    raise NotImplementedError("TODO: return visits_per_page, average_seconds and total_visits")


def load(ti) -> None:
    """Publish the summary (here: to the task log)."""
    summary = ti.xcom_pull(task_ids="merge")
    print(f"{summary['total_visits']} visits, {summary['average_seconds']} s on average")
    for page, count in sorted(summary["visits_per_page"].items()):
        print(f"  {page}: {count}")


with DAG(
    dag_id="diamond_pipeline",
    description="Fan out to two independent transforms, merge their results",
    schedule=None,  # TODO: every 6 hours (a cron expression)
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
    tags=["week14", "exercise"],
) as dag:
    task_extract = PythonOperator(task_id="extract", python_callable=extract)
    task_transform_a = PythonOperator(task_id="transform_a", python_callable=transform_a)
    task_transform_b = PythonOperator(task_id="transform_b", python_callable=transform_b)
    task_merge = PythonOperator(task_id="merge", python_callable=merge)
    task_load = PythonOperator(task_id="load", python_callable=load)

    # TODO: the diamond. One line is enough: a list fans out and fans back in.
    task_extract >> task_transform_a


if __name__ == "__main__":
    dag.test()
