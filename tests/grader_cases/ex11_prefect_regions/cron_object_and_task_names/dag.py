"""Right, in another style: tasks with display names and options, with_options() per region, a
Cron schedule object, and the run's pieces passed as futures."""

from __future__ import annotations

import csv
import os
import sqlite3
from pathlib import Path

from prefect import flow, task
from prefect.schedules import Cron


@task(name="Extract all orders", retries=2, retry_delay_seconds=10, log_prints=True)
def extract_all() -> list[dict]:
    path = Path(__file__).resolve().parent / "data" / "sales.csv"
    with path.open(newline="") as f:
        return [dict(row, amount=float(row["amount"])) for row in csv.DictReader(f)]


@task(task_run_name="process-{region}")
def process_region(sales: list[dict], region: str) -> dict:
    total = 0.0
    count = 0
    for sale in sales:
        if sale["region"] == region:
            total += sale["amount"]
            count += 1
    return {"region": region, "orders": count, "revenue": round(total, 2)}


@task
def merge_results(us: dict, eu: dict, asia: dict) -> dict:
    regions = {"us": us, "eu": eu, "asia": asia}
    return {**regions, "total": {"orders": sum(r["orders"] for r in regions.values()),
                                 "revenue": round(sum(r["revenue"] for r in regions.values()), 2)}}


@task(name="Load the warehouse", retries=2, retry_delay_seconds=10)
def load_warehouse(merged: dict) -> None:
    with sqlite3.connect(os.environ.get("WAREHOUSE_DB", "warehouse.db")) as db:
        db.execute("CREATE TABLE IF NOT EXISTS region_sales (region TEXT, orders INT, revenue REAL)")
        db.execute("DELETE FROM region_sales")
        for name, r in merged.items():
            db.execute("INSERT INTO region_sales (region, orders, revenue) VALUES (?, ?, ?)",
                       (name, r["orders"], r["revenue"]))


@flow(name="daily-regions")
def daily_regions() -> None:
    sales = extract_all.submit()
    us, eu, asia = (process_region.with_options(name=f"process-{r}").submit(sales, r)
                    for r in ("us", "eu", "asia"))
    merged = merge_results.submit(us, eu, asia)
    load_warehouse.submit(merged).wait()


if __name__ == "__main__":
    daily_regions.serve(name="every-morning", schedule=Cron("0 6 * * *", timezone="UTC"))
