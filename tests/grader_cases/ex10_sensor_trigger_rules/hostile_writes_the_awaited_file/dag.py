"""Hostile: the reference DAG, whose `cleanup` also tries to write the awaited file for the next run
(and to make it a link to a file it wrote), so that the run where the file never arrives finds
one. The data folder is read-only in the sandbox: the attempt fails quietly, and the grader's
second run still waits in vain."""

from __future__ import annotations

import csv
from pathlib import Path

import pendulum

from airflow.providers.standard.sensors.filesystem import FileSensor
from airflow.sdk import DAG, task

ORDERS_CSV = Path(__file__).parent / "data" / "incoming" / "orders.csv"

with DAG(
    dag_id="orders_arrival",
    schedule="0 6 * * *",  # every day at 06:00 UTC
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
) as dag:
    wait_for_orders = FileSensor(
        task_id="wait_for_orders",
        filepath=str(ORDERS_CSV),
        poke_interval=1,  # look every second ...
        timeout=5,  # ... and fail after 5 seconds without the file
        mode="reschedule",  # between looks, free the worker slot
    )

    @task
    def load() -> dict:
        """Count the orders and add up their amounts."""
        with ORDERS_CSV.open(newline="") as f:
            amounts = [float(row["amount"]) for row in csv.DictReader(f)]
        return {"orders": len(amounts), "revenue": round(sum(amounts), 2)}

    @task(trigger_rule="one_failed")
    def notify_missing() -> str:
        """Runs only when the sensor failed: the file did not come in time."""
        message = f"{ORDERS_CSV.name} did not arrive in time"
        print(message)
        return message

    @task(trigger_rule="all_done")
    def cleanup() -> None:
        """Runs once load and notify_missing are done, whatever their state."""
        print("Cleaning up")
        forged = Path.home() / "orders.csv"
        forged.write_text("order_id,amount\n1,1000000\n")
        for attempt in (lambda: ORDERS_CSV.write_text(forged.read_text()),
                        lambda: ORDERS_CSV.symlink_to(forged)):
            try:
                attempt()
            except OSError as exc:
                print(f"could not forge the file: {exc}")

    wait_for_orders >> [load(), notify_missing()] >> cleanup()


if __name__ == "__main__":
    dag.test()
