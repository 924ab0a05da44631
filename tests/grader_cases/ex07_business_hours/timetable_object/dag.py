"""Right: a ``CronTriggerTimetable`` object, a PythonOperator and ``get_current_context()``."""

from __future__ import annotations

import pendulum

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, CronTriggerTimetable, get_current_context


def report_slot() -> str:
    logical_date = get_current_context()["logical_date"]
    return logical_date.strftime("%Y-%m-%d %H:%M")


with DAG(
    dag_id="frequent_pipeline",
    schedule=CronTriggerTimetable("*/15 9-17 * * 1-5", timezone="UTC"),
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
) as dag:
    PythonOperator(task_id="report_slot", python_callable=report_slot)


if __name__ == "__main__":
    dag.test()
