"""Right: ``{{ ds }}`` straight in the command, ``chain()``, and a timetable object."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pendulum

from airflow.providers.smtp.operators.smtp import EmailOperator
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, CronTriggerTimetable, chain

ORDERS_CSV = Path(__file__).parent / "data" / "orders.csv"


def total_revenue() -> str:
    with ORDERS_CSV.open(newline="") as f:
        total = sum((Decimal(row["amount"]) for row in csv.DictReader(f)), Decimal(0))
    return str(total)  # "1924.71": exact, as text


with DAG(
    dag_id="common_operators",
    schedule=CronTriggerTimetable("0 2 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
) as dag:
    chain(
        BashOperator(task_id="print_run_date", bash_command="echo Processing date: {{ ds }}"),
        PythonOperator(task_id="total_revenue", python_callable=total_revenue),
        EmailOperator(
            task_id="send_summary",
            to="Team@Company.com",
            subject="{{ ds }} revenue = {{ '{:,}'.format(ti.xcom_pull(task_ids='total_revenue') | float) }}",
            html_content="done",
        ),
    )


if __name__ == "__main__":
    dag.test()
