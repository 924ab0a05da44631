"""A loop back from the last task to the first, as a retry-everything idea might draw it."""
import pendulum

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(dag_id="hello_world", schedule="@daily", start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
         catchup=False) as dag:
    say_hello = BashOperator(task_id="say_hello", bash_command='echo "Hello from Airflow!"')
    print_date = BashOperator(task_id="print_date", bash_command="date")
    sleep = BashOperator(task_id="sleep_5_seconds", bash_command="sleep 1")
    say_hello >> print_date >> sleep >> say_hello
