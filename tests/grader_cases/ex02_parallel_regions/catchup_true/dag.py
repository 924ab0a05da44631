"""Wrong (one checklist line): catchup=True would backfill every day since the start."""

from __future__ import annotations

import csv
from pathlib import Path

import pendulum

from airflow.providers.smtp.operators.smtp import EmailOperator
from airflow.sdk import dag, task

# Relative to this file, so the DAG finds its data wherever the folder is deployed.
SALES_CSV = Path(__file__).parent / "data" / "sales.csv"

REPORT_HTML = """\
{% set result = ti.xcom_pull(task_ids='merge_results') %}
<h3>Daily sales report for {{ ds }}</h3>
<table>
  <tr><th>Region</th><th>Orders</th><th>Revenue</th></tr>
  {% for region in ['us', 'eu', 'asia'] %}
  <tr><td>{{ region }}</td><td>{{ result[region].orders }}</td><td>{{ result[region].revenue }}</td></tr>
  {% endfor %}
  <tr><th>Total</th><th>{{ result.total.orders }}</th><th>{{ result.total.revenue }}</th></tr>
</table>
"""


@dag(
    dag_id="parallel_regions",
    description="Summarise sales per region in parallel and email the totals",
    schedule="@daily",
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=True,
    tags=["week14", "exercise"],
)
def parallel_regions():
    @task
    def extract_all() -> list[dict]:
        """Read every order of sales.csv, with the amount as a number."""
        with SALES_CSV.open(newline="") as f:
            return [
                {"order_id": int(row["order_id"]), "region": row["region"], "amount": float(row["amount"])}
                for row in csv.DictReader(f)
            ]

    # multiple_outputs=False: keep one XCom per task even though the function returns a dict.
    @task(multiple_outputs=False)
    def process_region(sales: list[dict], region: str) -> dict:
        """Count the orders of one region and add up their revenue."""
        amounts = [sale["amount"] for sale in sales if sale["region"] == region]
        # Floats drift (0.1 + 0.2 == 0.30000000000000004): round money to cents.
        return {"region": region, "orders": len(amounts), "revenue": round(sum(amounts), 2)}

    @task(multiple_outputs=False)
    def merge_results(us: dict, eu: dict, asia: dict) -> dict:
        """Put the three region summaries side by side and add a grand total."""
        regions = {"us": us, "eu": eu, "asia": asia}
        total = {
            "orders": sum(r["orders"] for r in regions.values()),
            "revenue": round(sum(r["revenue"] for r in regions.values()), 2),
        }
        return {**regions, "total": total}

    sales = extract_all()
    # One task definition, three task ids: .override() names each copy.
    us = process_region.override(task_id="process_us")(sales, "us")
    eu = process_region.override(task_id="process_eu")(sales, "eu")
    asia = process_region.override(task_id="process_asia")(sales, "asia")
    merged = merge_results(us, eu, asia)

    send_report = EmailOperator(
        task_id="send_report",
        to="team@company.com",
        subject="Daily sales report {{ ds }}",
        html_content=REPORT_HTML,
    )
    # The template pulls merge_results' XCom, but templates draw no edges: say it explicitly.
    merged >> send_report


dag = parallel_regions()


if __name__ == "__main__":
    dag.test()
