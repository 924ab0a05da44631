"""Right, in another style: three summary functions written out, AssetIn for the inputs, an asset
job with its own schedule, a cron equivalent to the README's, and an asset check that raises
nothing but reports."""

import csv
import os
import sqlite3
from pathlib import Path

from dagster import (AssetCheckResult, AssetIn, AssetSelection, Definitions, RetryPolicy,
                     ScheduleDefinition, asset, asset_check, define_asset_job)

DATA = Path(__file__).parent / "data"
retry = RetryPolicy(max_retries=2, delay=10.0)


@asset(retry_policy=retry, group_name="regions")
def sales_orders():
    with open(DATA / "sales.csv", newline="") as f:
        return [dict(r, amount=float(r["amount"])) for r in csv.DictReader(f)]


def summarise(rows, region):
    amounts = [r["amount"] for r in rows if r["region"] == region]
    return {"region": region, "orders": len(amounts), "revenue": round(sum(amounts), 2)}


@asset(group_name="regions")
def us_summary(sales_orders):
    return summarise(sales_orders, "us")


@asset(group_name="regions", ins={"orders": AssetIn("sales_orders")})
def eu_summary(orders):
    return summarise(orders, "eu")


@asset(group_name="regions")
def asia_summary(sales_orders):
    return summarise(sales_orders, "asia")


@asset(group_name="regions")
def region_totals(us_summary, eu_summary, asia_summary):
    parts = [us_summary, eu_summary, asia_summary]
    return {**{p["region"]: p for p in parts},
            "total": {"orders": sum(p["orders"] for p in parts),
                      "revenue": round(sum(p["revenue"] for p in parts), 2)}}


@asset_check(asset="region_totals")
def no_negative_revenue(region_totals):
    return AssetCheckResult(passed=all(v["revenue"] >= 0 for v in region_totals.values()))


@asset(retry_policy=retry, group_name="regions")
def warehouse_regions(region_totals):
    with sqlite3.connect(os.environ["WAREHOUSE_DB"]) as db:
        db.execute("DROP TABLE IF EXISTS region_sales")
        db.execute("CREATE TABLE region_sales (region TEXT, orders INTEGER, revenue REAL)")
        db.executemany("INSERT INTO region_sales VALUES (?, ?, ?)",
                       [(k, v["orders"], v["revenue"]) for k, v in region_totals.items()])


daily_job = define_asset_job("daily_regions", selection=AssetSelection.groups("regions"))

defs = Definitions(
    assets=[sales_orders, us_summary, eu_summary, asia_summary, region_totals, warehouse_regions],
    asset_checks=[no_negative_revenue],
    jobs=[daily_job],
    schedules=[ScheduleDefinition(job=daily_job, cron_schedule="0 6 * * 0-6")],
)
