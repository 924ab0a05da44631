"""Correct: the three region tasks are created in a ``for`` loop, each wired as it is made."""

from __future__ import annotations

import csv
from pathlib import Path

import pendulum

from airflow.providers.smtp.operators.smtp import EmailOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

SALES_CSV = Path(__file__).parent / "data" / "sales.csv"

REPORT_HTML = """\
{% set r = ti.xcom_pull(task_ids='merge_results') %}
<h3>Daily sales report {{ ds }}</h3>
<p>US: {{ r.us.orders }} orders, {{ r.us.revenue }}</p>
<p>EU: {{ r.eu.orders }} orders, {{ r.eu.revenue }}</p>
<p>Asia: {{ r.asia.orders }} orders, {{ r.asia.revenue }}</p>
<p>Total: {{ r.total.orders }} orders, {{ r.total.revenue }}</p>
"""


def extract_all() -> list[dict]:
    with SALES_CSV.open(newline="") as f:
        return [
            {"order_id": int(r["order_id"]), "region": r["region"], "amount": float(r["amount"])}
            for r in csv.DictReader(f)
        ]


def process(region: str, ti) -> dict:
    sales = ti.xcom_pull(task_ids="extract_all")
    amounts = [s["amount"] for s in sales if s["region"] == region]
    return {"region": region, "orders": len(amounts), "revenue": round(sum(amounts), 2)}


def merge_results(ti) -> dict:
    regions = {r: ti.xcom_pull(task_ids=f"process_{r}") for r in ("us", "eu", "asia")}
    total = {
        "orders": sum(r["orders"] for r in regions.values()),
        "revenue": round(sum(r["revenue"] for r in regions.values()), 2),
    }
    return {**regions, "total": total}


with DAG(
    dag_id="parallel_regions",
    schedule="@daily",
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
) as dag:
    extract = PythonOperator(task_id="extract_all", python_callable=extract_all)
    merge = PythonOperator(task_id="merge_results", python_callable=merge_results)
    report = EmailOperator(
        task_id="send_report",
        to="team@company.com",
        subject="Daily sales report",
        html_content=REPORT_HTML,
    )

    for region in ("us", "eu", "asia"):
        extract >> PythonOperator(
            task_id=f"process_{region}", python_callable=process, op_kwargs={"region": region}
        ) >> merge
    merge >> report


if __name__ == "__main__":
    dag.test()
