"""Right, another style: both DAGs with @dag, an Asset with a URI of its own, the rows via SQL."""

import csv
from pathlib import Path

import pendulum

from airflow.sdk import Asset, BaseHook, dag, task

CLEAN_ORDERS = Asset(uri="warehouse://analytics/orders_clean", name="clean orders")
START = pendulum.datetime(2023, 10, 1, tz="UTC")


@dag(dag_id="orders_producer", schedule="@daily", start_date=START, catchup=False)
def orders_producer():
    @task
    def extract():
        with open(Path(__file__).parent / "data" / "orders.csv", newline="") as f:
            return [row for row in csv.DictReader(f)]

    @task(outlets=[CLEAN_ORDERS])
    def publish(rows):
        hook = BaseHook.get_connection("warehouse").get_hook()
        hook.run("CREATE TABLE IF NOT EXISTS orders_clean "
                 "(order_id INTEGER PRIMARY KEY, customer TEXT, amount REAL)")
        for row in rows:
            if row["status"].lower().strip() != "paid":
                continue
            hook.run("INSERT OR REPLACE INTO orders_clean VALUES (?, ?, ?)"
                     if hook.conn_type == "sqlite" else
                     "INSERT INTO orders_clean VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                     parameters=(int(row["order_id"]), row["customer"], float(row["amount"])))

    publish(extract())


@dag(dag_id="orders_report", schedule=[CLEAN_ORDERS], start_date=START, catchup=False)
def orders_report():
    @task
    def summarize():
        hook = BaseHook.get_connection("warehouse").get_hook()
        rows = hook.get_records("SELECT amount FROM orders_clean")
        return {"orders": len(rows), "revenue": round(sum(r[0] for r in rows), 2)}

    summarize()


orders_producer()
orders_report()
