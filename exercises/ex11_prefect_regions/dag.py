"""Exercise 11 — Parallel regions as a Prefect flow: the pipeline of exercise 2, in Prefect 3.

Complete this flow so that it has this shape, the three regions running side by side::

                 ┌──> process_region("us") ───┐
    extract_all ─┼──> process_region("eu") ───┼──> merge_results ──> load_warehouse
                 └──> process_region("asia") ─┘

* ``extract_all`` returns the rows of ``data/sales.csv`` (``order_id``, ``region``, ``amount``);
* ``process_region(sales, region)`` returns
  ``{"region": "us", "orders": <number of orders>, "revenue": <sum of amounts, rounded to 2>}``;
* ``merge_results`` returns ``{"us": ..., "eu": ..., "asia": ..., "total": {"orders": ..., "revenue": ...}}``;
* ``load_warehouse`` replaces the rows of table ``region_sales`` in the SQLite database at
  ``os.environ["WAREHOUSE_DB"]`` with one row per region and one for ``total``.

Look for the TODOs. The README next to this file has the full checklist; grade your work with
``make grade EX=ex11``. This file runs in the Prefect and Dagster environment, ``.venv-orchestrators``.
"""

from __future__ import annotations

import csv
import os
import sqlite3
from pathlib import Path

from prefect import flow, task

# Relative to this file, so the flow finds its data wherever the folder is deployed.
SALES_CSV = Path(__file__).parent / "data" / "sales.csv"
TABLE = "region_sales"
REGIONS = ("us", "eu", "asia")


# TODO: a source can fail now and then: let this task retry twice, 10 seconds apart.
@task
def extract_all() -> list[dict]:
    """Read every order of sales.csv, with the amount as a number."""
    with SALES_CSV.open(newline="") as f:
        return [{"order_id": int(row["order_id"]), "region": row["region"], "amount": float(row["amount"])}
                for row in csv.DictReader(f)]


@task
def process_region(sales: list[dict], region: str) -> dict:
    """Count the orders of one region and add up their revenue."""
    raise NotImplementedError("TODO: return {'region': region, 'orders': ..., 'revenue': ...}")


# TODO: merge_results(summaries) -> {"us": {...}, "eu": {...}, "asia": {...}, "total": {...}}


@task
def load_warehouse(merged: dict) -> int:
    """Replace the rows of region_sales with one row per region and one for the total."""
    with sqlite3.connect(os.environ.get("WAREHOUSE_DB", "warehouse.db")) as db:
        db.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (region TEXT PRIMARY KEY, orders INTEGER, revenue REAL)"
        )
        raise NotImplementedError("TODO: delete the old rows, insert the new ones, return their number")


@flow(name="daily-regions")
def daily_regions() -> dict:
    """Summarise sales per region side by side and load the totals into the warehouse."""
    sales = extract_all()
    # TODO: this runs the regions one after the other. Start them side by side with .map() or .submit().
    summaries = [process_region(sales, region) for region in REGIONS]
    return {"summaries": summaries}


if __name__ == "__main__":
    # TODO: serve a deployment of the flow that runs every day at 06:00 UTC: .serve(name=..., cron=...)
    daily_regions()
