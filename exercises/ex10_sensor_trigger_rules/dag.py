"""Exercise 10 — a sensor waits for a file; trigger rules decide what runs next.

Every morning the day's orders are dropped into ``data/incoming/orders.csv`` — usually. Complete
this DAG (daily at 06:00 UTC from 2023-10-01, no catch-up) so that:

* ``wait_for_orders`` is a sensor that looks for that file every second and gives up after 5 s;
* ``load`` reads the file once it is there (done for you) and returns its summary;
* ``notify_missing`` runs only when the sensor gave up, and ``cleanup`` runs in either case.

Look for the TODOs. The README next to this file has the full checklist; grade your work with
``make grade EX=ex10``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pendulum

from airflow.sdk import DAG, task

# TODO: from airflow.providers.standard.sensors.filesystem import FileSensor

ORDERS_CSV = Path(__file__).parent / "data" / "incoming" / "orders.csv"

with DAG(
    dag_id="orders_arrival",
    schedule="0 6 * * *",  # every day at 06:00 UTC
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
) as dag:

    @task
    def wait_for_orders() -> None:
        # TODO: replace this task by a sensor with task_id="wait_for_orders" that waits for
        # ORDERS_CSV: FileSensor(task_id=..., filepath=str(ORDERS_CSV), poke_interval=1, timeout=5)
        raise NotImplementedError("TODO: wait for the orders file with a sensor")

    @task
    def load() -> dict:
        """Count the orders and add up their amounts."""
        with ORDERS_CSV.open(newline="") as f:
            amounts = [float(row["amount"]) for row in csv.DictReader(f)]
        return {"orders": len(amounts), "revenue": round(sum(amounts), 2)}

    @task  # TODO: run only when the sensor failed
    def notify_missing() -> None:
        print(f"{ORDERS_CSV.name} did not arrive in time")

    @task  # TODO: run once load and notify_missing are done, whatever their state
    def cleanup() -> None:
        print("Cleaning up")

    wait_for_orders() >> [load(), notify_missing()] >> cleanup()


if __name__ == "__main__":
    dag.test()
