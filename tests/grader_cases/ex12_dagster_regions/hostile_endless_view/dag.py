"""Hostile: the warehouse table is a view without end (a recursive query that counts for ever):
read whole, it would hold the grader until its memory ran out. The grader reads a few rows."""

import os
import sqlite3

import dagster as dg


@dg.asset
def warehouse_regions():
    with sqlite3.connect(os.environ["WAREHOUSE_DB"]) as db:
        db.execute("CREATE VIEW region_sales AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
                   "SELECT x + 1 FROM c) SELECT 'r' || x AS region, 1 AS orders, 1.0 AS revenue FROM c")


defs = dg.Definitions(assets=[warehouse_regions])
