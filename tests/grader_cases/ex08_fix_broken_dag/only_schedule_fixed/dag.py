"""Wrong: only ``schedule_interval`` was fixed; ``provide_context`` still breaks the import."""

import csv
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.python import PythonOperator

EVENTS_CSV = Path(__file__).parent / "data" / "events.csv"

default_args = {
    "owner": "analytics",
    "retries": 1,
    "retry_delay": timedelta(minutes=5),
}


def extract(**context):
    """Read every event of events.csv."""
    with EVENTS_CSV.open(newline="") as f:
        return list(csv.DictReader(f))


def transform(**context):
    """Count the events of each action."""
    events = context["ti"].xcom_pull(task_ids="extract")
    return dict(Counter(event["action"] for event in events))


def report(**context):
    """Summarise the day: its date, the number of events and the count per action."""
    counts = context["ti"].xcom_pull(task_ids="transform")
    day = context["execution_date"].strftime("%Y-%m-%d")
    summary = {"date": day, "events": sum(counts.values()), "by_action": counts}
    print(f"Report for {day}: {summary}")
    return summary


with DAG(
    dag_id="event_report",
    description="Count yesterday's events per action and announce the report",
    default_args=default_args,
    schedule="30 8 * * 1-5",
    start_date=datetime(2023, 10, 1),
    catchup=False,
) as dag:
    extract_task = PythonOperator(task_id="extract", python_callable=extract, provide_context=True)
    transform_task = PythonOperator(task_id="transform", python_callable=transform, provide_context=True)
    report_task = PythonOperator(task_id="report", python_callable=report, provide_context=True)
    announce_task = BashOperator(
        task_id="announce",
        bash_command='echo "Event report for {{ execution_date.strftime(\'%Y-%m-%d\') }} is ready"',
    )

    extract_task >> report_task >> transform_task
    report_task >> announce_task


if __name__ == "__main__":
    dag.test()
