"""Exercise 12 — Parallel regions as Dagster assets: the pipeline of exercise 2, in Dagster.

Complete these assets so that their arguments draw this graph, the three summaries side by side::

                    ┌──> us_summary ───┐
    sales_orders ───┼──> eu_summary ───┼──> region_totals ──> warehouse_regions
                    └──> asia_summary ─┘

* ``sales_orders`` is the rows of ``data/sales.csv`` (``order_id``, ``region``, ``amount``);
* each ``<region>_summary`` is
  ``{"region": "us", "orders": <number of orders>, "revenue": <sum of amounts, rounded to 2>}``;
* ``region_totals`` is ``{"us": ..., "eu": ..., "asia": ..., "total": {"orders": ..., "revenue": ...}}``;
* ``warehouse_regions`` replaces the rows of table ``region_sales`` in the SQLite database at
  ``os.environ["WAREHOUSE_DB"]`` with one row per region and one for ``total``.

Look for the TODOs. The README next to this file has the full checklist; grade your work with
``make grade EX=ex12``. This file runs in the Prefect and Dagster environment, ``.venv-orchestrators``.
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


# TODO: a source can fail now and then: retry twice, 10 seconds apart (retry_policy=dg.RetryPolicy(...)).
@dg.asset
def sales_orders() -> list[dict]:
    """Every order of sales.csv, with the amount as a number."""
    with SALES_CSV.open(newline="") as f:
        return [{"order_id": int(row["order_id"]), "region": row["region"], "amount": float(row["amount"])}
                for row in csv.DictReader(f)]


@dg.asset
def us_summary(sales_orders: list[dict]) -> dict:
    """The US orders: their number and their revenue."""
    raise NotImplementedError("TODO: return {'region': 'us', 'orders': ..., 'revenue': ...}")


# TODO: eu_summary and asia_summary. Three copies of the same code? A function that returns one
# @dg.asset(name=f"{region}_summary") per region does it once.

# TODO: region_totals(us_summary, eu_summary, asia_summary), an asset check on it
# (@dg.asset_check(asset=region_totals)), and warehouse_regions(region_totals), which writes
# the table into the SQLite database at os.environ["WAREHOUSE_DB"].

defs = dg.Definitions(
    assets=[sales_orders, us_summary],
    # TODO: asset_checks=[...], and schedules=[dg.ScheduleDefinition(...)] every day at 06:00 UTC
)


if __name__ == "__main__":
    print("success:", dg.materialize(defs.assets, instance=dg.DagsterInstance.ephemeral()).success)
