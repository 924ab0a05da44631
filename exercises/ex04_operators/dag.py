"""Exercise 4 — Common operators: a shell command, a Python function and an email in one DAG.

Complete this DAG so that it runs every day at 02:00 UTC from 2023-10-01, without catching up,
and chains three tasks, each with a different operator:
``print_run_date >> total_revenue >> send_summary``:

* ``print_run_date`` (BashOperator) prints ``Processing date: <the run's date>``, reading the date
  from an environment variable ``RUN_DATE`` that Airflow fills in with ``{{ ds }}``;
* ``total_revenue`` (PythonOperator) returns the sum of the ``amount`` column of
  ``data/orders.csv``, rounded to 2 decimals;
* ``send_summary`` (EmailOperator) emails ``team@company.com`` with that revenue in the subject.

Look for the TODOs. The README next to this file has the full checklist; grade your work with
``make grade EX=ex04``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pendulum

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

# TODO: you will need this for send_summary.
# from airflow.providers.smtp.operators.smtp import EmailOperator

# Relative to this file, so the DAG finds its data wherever the folder is deployed.
ORDERS_CSV = Path(__file__).parent / "data" / "orders.csv"


def total_revenue() -> float:
    """Add up the amount of every order, rounded to cents."""
    with ORDERS_CSV.open(newline="") as f:
        rows = list(csv.DictReader(f))
    # csv yields strings: convert each amount before adding.
    raise NotImplementedError(f"TODO: add up the amounts of the {len(rows)} orders and return the total")


with DAG(
    dag_id="common_operators",
    description="Bash, Python and email operators side by side",
    schedule=None,  # TODO: every day at 02:00 (a cron expression)
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
    tags=["week14", "exercise"],
) as dag:
    print_run_date = BashOperator(
        task_id="print_run_date",
        bash_command='echo "Processing date: $RUN_DATE"',
        # TODO: set the environment variable RUN_DATE to the run's date with `env=`
        # and the template {{ ds }}.
    )

    revenue = PythonOperator(task_id="total_revenue", python_callable=total_revenue)

    # TODO: a `send_summary` EmailOperator to team@company.com whose subject shows the revenue:
    #   subject="Revenue for {{ ds }}: {{ ti.xcom_pull(task_ids='total_revenue') }}"

    # TODO: send_summary belongs at the end of this chain.
    print_run_date >> revenue


if __name__ == "__main__":
    dag.test()
