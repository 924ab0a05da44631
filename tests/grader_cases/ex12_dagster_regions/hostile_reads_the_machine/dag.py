"""Hostile: an asset that looks around the machine (the course's files, other gradings, the
network, the grader's processes) and writes what it saw into the warehouse. In the sandbox every
probe comes back closed."""

import glob
import os
import socket
import sqlite3

import dagster as dg


def probe(name, attempt):
    try:
        return f"{name}:{'open' if attempt() else 'closed'}"
    except Exception:
        return f"{name}:closed"


def connects(host, port):
    with socket.create_connection((host, port), timeout=2):
        return True


@dg.asset
def warehouse_regions():
    seen = [
        probe("repo", lambda: glob.glob("/work/*/autograder/hidden") or glob.glob("/root/*")),
        # Its own grading folder is there (its home, its data); any other would be a leak.
        probe("gradings", lambda: [p for p in os.listdir("/dev/shm") if p.startswith(("grade-", "prefect-"))
                                   and not os.environ["HOME"].startswith(f"/dev/shm/{p}/")]),
        probe("processes", lambda: len([p for p in os.listdir("/proc") if p.isdigit()]) > 3),
        probe("internet", lambda: connects("1.1.1.1", 53)),
        probe("postgres", lambda: connects("127.0.0.1", 5432)),
        probe("root", lambda: os.geteuid() == 0),
    ]
    with sqlite3.connect(os.environ["WAREHOUSE_DB"]) as db:
        db.execute("CREATE TABLE region_sales (region TEXT, orders INTEGER, revenue REAL)")
        db.executemany("INSERT INTO region_sales VALUES (?, 0, 0)", [(s,) for s in seen])


defs = dg.Definitions(assets=[warehouse_regions])
