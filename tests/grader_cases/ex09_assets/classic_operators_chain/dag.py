"""Right, another style: classic PythonOperators, chain(), outlets on the operator, two Asset objects
built from the same URI (the same asset)."""

import csv
from pathlib import Path

import pendulum

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Asset, BaseHook, chain

DATA = Path(__file__).parent / "data" / "orders.csv"


def read_orders():
    with DATA.open(newline="") as f:
        return list(csv.DictReader(f))


def write_paid(ti):
    orders = ti.xcom_pull(task_ids="extract")
    paid = [(int(o["order_id"]), o["customer"], float(o["amount"]))
            for o in orders if o["status"].strip().lower() == "paid"]
    hook = BaseHook.get_connection("warehouse").get_hook()
    hook.run("CREATE TABLE IF NOT EXISTS orders_clean "
             "(order_id INTEGER PRIMARY KEY, customer TEXT, amount REAL)")
    hook.insert_rows("orders_clean", paid, target_fields=["order_id", "customer", "amount"],
                     replace=True, replace_index="order_id")


def report():
    hook = BaseHook.get_connection("warehouse").get_hook()
    count, total = hook.get_first("SELECT COUNT(*), SUM(amount) FROM orders_clean")
    print(f"{count} paid orders, {total} in total")
    return {"orders": count, "revenue": round(total, 2)}


with DAG("orders_producer", schedule="0 0 * * *", start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
         catchup=False):
    chain(PythonOperator(task_id="extract", python_callable=read_orders),
          PythonOperator(task_id="publish", python_callable=write_paid,
                         outlets=[Asset("orders_clean")]))

with DAG("orders_report", schedule=[Asset("orders_clean")],
         start_date=pendulum.datetime(2023, 10, 1, tz="UTC"), catchup=False):
    PythonOperator(task_id="summarize", python_callable=report)
