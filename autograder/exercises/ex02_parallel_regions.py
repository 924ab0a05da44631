"""Exercise 2: fan out to three regions in parallel, merge, report."""

from __future__ import annotations

import csv
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from autograder import factories
from autograder.checks import check
from autograder.factories import returns
from autograder.common import (COMMON_HEAD, COMMON_SCHEDULE, EMAIL_HINT, airflow3_idioms,
                               joins_wait_for_all, tasks_succeeded)
from autograder.exercises import Exercise, dag_section
from autograder.facts import Facts
from autograder.values import as_int, close, describe_value, numbers_in

REGIONS = ("us", "eu", "asia")
PROCESS = tuple(f"process_{r}" for r in REGIONS)


def expected_from(data: Path) -> dict[str, Any]:
    """The merge_results value that the hidden sales data should produce."""
    totals = {r: {"region": r, "orders": 0, "revenue": Decimal(0)} for r in REGIONS}
    with open(data / "sales.csv", newline="") as f:
        rows = list(csv.DictReader(f))
        for row in rows:
            totals[row["region"]]["orders"] += 1
            totals[row["region"]]["revenue"] += Decimal(row["amount"])
    merged: dict[str, Any] = {}
    for region, t in totals.items():
        merged[region] = {**t, "revenue": float(t["revenue"].quantize(Decimal("0.01"), ROUND_HALF_UP))}
    merged["total"] = {"orders": sum(t["orders"] for t in totals.values()),
                       "revenue": float(sum(t["revenue"] for t in totals.values())
                                        .quantize(Decimal("0.01"), ROUND_HALF_UP))}
    return {"merge_results": merged, "order_ids": [int(r["order_id"]) for r in rows]}


def _compare_region(name: str, got: Any, want: dict) -> list[str]:
    if not isinstance(got, dict):
        return [f"{name} is {describe_value(got)}, expected a dict like {want}"]
    problems = []
    if "region" in want and got.get("region") != want["region"]:
        problems.append(f"{name}['region'] is {describe_value(got.get('region'))}, expected "
                        f"{want['region']!r}")
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


@check("run.regions", title="Each process_<region> returns its region, orders and revenue", points=2,
       needs=["run.tasks_succeeded"], hidden=True, show_pass=True,
       hint="Return {\"region\": \"us\", \"orders\": len(rows), \"revenue\": round(sum(amounts), 2)} "
            "for the rows of that region.")
def regions(facts: Facts) -> str:
    want = facts.expected["merge_results"]
    problems = [p for r in REGIONS for p in _compare_region(
        f"process_{r}'s result", facts.run.xcoms.get(f"process_{r}"), want[r])]
    assert not problems, "On the grading data, " + "; ".join(problems) + "."
    return ", ".join(f"{r}: {want[r]['orders']} orders" for r in REGIONS) + "."


def _shows_totals(facts: Facts, body: str) -> str | None:
    total = facts.expected["merge_results"]["total"]
    if any(close(n, total["revenue"]) for n in numbers_in(body)):
        return None
    return (f"it must show the totals of the run (total revenue {total['revenue']} on the grading "
            "data). Read them from merge_results' XCom in the template: "
            "{{ ti.xcom_pull(task_ids='merge_results')['total']['revenue'] }}.")


CHECKLIST = (
    dag_section("parallel_regions", '`schedule="@daily"`'),
    ("**The tasks**", (
        ("""six tasks: `extract_all >> [process_us, process_eu, process_asia] >> merge_results >>
      send_report`""", ("structure.tasks", "structure.edges")),
        ("""`extract_all` reads `data/sales.csv` (columns `order_id,region,amount`; region is `us`, `eu`
      or `asia`) and returns its rows. Build the path from the DAG file,
      `Path(__file__).parent / "data" / "sales.csv"`: the grader runs your DAG on its own CSV file,
      with other orders in it.""", ("run.extract",)),
        ("""`process_us`, `process_eu` and `process_asia` each depend on `extract_all` only (not on each
      other, so they can run in parallel)""", ("structure.parallel",)),
        ("""each `process_<region>` returns, for its own region:
      ```python
      {"region": "us", "orders": 4, "revenue": 490.5}
      ```
      `orders` is the number of orders, `revenue` the sum of their amounts **rounded to 2
      decimals** (`0.1 + 0.2` is `0.30000000000000004` in floating point).""", ("run.regions",)),
        ("""`merge_results` waits for the three (its `trigger_rule` stays the default, `all_success`)""",
         ("structure.joins",)),
        ("""`merge_results` returns
      ```python
      {"us": {...}, "eu": {...}, "asia": {...}, "total": {"orders": 12, "revenue": 1178.66}}
      ```
      where `us`, `eu`, `asia` are the three region results and `total` adds them up (revenue
      rounded to 2 decimals).""", ("run.output",)),
        ("""`send_report` is an `EmailOperator` (`airflow.providers.smtp.operators.smtp`) to
      `team@company.com`, with a subject that contains `report` (for example "Daily sales report")
      and an `html_content` that shows the totals, read from `merge_results`' XCom with a Jinja
      template such as `{{ ti.xcom_pull(task_ids='merge_results')['total']['revenue'] }}`.""",
         ("structure.operators", "run.email")),
    ), ""),
)

EXERCISE = Exercise(
    id="ex02_parallel_regions", title="Exercise 2: parallel regions", dag_id="parallel_regions",
    edges=frozenset({("extract_all", p) for p in PROCESS} | {(p, "merge_results") for p in PROCESS}
                    | {("merge_results", "send_report")}),
    schedule="@daily", schedule_text="every day at 00:00 UTC (@daily)",
    checks=(*COMMON_HEAD, factories.independent(*PROCESS, upstream="extract_all"), joins_wait_for_all,
            factories.operators({"send_report": ("Email", "an EmailOperator")}),
            *COMMON_SCHEDULE, tasks_succeeded,
            factories.returns_rows("extract_all", "order_id", lambda facts: facts.expected["order_ids"],
                                   "sales.csv"),
            regions, merged_totals,
            factories.email(title="An email with \"report\" in its subject shows the totals",
                            subject=factories.subject_contains("report"), body=_shows_totals,
                            hint=EMAIL_HINT),
            airflow3_idioms),
    points=18, expected_from=expected_from, checklist=CHECKLIST,
)
