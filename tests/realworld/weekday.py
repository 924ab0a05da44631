"""Branching on the day of the week with airflow.utils.weekday (Airflow 2)."""
import pendulum

from airflow.operators.empty import EmptyOperator
from airflow.operators.weekday import BranchDayOfWeekOperator
from airflow.sdk import DAG
from airflow.utils.weekday import WeekDay

with DAG(dag_id="business_hours", schedule="@daily",
         start_date=pendulum.datetime(2023, 10, 1, tz="UTC"), catchup=False) as dag:
    branch = BranchDayOfWeekOperator(task_id="branch", week_day={WeekDay.MONDAY},
                                     follow_task_ids_if_true="monday", follow_task_ids_if_false="other")
    branch >> [EmptyOperator(task_id="monday"), EmptyOperator(task_id="other")]
