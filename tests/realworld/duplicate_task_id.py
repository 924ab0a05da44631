"""Two tasks given the same task_id by copy and paste."""
import pendulum

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(dag_id="hello_world", schedule="@daily", start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
         catchup=False) as dag:
    say_hello = BashOperator(task_id="say_hello", bash_command='echo "Hello from Airflow!"')
    print_date = BashOperator(task_id="say_hello", bash_command="date")
