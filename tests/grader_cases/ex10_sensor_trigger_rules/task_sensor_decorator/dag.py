"""Right, another style: @dag, a @task.sensor function in poke mode, TriggerRule constants, chain."""

import csv
from pathlib import Path

import pendulum

from airflow.sdk import PokeReturnValue, chain, dag, task
from airflow.task.trigger_rule import TriggerRule

INCOMING = Path(__file__).parent / "data" / "incoming" / "orders.csv"


@dag(schedule="0 6 * * *", start_date=pendulum.datetime(2023, 10, 1, tz="UTC"), catchup=False)
def orders_arrival():
    @task.sensor(poke_interval=1, timeout=5, mode="poke")
    def wait_for_orders() -> PokeReturnValue:
        return PokeReturnValue(is_done=INCOMING.is_file())

    @task
    def load():
        with INCOMING.open() as f:
            rows = list(csv.DictReader(f))
        return {"orders": len(rows), "revenue": round(sum(float(r["amount"]) for r in rows), 2)}

    @task(trigger_rule=TriggerRule.ALL_FAILED)
    def notify_missing():
        print("no orders today")

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def cleanup():
        pass

    sensor, end = wait_for_orders(), cleanup()
    chain(sensor, [load(), notify_missing()], end)


orders_arrival()
