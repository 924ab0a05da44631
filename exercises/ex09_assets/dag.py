"""Exercise 9 — Assets: a producer DAG updates an Asset, a consumer DAG runs because of it.

Two DAGs in this one file (the grader reads this file only):

* ``orders_producer`` runs every day: ``extract`` reads ``data/orders.csv`` (done for you) and
  ``publish`` writes the paid orders into the warehouse table ``orders_clean``, declaring the
  asset it updates with ``outlets=[ORDERS_CLEAN]``;
* ``orders_report`` has no time schedule: it is scheduled on that asset, so Airflow runs it each
  time ``publish`` succeeds, and ``summarize`` returns the table's count and total.

Look for the TODOs. The README next to this file has the full checklist; grade your work with
``make grade EX=ex09``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pendulum

from airflow.sdk import DAG, BaseHook, task

# TODO: import Asset from airflow.sdk and define the asset once, here, for both DAGs:
# ORDERS_CLEAN = Asset("orders_clean")

ORDERS_CSV = Path(__file__).parent / "data" / "orders.csv"

CREATE = ("CREATE TABLE IF NOT EXISTS orders_clean "
          "(order_id INTEGER PRIMARY KEY, customer TEXT, amount REAL)")

with DAG(
    dag_id="orders_producer",
    schedule="@daily",
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
) as producer:

    @task
    def extract() -> list[dict]:
        """Every order of the day, as the CSV file has it."""
        with ORDERS_CSV.open(newline="") as f:
            return list(csv.DictReader(f))

    @task  # TODO: declare the asset this task updates: @task(outlets=[ORDERS_CLEAN])
    def publish(orders: list[dict]) -> int:
        """Write the paid orders into the warehouse table orders_clean."""
        hook = BaseHook.get_connection("warehouse").get_hook()
        hook.run(CREATE)
        # TODO: keep the orders whose status is "paid" (in any case), and insert them as
        # (order_id, customer, amount) tuples:
        # hook.insert_rows("orders_clean", rows, target_fields=["order_id", "customer", "amount"],
        #                  replace=True, replace_index="order_id")
        raise NotImplementedError(f"TODO: write the paid orders among {len(orders)}")

    publish(extract())


with DAG(
    dag_id="orders_report",
    schedule=None,  # TODO: schedule it on the asset: schedule=[ORDERS_CLEAN]
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
) as report:

    @task
    def summarize() -> dict:
        """How many paid orders the table holds, and their total."""
        # TODO: hook.get_first("SELECT COUNT(*), SUM(amount) FROM orders_clean"), then
        # return {"orders": count, "revenue": round(total, 2)}
        raise NotImplementedError("TODO: summarize orders_clean")

    summarize()


if __name__ == "__main__":
    # dag.test() runs one DAG: the lab's scheduler is what starts orders_report afterwards.
    producer.test()
