"""retries and retry_delay on each task instead of default_args: every task still retries 3 times (correct)."""
from datetime import timedelta
import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG("hello_world", schedule="@daily", start_date=pendulum.datetime(2023, 10, 1, tz="UTC"), catchup=False,
         tags=["example"], description="My first Airflow DAG"):
    kw = dict(retries=3, retry_delay=timedelta(minutes=5))
    BashOperator(task_id="say_hello", bash_command='echo "Hello from Airflow!"', **kw) >> \
        BashOperator(task_id="print_date", bash_command="date", **kw) >> \
        BashOperator(task_id="sleep_5_seconds", bash_command="sleep 1", **kw)
