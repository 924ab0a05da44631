"""Right: TaskFlow — ``@task.bash`` with ``env``, ``@task`` for Python, data passed into the email."""

from __future__ import annotations

import csv
from pathlib import Path

import pendulum

from airflow.providers.smtp.operators.smtp import EmailOperator
from airflow.sdk import dag, task

ORDERS_CSV = Path(__file__).parent / "data" / "orders.csv"


@dag(
    dag_id="common_operators",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
)
def common_operators():
    @task.bash(env={"RUN_DATE": "{{ ds }}"})
    def print_run_date() -> str:
        return 'echo "Processing date: $RUN_DATE"'

    @task
    def total_revenue() -> float:
        with ORDERS_CSV.open(newline="") as f:
            return round(sum(float(row["amount"]) for row in csv.DictReader(f)), 2)

    revenue = total_revenue()
    send_summary = EmailOperator(
        task_id="send_summary",
        to=["team@company.com"],
        subject="Revenue: {{ ti.xcom_pull(task_ids='total_revenue') }}",
        html_content="<p>Revenue {{ ti.xcom_pull(task_ids='total_revenue') }} on {{ ds }}</p>",
    )
    print_run_date() >> revenue >> send_summary


dag = common_operators()


if __name__ == "__main__":
    dag.test()
