"""Wrong (one checklist line): start_date is 2 October, not 1 October."""

from __future__ import annotations

import pendulum

from airflow.sdk import DAG, task

with DAG(
    dag_id="frequent_pipeline",
    description="Every 15 minutes during business hours",
    schedule="*/15 9-17 * * 1-5",  # every 15 min, 09:00-17:45 UTC, Monday-Friday
    start_date=pendulum.datetime(2023, 10, 2, tz="UTC"),
    catchup=False,
    tags=["week14", "exercise"],
) as dag:

    @task
    def report_slot(**context) -> str:
        """Say which 15-minute slot this run is for."""
        # The run's own time, not the clock: a late or re-run slot keeps its logical_date.
        slot = context["logical_date"].strftime("%Y-%m-%d %H:%M")
        print(f"Processing the slot of {slot}")
        return slot

    report_slot()


if __name__ == "__main__":
    dag.test()
