"""Wrong: the summary goes to the wrong address."""

from __future__ import annotations

import csv
from pathlib import Path

import pendulum

from airflow.providers.smtp.operators.smtp import EmailOperator
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

ORDERS_CSV = Path(__file__).parent / "data" / "orders.csv"


def total_revenue() -> float:
    with ORDERS_CSV.open(newline="") as f:
        amounts = [float(row["amount"]) for row in csv.DictReader(f)]
    return round(sum(amounts), 2)


with DAG(
    dag_id="common_operators",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
) as dag:
    print_run_date = BashOperator(
        task_id="print_run_date",
        bash_command='echo "Processing date: $RUN_DATE"',
        env={"RUN_DATE": "{{ ds }}"},
    )
    revenue = PythonOperator(task_id="total_revenue", python_callable=total_revenue)
    send_summary = EmailOperator(
        task_id="send_summary",
        to="team@example.com",
        subject="Revenue for {{ ds }}: {{ ti.xcom_pull(task_ids='total_revenue') }}",
        html_content="Revenue: {{ ti.xcom_pull(task_ids='total_revenue') }}",
    )

    print_run_date >> revenue >> send_summary


if __name__ == "__main__":
    dag.test()
