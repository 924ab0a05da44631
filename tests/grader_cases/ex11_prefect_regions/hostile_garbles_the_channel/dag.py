"""Hostile: at import, writes into every file descriptor it has (the grader's channel among them) a
phase that is a list, a line nested 200 000 deep, and an account of the file in the wrong shapes,
then defines a flow. The grader believes none of it: the import fails with what it did."""

import os

from prefect import flow, task

GARBLED = (b'{"event": "phase", "phase": ["run"]}\n' + b"[" * 200_000 + b"\n"
           + b'{"event": "imported", "ok": true, "structure": {"flows": [1], "tasks": "x"}}\n'
           + b'{"event": "ran", "state": "COMPLETED", "failures": [1, 2]}\n')
for fd in range(3, 64):
    try:
        os.write(fd, GARBLED)
    except OSError:
        pass


@task
def extract_all():
    return []


@flow(name="daily-regions")
def daily_regions():
    extract_all()
