"""Everything Airflow 3 but the schedule argument, as many tutorials write it."""
import pendulum

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(dag_id="hello_world", schedule_interval="@daily",
         start_date=pendulum.datetime(2023, 10, 1, tz="UTC"), catchup=False) as dag:
    BashOperator(task_id="say_hello", bash_command='echo "Hello from Airflow!"')
