"""Hostile: the reference DAG, whose `publish` prints 100 MB before it writes the table. The grader
keeps the last 2 to 4 MB of a task's log, shows its end, and grades the run as usual."""

from __future__ import annotations

import csv
from pathlib import Path

import pendulum

from airflow.sdk import DAG, Asset, BaseHook, task

ORDERS_CSV = Path(__file__).parent / "data" / "orders.csv"

# One Asset object for both DAGs: the consumer runs for the very asset (same URI) the producer updates.
ORDERS_CLEAN = Asset("orders_clean")

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

    @task(outlets=[ORDERS_CLEAN])
    def publish(orders: list[dict]) -> int:
        """Write the paid orders into the warehouse; on success Airflow marks the asset updated."""
        paid = [(int(o["order_id"]), o["customer"], float(o["amount"]))
                for o in orders if o["status"].strip().lower() == "paid"]
        import sys

        for _ in range(100):
            sys.stdout.write("x" * (1 << 20) + "\n")
        hook = BaseHook.get_connection("warehouse").get_hook()
        hook.run(CREATE)
        hook.insert_rows("orders_clean", paid, target_fields=["order_id", "customer", "amount"],
                         replace=True, replace_index="order_id")
        return len(paid)

    publish(extract())


with DAG(
    dag_id="orders_report",
    schedule=[ORDERS_CLEAN],  # runs each time the asset is updated, not at a time
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
) as report:

    @task
    def summarize() -> dict:
        """How many paid orders the table holds, and their total."""
        hook = BaseHook.get_connection("warehouse").get_hook()
        count, revenue = hook.get_first("SELECT COUNT(*), SUM(amount) FROM orders_clean")
        return {"orders": count, "revenue": round(revenue or 0, 2)}

    summarize()


if __name__ == "__main__":
    # dag.test() runs one DAG: the lab's scheduler is what starts orders_report afterwards.
    producer.test()
