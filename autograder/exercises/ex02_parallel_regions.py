"""Exercise 2: fan out to three regions in parallel, merge, report."""

from __future__ import annotations

import csv
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from autograder import factories
from autograder.factories import returns
from autograder.common import (COMMON_HEAD, COMMON_SCHEDULE, EMAIL_HINT, airflow3_idioms,
                               joins_wait_for_all, tasks_succeeded)
from autograder.exercises import Exercise
from autograder.facts import Facts
from autograder.values import as_int, close, describe_value, numbers_in

REGIONS = ("us", "eu", "asia")
PROCESS = tuple(f"process_{r}" for r in REGIONS)


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


def _compare_region(name: str, got: Any, want: dict) -> list[str]:
    if not isinstance(got, dict):
        return [f"{name} is {describe_value(got)}, expected a dict like {want}"]
    problems = []
    if as_int(got.get("orders")) != want["orders"]:
        problems.append(f"{name}['orders'] is {got.get('orders')!r}, expected {want['orders']}")
    if not close(got.get("revenue"), want["revenue"]):
        problems.append(f"{name}['revenue'] is {got.get('revenue')!r}, expected {want['revenue']}")
    return problems


@returns("merge_results", title="merge_results returns the right totals for the grading data",
          hidden=True, hint="Count orders and sum `amount` per region from the rows extract_all "
                            "returned; round revenue with round(x, 2) at the end.")
def merged_totals(facts: Facts, got: Any) -> str:
    want = facts.expected["merge_results"]
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


def _shows_totals(facts: Facts, body: str) -> str | None:
    total = facts.expected["merge_results"]["total"]
    if any(close(n, total["revenue"]) for n in numbers_in(body)):
        return None
    return (f"it must show the totals of the run (total revenue {total['revenue']} on the grading "
            "data). Read them from merge_results' XCom in the template: "
            "{{ ti.xcom_pull(task_ids='merge_results')['total']['revenue'] }}.")


EXERCISE = Exercise(
    id="ex02_parallel_regions", title="Exercise 2: parallel regions", dag_id="parallel_regions",
    edges=frozenset({("extract_all", p) for p in PROCESS} | {(p, "merge_results") for p in PROCESS}
                    | {("merge_results", "send_report")}),
    schedule="@daily", schedule_text="every day at 00:00 UTC (@daily)",
    checks=(*COMMON_HEAD, factories.independent(*PROCESS, upstream="extract_all"), joins_wait_for_all,
            *COMMON_SCHEDULE, tasks_succeeded, merged_totals,
            factories.email(title="An email with \"report\" in its subject shows the totals",
                            subject=factories.subject_contains("report"), body=_shows_totals,
                            hint=EMAIL_HINT),
            airflow3_idioms),
    points=14, expected_from=expected_from,
)
