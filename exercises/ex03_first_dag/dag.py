"""Exercise 3 — Your first DAG: the lesson's hello_world, written for Airflow 3.

Complete this DAG so that it:

1. runs every day at midnight (``@daily``) from 2023-10-01, without catching up on past days;
2. gives every task 3 retries, 5 minutes apart, through ``default_args``;
3. chains three BashOperator tasks: ``say_hello >> print_date >> sleep_5_seconds``:

   * ``say_hello`` prints ``Hello from Airflow!``;
   * ``print_date`` runs the ``date`` command;
   * ``sleep_5_seconds`` sleeps (``sleep 1`` is enough: it keeps grading quick).

Look for the TODOs. The README next to this file has the full checklist; grade your work with
``make grade EX=ex03``.
"""

from __future__ import annotations

import pendulum

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

# TODO: you will need this for the retry delay.
# from datetime import timedelta

# Applied to every task of the DAG, unless a task sets its own value.
# TODO: 3 retries, 5 minutes between them.
default_args: dict = {
    "owner": "airflow",
}

with DAG(
    dag_id="hello_world",
    description="My first Airflow DAG",
    default_args=default_args,
    schedule=None,  # TODO: every day at midnight (a preset)
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
    tags=["example"],
) as dag:
    task_hello = BashOperator(
        task_id="say_hello",
        bash_command='echo "TODO"',  # TODO: the greeting
    )

    # TODO: a `print_date` task that runs the `date` command.

    # TODO: a `sleep_5_seconds` task that runs `sleep 1`.

    # TODO: say_hello, then print_date, then sleep_5_seconds.


if __name__ == "__main__":
    dag.test()
