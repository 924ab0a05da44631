"""Two DAGs in one file, as a tutorial page shows them side by side."""
import pendulum

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

for name in ("example_bash_daily", "example_bash_hourly"):
    with DAG(dag_id=name, schedule="@daily", start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
             catchup=False) as dag:
        BashOperator(task_id="say_hello", bash_command='echo "Hello from Airflow!"')
    globals()[name] = dag
