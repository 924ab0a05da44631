"""Exercise 2: fan out to three regions in parallel, merge, report."""

from __future__ import annotations

import csv
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from autograder.checks import check
from autograder.common import (COMMON_HEAD, joins_wait_for_all, COMMON_SCHEDULE, airflow3_idioms, email_check,
                               tasks_succeeded)
from autograder.exercises import Exercise
from autograder.facts import Facts
from autograder.values import as_int, close, describe_value

REGIONS = ("us", "eu", "asia")


def expected_from(data: Path) -> dict[str, Any]:
    """The merge_results value that the hidden sales data should produce."""
    totals = {r: {"region": r, "orders": 0, "revenue": Decimal(0)} for r in REGIONS}
    with open(data / "sales.csv", newline="") as f:
        for row in csv.DictReader(f):
            totals[row["region"]]["orders"] += 1
            totals[row["region"]]["revenue"] += Decimal(row["amount"])
    merged: dict[str, Any] = {}
    for region, t in totals.items():
        merged[region] = {**t, "revenue": float(t["revenue"].quantize(Decimal("0.01"), ROUND_HALF_UP))}
    merged["total"] = {"orders": sum(t["orders"] for t in totals.values()),
                       "revenue": float(sum(t["revenue"] for t in totals.values())
                                        .quantize(Decimal("0.01"), ROUND_HALF_UP))}
    return {"merge_results": merged}


@check("structure.parallel", title="The three regions run in parallel", points=1,
       needs=["structure.tasks"],
       hint="Fan out with `extract_all >> [process_us, process_eu, process_asia]`.")
def regions_run_in_parallel(facts: Facts) -> None:
    for a in REGIONS:
        for b in REGIONS:
            if a == b:
                continue
            path = facts.dag.path_between(f"process_{a}", f"process_{b}")
            assert path is None, (f"`process_{b}` waits for `process_{a}` via {' >> '.join(path)}: "
                                  "the regions cannot run at the same time. Make each region depend "
                                  "only on `extract_all`.")


def _compare_region(name: str, got: Any, want: dict) -> list[str]:
    if not isinstance(got, dict):
        return [f"{name} is {describe_value(got)}, expected a dict like {want}"]
    problems = []
    if as_int(got.get("orders")) != want["orders"]:
        problems.append(f"{name}['orders'] is {got.get('orders')!r}, expected {want['orders']}")
    if not close(got.get("revenue"), want["revenue"]):
        problems.append(f"{name}['revenue'] is {got.get('revenue')!r}, expected {want['revenue']}")
    return problems


@check("run.output", title="merge_results returns the right totals for the grading data", points=2,
       hidden=True,
       needs=["run.tasks_succeeded"],
       hint="Count orders and sum `amount` per region from the rows extract_all returned; "
            "round revenue with round(x, 2) at the end.")
def merged_totals(facts: Facts) -> str:
    want = facts.expected["merge_results"]
    got = facts.run.xcoms.get("merge_results")
    assert got is not None, ("`merge_results` returned nothing: `return` the merged dict so that it "
                             "is stored as its XCom.")
    assert isinstance(got, dict), f"`merge_results` returned {describe_value(got)}; expected a dict " \
                                  "with keys 'us', 'eu', 'asia' and 'total'."
    problems = []
    for region in REGIONS:
        found = _compare_region(f"[{region!r}]", got.get(region), want[region])
        if found:
            upstream = facts.run.xcoms.get(f"process_{region}")
            if _compare_region("", upstream, want[region]):
                found.append(f"(`process_{region}` itself returned {describe_value(upstream)})")
        problems += found
    problems += _compare_region("['total']", got.get("total"), want["total"])
    assert not problems, ("On the grading data (different from your sample), merge_results: "
                          + "; ".join(problems) + ".")
    return f"Totals match: {want['total']['orders']} orders, revenue {want['total']['revenue']}."


EXERCISE = Exercise(
    id="ex02_parallel_regions",
    title="Exercise 2: parallel regions",
    dag_id="parallel_regions",
    tasks=frozenset({"extract_all", "process_us", "process_eu", "process_asia", "merge_results",
                     "send_report"}),
    edges=frozenset({("extract_all", f"process_{r}") for r in REGIONS}
                    | {(f"process_{r}", "merge_results") for r in REGIONS}
                    | {("merge_results", "send_report")}),
    schedule="@daily",
    schedule_text="every day at 00:00 UTC (@daily)",
    start_date=date(2023, 10, 1),
    catchup=False,
    checks=(*COMMON_HEAD, regions_run_in_parallel, joins_wait_for_all, *COMMON_SCHEDULE, tasks_succeeded,
            merged_totals,
            email_check("report"), airflow3_idioms),
    expected_from=expected_from,
)
