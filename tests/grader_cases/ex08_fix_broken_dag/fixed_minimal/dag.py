"""Right: the smallest fix — the lesson's style kept (``**context``, default_args, a naive
start_date, which Airflow reads as UTC), only what Airflow 3 rejects changed; ``chain()`` for the
order."""

import csv
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, chain

EVENTS_CSV = Path(__file__).parent / "data" / "events.csv"

default_args = {
    "owner": "analytics",
    "retries": 1,
    "retry_delay": timedelta(minutes=5),
}


def extract(**context):
    with EVENTS_CSV.open(newline="") as f:
        return list(csv.DictReader(f))


def transform(**context):
    events = context["ti"].xcom_pull(task_ids="extract")
    return dict(Counter(event["action"] for event in events))


def report(**context):
    counts = context["ti"].xcom_pull(task_ids="transform")
    day = context["ds"]
    summary = {"date": day, "events": sum(counts.values()), "by_action": counts}
    print(f"Report for {day}: {summary}")
    return summary


with DAG(
    dag_id="event_report",
    default_args=default_args,
    schedule="30 8 * * 1-5",
    start_date=datetime(2023, 10, 1),
    catchup=False,
) as dag:
    extract_task = PythonOperator(task_id="extract", python_callable=extract)
    transform_task = PythonOperator(task_id="transform", python_callable=transform)
    report_task = PythonOperator(task_id="report", python_callable=report)
    announce_task = BashOperator(
        task_id="announce",
        bash_command='echo "Event report for {{ logical_date.strftime(\'%Y-%m-%d\') }} is ready"',
    )

    chain(extract_task, transform_task, report_task, announce_task)


if __name__ == "__main__":
    dag.test()
