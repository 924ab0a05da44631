"""Right, another style: classic operators, FileSensor in poke mode, set_downstream."""

import csv
import os

import pendulum

from airflow.providers.standard.operators.python import PythonOperator
from airflow.providers.standard.sensors.filesystem import FileSensor
from airflow.sdk import DAG

HERE = os.path.dirname(os.path.abspath(__file__))
ORDERS = os.path.join(HERE, "data", "incoming", "orders.csv")


def summarize():
    with open(ORDERS) as f:
        amounts = [float(r["amount"]) for r in csv.DictReader(f)]
    return {"orders": len(amounts), "revenue": round(sum(amounts), 2)}


with DAG(dag_id="orders_arrival", schedule="0 6 * * *",
         start_date=pendulum.datetime(2023, 10, 1, tz="UTC"), catchup=False):
    sensor = FileSensor(task_id="wait_for_orders", filepath=ORDERS, poke_interval=1, timeout=5)
    load = PythonOperator(task_id="load", python_callable=summarize)
    notify = PythonOperator(task_id="notify_missing", python_callable=lambda: print("missing"),
                            trigger_rule="one_failed")
    cleanup = PythonOperator(task_id="cleanup", python_callable=lambda: None, trigger_rule="all_done")
    sensor.set_downstream([load, notify])
    cleanup.set_upstream([load, notify])
