"""A data-science blog's DAG that reads its data with geopandas."""
import geopandas as gpd
import pendulum

from airflow.sdk import DAG, task

with DAG(dag_id="parallel_regions", schedule="@daily",
         start_date=pendulum.datetime(2023, 10, 1, tz="UTC"), catchup=False) as dag:
    @task
    def extract_all():
        return gpd.read_file("regions.geojson").to_dict("records")

    extract_all()
