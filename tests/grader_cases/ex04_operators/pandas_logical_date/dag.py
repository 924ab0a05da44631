"""Right: pandas for the sum, ``logical_date`` formatted in the template, ``set_downstream``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pendulum

from airflow.providers.smtp.operators.smtp import EmailOperator
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

ORDERS_CSV = Path(__file__).parent / "data" / "orders.csv"


def total_revenue(**context) -> float:
    print(f"Summing orders for {context['ds']}")
    return round(float(pd.read_csv(ORDERS_CSV)["amount"].sum()), 2)


with DAG(
    dag_id="common_operators",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
) as dag:
    print_run_date = BashOperator(
        task_id="print_run_date",
        bash_command='echo "Processing date: ${RUN_DATE}"',
        env={"RUN_DATE": "{{ logical_date.strftime('%Y-%m-%d') }}"},
        append_env=True,
    )
    revenue = PythonOperator(task_id="total_revenue", python_callable=total_revenue)
    send_summary = EmailOperator(
        task_id="send_summary",
        to="team@company.com",
        subject="Total revenue {{ task_instance.xcom_pull('total_revenue') }} USD",
        html_content="<p>See subject.</p>",
    )
    print_run_date.set_downstream(revenue)
    revenue.set_downstream(send_summary)


if __name__ == "__main__":
    dag.test()
