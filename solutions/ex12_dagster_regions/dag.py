"""Parallel regions as Dagster assets: the function arguments draw the graph.

Reference solution for exercise 12. The same pipeline as exercise 2, where each step is an asset
(a value Dagster keeps up to date) rather than a task::

                    ┌──> us_summary ───┐
    sales_orders ───┼──> eu_summary ───┼──> region_totals ──> warehouse_regions
                    └──> asia_summary ─┘

Run it once, on the sample data, into a warehouse of your choice:
    WAREHOUSE_DB=/tmp/warehouse.db .venv-orchestrators/bin/python solutions/ex12_dagster_regions/dag.py
"""

from __future__ import annotations

import csv
import os
import sqlite3
from pathlib import Path

import dagster as dg

# Relative to this file, so the assets find their data wherever the folder is deployed.
SALES_CSV = Path(__file__).parent / "data" / "sales.csv"
TABLE = "region_sales"
REGIONS = ("us", "eu", "asia")
# Sources and sinks fail now and then: try twice more, 10 seconds apart.
FLAKY = dg.RetryPolicy(max_retries=2, delay=10)


@dg.asset(retry_policy=FLAKY)
def sales_orders() -> list[dict]:
    """Every order of sales.csv, with the amount as a number."""
    with SALES_CSV.open(newline="") as f:
        return [{"order_id": int(row["order_id"]), "region": row["region"], "amount": float(row["amount"])}
                for row in csv.DictReader(f)]


def region_summary(region: str) -> dg.AssetsDefinition:
    """One asset per region from one function; each reads sales_orders only."""

    @dg.asset(name=f"{region}_summary")
    def summary(sales_orders: list[dict]) -> dict:
        amounts = [sale["amount"] for sale in sales_orders if sale["region"] == region]
        # Floats drift (0.1 + 0.2 == 0.30000000000000004): round money to cents.
        return {"region": region, "orders": len(amounts), "revenue": round(sum(amounts), 2)}

    return summary


us_summary, eu_summary, asia_summary = (region_summary(region) for region in REGIONS)


@dg.asset
def region_totals(us_summary: dict, eu_summary: dict, asia_summary: dict) -> dict:
    """The three summaries side by side, plus a grand total."""
    regions = {"us": us_summary, "eu": eu_summary, "asia": asia_summary}
    total = {"orders": sum(r["orders"] for r in regions.values()),
             "revenue": round(sum(r["revenue"] for r in regions.values()), 2)}
    return {**regions, "total": total}


@dg.asset_check(asset=region_totals, description="The total adds up the regions")
def total_adds_up(region_totals: dict) -> dg.AssetCheckResult:
    orders = sum(region_totals[r]["orders"] for r in REGIONS)
    return dg.AssetCheckResult(passed=orders == region_totals["total"]["orders"],
                               metadata={"orders": orders})


@dg.asset(retry_policy=FLAKY)
def warehouse_regions(region_totals: dict) -> dg.MaterializeResult:
    """The warehouse table region_sales: one row per region and one for the total."""
    rows = [(name, r["orders"], r["revenue"]) for name, r in region_totals.items()]
    with sqlite3.connect(os.environ.get("WAREHOUSE_DB", "warehouse.db")) as db:
        db.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (region TEXT PRIMARY KEY, orders INTEGER, revenue REAL)"
        )
        db.execute(f"DELETE FROM {TABLE}")  # a re-run replaces the rows instead of adding to them
        db.executemany(f"INSERT INTO {TABLE} VALUES (?, ?, ?)", rows)
    return dg.MaterializeResult(metadata={"rows": len(rows)})


every_morning = dg.ScheduleDefinition(name="every_morning", target=dg.AssetSelection.all(),
                                      cron_schedule="0 6 * * *", execution_timezone="UTC")

defs = dg.Definitions(
    assets=[sales_orders, us_summary, eu_summary, asia_summary, region_totals, warehouse_regions],
    asset_checks=[total_adds_up],
    schedules=[every_morning],
)


if __name__ == "__main__":
    result = dg.materialize([*defs.assets, *defs.asset_checks], instance=dg.DagsterInstance.ephemeral())
    print("success:", result.success)
