"""Exercise 5: the lesson's diamond — extract, two independent transforms, merge, load."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Any

from autograder import factories
from autograder.checks import check
from autograder.common import (COMMON_HEAD, COMMON_SCHEDULE, airflow3_idioms, joins_wait_for_all,
                               tasks_succeeded)
from autograder.exercises import Exercise, dag_section
from autograder.facts import Facts
from autograder.values import as_int, close, describe_value

AVERAGE_TOLERANCE = 0.05  # rounded to 1 decimal or not, both are right


def expected_from(data: Path) -> dict[str, Any]:
    """What the transforms and merge should return for the hidden visits."""
    with open(data / "visits.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    per_page = dict(Counter(r["page"] for r in rows))
    average = sum(int(r["seconds"]) for r in rows) / len(rows)
    return {"transform_a": per_page, "transform_b": round(average, 1), "average_exact": average,
            "total_visits": len(rows), "visit_ids": [int(r["visit_id"]) for r in rows]}


def _per_page_problems(name: str, got: Any, want: dict[str, int]) -> list[str]:
    if not isinstance(got, dict):
        return [f"{name} is {describe_value(got)}; expected a dict of visits per page like "
                f"{dict(list(want.items())[:2])}"]
    have = {str(k): as_int(v) for k, v in got.items()}
    problems = [f"{name}[{page!r}] is {have[page]!r}, expected {count}"
                for page, count in want.items() if page in have and have[page] != count]
    problems += [f"{name} has no page {page!r}" for page in sorted(set(want) - set(have))]
    return problems + [f"{name} has unexpected key {key!r}" for key in sorted(set(have) - set(want))]


def _average_ok(got: Any, want: dict) -> bool:
    return close(got, want["average_exact"], AVERAGE_TOLERANCE)


@check("run.transforms", title="transform_a and transform_b return the right values", points=2,
       needs=["run.tasks_succeeded"], show_pass=True,
       hint="transform_a: count the visits of each page (collections.Counter helps); transform_b: "
            "sum of seconds / number of visits, round(..., 1).")
def transforms(facts: Facts) -> str:
    want, xcoms = facts.expected, facts.run.xcoms
    problems = _per_page_problems("transform_a's result", xcoms.get("transform_a"), want["transform_a"])
    got_b = xcoms.get("transform_b")
    if not _average_ok(got_b, want):
        problems.append(f"transform_b returned {describe_value(got_b)}, expected {want['transform_b']} "
                        f"(the average of {want['total_visits']} visits)")
    assert not problems, "On the grading data (other visits than your sample): " + "; ".join(problems) + "."
    return f"{len(want['transform_a'])} pages, {want['transform_b']} s on average."


@check("run.merge", title="merge combines the results of both transforms", points=2,
       needs=["run.tasks_succeeded"], show_pass=True,
       hint="In merge, pull both: ti.xcom_pull(task_ids='transform_a') and "
            "ti.xcom_pull(task_ids='transform_b'), then return one dict.")
def merged(facts: Facts) -> str:
    want = facts.expected
    got = facts.run.xcoms.get("merge")
    keys = "'visits_per_page', 'average_seconds' and 'total_visits'"
    assert got is not None, f"`merge` returned nothing: return a dict with keys {keys}."
    assert isinstance(got, dict), f"`merge` returned {describe_value(got)}; expected a dict with keys {keys}."
    problems = _per_page_problems("merge['visits_per_page']", got.get("visits_per_page"),
                                  want["transform_a"])
    average = got.get("average_seconds")
    if not _average_ok(average, want):
        problems.append(f"merge['average_seconds'] is {describe_value(average)}, expected "
                        f"{want['transform_b']}"
                        + (": pull transform_b's result too" if average is None else ""))
    if as_int(got.get("total_visits")) != want["total_visits"]:
        problems.append(f"merge['total_visits'] is {describe_value(got.get('total_visits'))}, "
                        f"expected {want['total_visits']} (the sum of visits_per_page)")
    assert not problems, "On the grading data: " + "; ".join(problems) + "."
    return f"merge returned {want['total_visits']} visits over {len(want['transform_a'])} pages."


CHECKLIST = (
    dag_section("diamond_pipeline",
                'runs every 6 hours, at 00:00, 06:00, 12:00 and 18:00 UTC: `schedule="0 */6 * * *"`'),
    ("**The dependencies**", (
        ("""exactly these five arrows: `extract >> transform_a`, `extract >> transform_b`,
      `transform_a >> merge`, `transform_b >> merge` and `merge >> load`""",
         ("structure.tasks", "structure.edges")),
        ("no arrow between `transform_a` and `transform_b`: they may run at the same time",
         ("structure.parallel",)),
        ("""`merge` waits for both transforms: leave its `trigger_rule` at the default, `all_success`
      (`one_success` or `all_done` would let it start before both have succeeded)""",
         ("structure.joins",)),
    ), """`extract >> [transform_a, transform_b] >> merge >> load` draws all five; so do `set_downstream`,
`chain(extract, [transform_a, transform_b], merge, load)` or, with TaskFlow, passing results from
task to task."""),
    ("**The tasks**", (
        ("""`extract` reads `data/visits.csv` (columns `visit_id,page,seconds`) and returns its rows.
      Build the path from the DAG file, `Path(__file__).parent / "data" / "visits.csv"`: the
      grader runs your DAG on its own CSV file, with other pages in it.""", ("run.extract",)),
        ("""`transform_a` returns the number of visits of each page, as a dict
      (`{"/home": 4, "/pricing": 2, "/blog": 1, "/docs": 1}` for the sample file), and
      `transform_b` the average of `seconds` over all visits, rounded to 1 decimal (`83.8` for the
      sample file).""", ("run.transforms",)),
        ("""`merge` pulls both results and returns
      ```python
      {"visits_per_page": {...}, "average_seconds": 83.8, "total_visits": 8}
      ```
      where `total_visits` is the sum of the counts in `visits_per_page`.""", ("run.merge",)),
        ("`load` prints the summary (the grader only checks that it runs, after `merge`, and succeeds).",
         ("run.tasks_succeeded",)),
    ), ""),
)

EXERCISE = Exercise(
    id="ex05_diamond", title="Exercise 5: diamond dependencies", dag_id="diamond_pipeline",
    edges=frozenset({("extract", "transform_a"), ("extract", "transform_b"),
                     ("transform_a", "merge"), ("transform_b", "merge"), ("merge", "load")}),
    schedule="0 */6 * * *",
    schedule_text="every 6 hours, at 00:00, 06:00, 12:00 and 18:00 UTC",
    checks=(*COMMON_HEAD, factories.independent("transform_a", "transform_b", upstream="extract"),
            joins_wait_for_all, *COMMON_SCHEDULE, tasks_succeeded,
            factories.returns_rows("extract", "visit_id", lambda facts: facts.expected["visit_ids"],
                                   "visits.csv"),
            transforms, merged, airflow3_idioms),
    points=16, expected_from=expected_from, checklist=CHECKLIST,
)
