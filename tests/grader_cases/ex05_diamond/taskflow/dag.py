"""Right: TaskFlow — passing results from task to task draws the diamond by itself."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pendulum

from airflow.sdk import dag, task

VISITS_CSV = Path(__file__).parent / "data" / "visits.csv"


@dag(
    dag_id="diamond_pipeline",
    schedule="0 */6 * * *",
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
)
def diamond_pipeline():
    @task
    def extract() -> list[dict]:
        with VISITS_CSV.open(newline="") as f:
            return list(csv.DictReader(f))  # numbers stay text; the transforms convert

    @task
    def transform_a(visits: list[dict]) -> dict[str, int]:
        return dict(Counter(v["page"] for v in visits))

    @task
    def transform_b(visits: list[dict]) -> float:
        return round(sum(int(v["seconds"]) for v in visits) / len(visits), 1)

    @task
    def merge(per_page: dict[str, int], average: float) -> dict:
        return {"visits_per_page": per_page, "average_seconds": average,
                "total_visits": sum(per_page.values())}

    @task
    def load(summary: dict) -> None:
        print(summary)

    visits = extract()
    load(merge(transform_a(visits), transform_b(visits)))


dag = diamond_pipeline()


if __name__ == "__main__":
    dag.test()
