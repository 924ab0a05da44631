"""The regions in a TaskGroup: its group_id prefixes their task ids (regions.process_us)."""
import csv
from pathlib import Path

import pendulum
from airflow.providers.smtp.operators.smtp import EmailOperator
from airflow.sdk import dag, task, task_group


@dag(dag_id="parallel_regions", schedule="@daily", start_date=pendulum.datetime(2023, 10, 1, tz="UTC"), catchup=False)
def parallel_regions():
    @task
    def extract_all():
        with open(Path(__file__).parent / "data" / "sales.csv", newline="") as fh:
            return list(csv.DictReader(fh))

    def make(region):
        @task(task_id=f"process_{region}")
        def process(rows):
            mine = [float(r["amount"]) for r in rows if r["region"] == region]
            return {"region": region, "orders": len(mine), "revenue": round(sum(mine), 2)}
        return process

    @task
    def merge_results(us, eu, asia):
        parts = {"us": us, "eu": eu, "asia": asia}
        return {**parts, "total": {"orders": sum(p["orders"] for p in parts.values()),
                                   "revenue": round(sum(p["revenue"] for p in parts.values()), 2)}}

    rows = extract_all()

    @task_group(group_id="regions")
    def regions(rows):
        return [make(r)(rows) for r in ("us", "eu", "asia")]

    us, eu, asia = regions(rows)
    merged = merge_results(us, eu, asia)
    merged >> EmailOperator(task_id="send_report", to="team@company.com", subject="Daily sales report",
                            html_content="Total revenue: {{ ti.xcom_pull(task_ids='merge_results')['total']['revenue'] }}")


parallel_regions()
