"""Right, in another style: .submit() per region in a loop, futures resolved by hand, the cron in a
module-level constant given to .to_deployment(), served with prefect.serve()."""

import csv
import os
import sqlite3
from pathlib import Path

from prefect import flow, serve, task
from prefect.futures import wait

HERE = Path(__file__).parent
CRON = "0 6 * * *"


@task(retries=2, retry_delay_seconds=10.0)
def extract_all():
    with open(HERE / "data" / "sales.csv", newline="") as f:
        return list(csv.DictReader(f))


@task
def process_region(rows, region):
    mine = [float(r["amount"]) for r in rows if r["region"] == region]
    return {"region": region, "orders": len(mine), "revenue": round(sum(mine), 2)}


@task
def merge_results(results):
    merged = {r["region"]: r for r in results}
    merged["total"] = {"orders": sum(r["orders"] for r in results),
                       "revenue": round(sum(r["revenue"] for r in results), 2)}
    return merged


@task(retries=2, retry_delay_seconds=10)
def load_warehouse(merged):
    db = sqlite3.connect(os.environ["WAREHOUSE_DB"])
    db.execute("DROP TABLE IF EXISTS region_sales")
    db.execute("CREATE TABLE region_sales (region TEXT, orders INTEGER, revenue REAL)")
    db.executemany("INSERT INTO region_sales VALUES (?, ?, ?)",
                   [(k, v["orders"], v["revenue"]) for k, v in merged.items()])
    db.commit()
    db.close()


@flow(name="daily-regions", log_prints=True)
def daily_regions():
    rows = extract_all()
    futures = []
    for region in ["us", "eu", "asia"]:
        futures.append(process_region.submit(rows, region))
    wait(futures)
    merged = merge_results([f.result() for f in futures])
    load_warehouse(merged)
    print(merged["total"])


if __name__ == "__main__":
    serve(daily_regions.to_deployment(name="every-morning", cron=CRON))
