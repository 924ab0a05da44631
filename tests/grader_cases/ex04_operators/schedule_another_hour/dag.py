"""Wrong (one checklist line): schedule='0 3 * * *' instead of '0 2 * * *'."""

from __future__ import annotations

import csv
from pathlib import Path

import pendulum

from airflow.providers.smtp.operators.smtp import EmailOperator
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

# Relative to this file, so the DAG finds its data wherever the folder is deployed.
ORDERS_CSV = Path(__file__).parent / "data" / "orders.csv"


def total_revenue() -> float:
    """Add up the amount of every order, rounded to cents."""
    with ORDERS_CSV.open(newline="") as f:
        # csv.DictReader handles quoted fields such as "Smith, John"; a split(",") would not.
        amounts = [float(row["amount"]) for row in csv.DictReader(f)]
    # Floats drift (0.1 + 0.2 == 0.30000000000000004): round money to cents.
    return round(sum(amounts), 2)


with DAG(
    dag_id="common_operators",
    description="Bash, Python and email operators side by side",
    schedule="0 3 * * *",  # every day at 02:00 UTC
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
    tags=["week14", "exercise"],
) as dag:
    print_run_date = BashOperator(
        task_id="print_run_date",
        # Double quotes: bash expands $RUN_DATE inside them (single quotes would print it as is).
        bash_command='echo "Processing date: $RUN_DATE"',
        # `env` is templated: Airflow renders {{ ds }} (the run's date, YYYY-MM-DD) before running.
        env={"RUN_DATE": "{{ ds }}"},
    )

    revenue = PythonOperator(task_id="total_revenue", python_callable=total_revenue)

    send_summary = EmailOperator(
        task_id="send_summary",
        to="team@company.com",
        subject="Revenue for {{ ds }}: {{ ti.xcom_pull(task_ids='total_revenue') }}",
        html_content="<p>Total revenue on {{ ds }}: "
        "<b>{{ ti.xcom_pull(task_ids='total_revenue') }}</b></p>",
    )

    print_run_date >> revenue >> send_summary


if __name__ == "__main__":
    dag.test()
