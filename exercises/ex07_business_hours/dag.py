"""Exercise 7 — Scheduling and cron: run every 15 minutes during business hours.

Complete this DAG so that it:

1. runs every 15 minutes from 09:00 to 17:45 UTC, Monday to Friday (a cron expression), from
   2023-10-01, without catching up;
2. has one task, ``report_slot``, that returns the run's logical date and time as text,
   ``"YYYY-MM-DD HH:MM"`` (for the run of 09:15 on 2 October 2023: ``"2023-10-02 09:15"``).

Look for the TODOs. The README next to this file has the full checklist; grade your work with
``make grade EX=ex07``.
"""

from __future__ import annotations

import pendulum

from airflow.sdk import DAG, task

with DAG(
    dag_id="frequent_pipeline",
    description="Every 15 minutes during business hours",
    schedule=None,  # TODO: every 15 minutes, 09:00-17:45 UTC, Monday to Friday
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
    tags=["week14", "exercise"],
) as dag:

    @task
    def report_slot(**context) -> str:
        """Say which 15-minute slot this run is for."""
        # Airflow passes the task context to a function that accepts **context.
        # TODO: return context["logical_date"] formatted as "YYYY-MM-DD HH:MM" (strftime).
        raise NotImplementedError("TODO: return the run's logical date and time")

    report_slot()


if __name__ == "__main__":
    dag.test()
