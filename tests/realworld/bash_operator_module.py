"""The Airflow 1.10 module path of BashOperator."""
import pendulum

from airflow.operators.bash_operator import BashOperator
from airflow.sdk import DAG

with DAG(dag_id="hello_world", schedule="@daily",
         start_date=pendulum.datetime(2023, 10, 1, tz="UTC"), catchup=False) as dag:
    BashOperator(task_id="say_hello", bash_command='echo "Hello from Airflow!"')
