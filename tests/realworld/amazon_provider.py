"""Reading the users file from S3 with the Amazon provider."""
import pendulum

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.sdk import DAG, task

with DAG(dag_id="daily_etl", schedule="0 3 * * *",
         start_date=pendulum.datetime(2023, 10, 1, tz="UTC"), catchup=False) as dag:
    @task
    def extract():
        return S3Hook().read_key("users.csv", bucket_name="data")

    extract()
