"""Hostile: a flow whose task forks until the system says no, each child asleep for an hour. The
sandbox's process limit stops the forks, the grader's deadline ends them all, and the run is told
it did not finish in time."""

import os
import time

from prefect import flow, task


@task
def extract_all():
    while True:
        try:
            if os.fork() == 0:
                time.sleep(3600)
                os._exit(0)
        except OSError:
            time.sleep(3600)


@flow(name="daily-regions")
def daily_regions():
    extract_all()
