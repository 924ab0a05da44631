"""Hostile: the asset that should write the warehouse puts there a link to a file of the machine
instead; the grader reads the warehouse after the run, outside the sandbox, where a link would
lead to the machine's own file. The grader refuses a link."""

import os

import dagster as dg


@dg.asset
def warehouse_regions():
    path = os.environ["WAREHOUSE_DB"]
    os.remove(path)
    os.symlink("/etc/passwd", path)


defs = dg.Definitions(assets=[warehouse_regions])
