"""Wrong (one checklist line): extract returns the file's text; transform parses it."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pendulum

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

# Relative to this file, so the DAG finds its data wherever the folder is deployed.
EVENTS_CSV = Path(__file__).parent / "data" / "events.csv"


def extract() -> list[dict]:
    """Read every event of events.csv."""
    return EVENTS_CSV.read_text()


def transform(**context) -> dict[str, int]:
    """Count the events of each action."""
    events = csv.DictReader(context["ti"].xcom_pull(task_ids="extract").splitlines())
    return dict(Counter(event["action"] for event in events))


def report(**context) -> dict:
    """Summarise the day: its date, the number of events and the count per action."""
    counts = context["ti"].xcom_pull(task_ids="transform")
    day = context["logical_date"].strftime("%Y-%m-%d")  # the same as context["ds"]
    summary = {"date": day, "events": sum(counts.values()), "by_action": counts}
    print(f"Report for {day}: {summary}")
    return summary


with DAG(
    dag_id="event_report",
    description="Count yesterday's events per action and announce the report",
    schedule="30 8 * * 1-5",  # 08:30 UTC, Monday to Friday
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
    tags=["week14", "exercise"],
) as dag:
    extract_task = PythonOperator(task_id="extract", python_callable=extract)
    transform_task = PythonOperator(task_id="transform", python_callable=transform)
    report_task = PythonOperator(task_id="report", python_callable=report)
    announce_task = BashOperator(
        task_id="announce",
        bash_command='echo "Event report for {{ ds }} is ready"',
    )

    extract_task >> transform_task >> report_task >> announce_task


if __name__ == "__main__":
    dag.test()
