"""Wrong: TaskFlow, but merge_results has trigger_rule="all_done": it runs even when a region failed."""

from __future__ import annotations

import csv
from pathlib import Path

import pendulum

from airflow.providers.smtp.operators.smtp import EmailOperator
from airflow.sdk import dag, task

SALES_CSV = Path(__file__).parent / "data" / "sales.csv"

REPORT_HTML = """\
{% set r = ti.xcom_pull(task_ids='merge_results') %}
<h3>Daily sales report {{ ds }}</h3>
<p>US: {{ r.us.orders }} orders, {{ r.us.revenue }}</p>
<p>EU: {{ r.eu.orders }} orders, {{ r.eu.revenue }}</p>
<p>Asia: {{ r.asia.orders }} orders, {{ r.asia.revenue }}</p>
<p>Total: {{ r.total.orders }} orders, {{ r.total.revenue }}</p>
"""


def summarise(sales: list[dict], region: str) -> dict:
    amounts = [s["amount"] for s in sales if s["region"] == region]
    return {"region": region, "orders": len(amounts), "revenue": round(sum(amounts), 2)}


@dag(
    dag_id="parallel_regions",
    schedule="@daily",
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
)
def parallel_regions():
    @task
    def extract_all() -> list[dict]:
        with SALES_CSV.open(newline="") as f:
            return [
                {"order_id": int(r["order_id"]), "region": r["region"], "amount": float(r["amount"])}
                for r in csv.DictReader(f)
            ]

    @task
    def process_us(sales: list[dict]) -> dict:
        return summarise(sales, "us")

    @task
    def process_eu(sales: list[dict]) -> dict:
        return summarise(sales, "eu")

    @task
    def process_asia(sales: list[dict]) -> dict:
        return summarise(sales, "asia")

    @task(trigger_rule="all_done")
    def merge_results(us: dict, eu: dict, asia: dict) -> dict:
        regions = {"us": us, "eu": eu, "asia": asia}
        total = {
            "orders": sum(r["orders"] for r in regions.values()),
            "revenue": round(sum(r["revenue"] for r in regions.values()), 2),
        }
        return {**regions, "total": total}

    sales = extract_all()
    merged = merge_results(process_us(sales), process_eu(sales), process_asia(sales))
    merged >> EmailOperator(
        task_id="send_report",
        to="team@company.com",
        subject="Daily sales report",
        html_content=REPORT_HTML,
    )


dag = parallel_regions()


if __name__ == "__main__":
    dag.test()
