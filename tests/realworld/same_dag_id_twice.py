"""A first attempt and a corrected copy of the DAG left in the same file, with the same dag_id."""
import pendulum

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(dag_id="hello_world", schedule="@daily", start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
         catchup=False) as first_try:
    BashOperator(task_id="say_hello", bash_command="echo hello")

with DAG(dag_id="hello_world", schedule="@daily", start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
         catchup=False) as dag:
    BashOperator(task_id="say_hello", bash_command='echo "Hello from Airflow!"')
