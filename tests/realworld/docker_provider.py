"""Running each step in a container with the Docker provider."""
import pendulum

from airflow.providers.docker.operators.docker import DockerOperator
from airflow.sdk import DAG

with DAG(dag_id="daily_etl", schedule="0 3 * * *",
         start_date=pendulum.datetime(2023, 10, 1, tz="UTC"), catchup=False) as dag:
    DockerOperator(task_id="extract", image="python:3.11", command="python extract.py")
