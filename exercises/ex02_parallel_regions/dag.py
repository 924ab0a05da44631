"""Exercise 2 — Parallel regions: fan out to one task per region, then fan back in.

Complete this DAG so that it runs daily (``@daily``) from 2023-10-01 without catching up, and has
this shape, the three region tasks independent of each other::

                 ┌──> process_us ───┐
    extract_all ─┼──> process_eu ───┼──> merge_results ──> send_report
                 └──> process_asia ─┘

* ``extract_all`` returns the rows of ``data/sales.csv`` (``order_id``, ``region``, ``amount``);
* ``process_us`` / ``process_eu`` / ``process_asia`` each return
  ``{"region": "us", "orders": <number of orders>, "revenue": <sum of amounts, rounded to 2>}``
  for their own region;
* ``merge_results`` returns ``{"us": ..., "eu": ..., "asia": ..., "total": {"orders": ..., "revenue": ...}}``
  with the three region results and their sum (revenue rounded to 2 decimals);
* ``send_report`` emails ``team@company.com`` a "Daily sales report" whose HTML shows the totals,
  read from merge_results' XCom with a Jinja template.

Look for the TODOs. The README next to this file has the full checklist; grade your work with
``make grade EX=ex02``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pendulum

from airflow.sdk import dag, task

# TODO: you will need this for send_report.
# from airflow.providers.smtp.operators.smtp import EmailOperator

# Relative to this file, so the DAG finds its data wherever the folder is deployed.
SALES_CSV = Path(__file__).parent / "data" / "sales.csv"


@dag(
    dag_id="parallel_regions",
    schedule="@daily",
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
    tags=["week14", "exercise"],
)
def parallel_regions():
    @task
    def extract_all() -> list[dict]:
        """Read every order of sales.csv."""
        with SALES_CSV.open(newline="") as f:
            rows = list(csv.DictReader(f))
        # csv yields strings: "12.50" + "0.10" would glue text together, not add money.
        raise NotImplementedError(f"TODO: convert the {len(rows)} rows (amount to float) and return them")

    @task
    def process_us(sales: list[dict]) -> dict:
        """Count the US orders and add up their revenue."""
        raise NotImplementedError("TODO: return {'region': 'us', 'orders': ..., 'revenue': ...}")

    # TODO: process_eu and process_asia. Three copies of the same code? Look up
    # `.override(task_id=...)` for TaskFlow tasks, or write a helper function they share.

    @task
    def merge_results(us: dict) -> dict:
        """Put the region summaries side by side and add a grand total."""
        raise NotImplementedError("TODO: return {'us': ..., 'eu': ..., 'asia': ..., 'total': ...}")

    # Passing a task's result to another task moves it through XCom *and* draws the edge.
    sales = extract_all()
    us = process_us(sales)
    merge_results(us)
    # TODO: send_report, an EmailOperator whose html_content pulls merge_results' XCom in Jinja:
    #   {{ ti.xcom_pull(task_ids='merge_results')['total']['revenue'] }}
    # A template reads XCom but draws no edge: add merge_results >> send_report yourself.


dag = parallel_regions()


if __name__ == "__main__":
    dag.test()
