"""Exercise 11: the parallel-regions pipeline as a Prefect flow, graded in .venv-orchestrators."""

from __future__ import annotations

from typing import Any

from autograder.checks import check
from autograder.exercises import Exercise, chain
from autograder.exercises.ex12_dagster_regions import TABLE, expected_from
from autograder.orchestrators import checks as shared

TASKS = ("extract_all", "process_region", "merge_results", "load_warehouse")
RETRYING = ("extract_all", "load_warehouse")
CRON = "0 6 * * *"
FLOW = "daily_regions"
FLOW_NAME = "daily-regions"


def _structure(facts: Any) -> dict:
    return facts.structure or {}


def _tasks(facts: Any) -> dict[str, dict]:
    """The file's tasks by function name (a task renamed with name=... keeps its function's)."""
    return {t["fn"]: {**t, "attr": attr} for attr, t in _structure(facts).get("tasks", {}).items()}


@check("import.flow", title="The file defines the flow `daily_regions`", points=1,
       needs=["import.loads"],
       hint=f'`@flow(name="{FLOW_NAME}")` on `def {FLOW}():`, a flow that needs no arguments.')
def defines_flow(facts: Any) -> None:
    flows = _structure(facts).get("flows", {})
    assert flows, f"{facts.filename} defines no `@flow` at the top level."
    mine = [f for f in flows.values() if f["fn"] == FLOW]
    if not mine:
        named = ", ".join(f"`def {f['fn']}`" for f in flows.values())
        raise AssertionError(f"The flow is {named}; the exercise asks for `def {FLOW}()`.")
    assert mine[0]["name"] == FLOW_NAME, (f"`{FLOW}` is named {mine[0]['name']!r}; give it "
                                          f"`@flow(name=\"{FLOW_NAME}\")`.")
    required = [str(p) for p in mine[0].get("required") or []]
    assert not required, (f"`{FLOW}` needs {', '.join(f'`{p}`' for p in required)} to run, but a "
                          "schedule starts it with no arguments: give each parameter a default, "
                          f"e.g. `{required[0]}: str = str(SALES_CSV)`.")


@check("structure.tasks", title="The four tasks", points=2, needs=["import.loads"],
       hint="Decorate each step with `@task`: `extract_all`, `process_region`, `merge_results`, "
            "`load_warehouse`.")
def tasks(facts: Any) -> None:
    got = _tasks(facts)
    missing = [t for t in TASKS if t not in got]
    assert not missing, (f"No task {', '.join(f'`{t}`' for t in missing)}: decorate "
                         + ", ".join(f"`def {t}(...)`" for t in missing) + " with `@task`"
                         + (f" (the file's tasks: {', '.join(f'`{t}`' for t in sorted(got))})" if got else "")
                         + ".")


@check("structure.retries", title="`extract_all` and `load_warehouse` retry twice, 10 s apart",
       points=2, needs=["structure.tasks"], hint="`@task(retries=2, retry_delay_seconds=10)`.")
def retries(facts: Any) -> None:
    problems = []
    for name in RETRYING:
        task = _tasks(facts)[name]
        if task["retries"] != 2:
            problems.append(f"`{name}` has retries={task['retries']!r}, not 2")
        delay = task["retry_delay_seconds"]
        if not shared.is_seconds(delay, 10):
            problems.append(f"`{name}` has retry_delay_seconds={delay!r}, not 10")
    assert not problems, "; ".join(problems) + "."


@check("structure.concurrent", title="The flow starts the three regions side by side", points=2,
       needs=["structure.tasks"],
       hint="`process_region.map(unmapped(sales), REGIONS)`, or `process_region.submit(sales, region)` "
            "for each region, then `.result()` on what they return.")
def concurrent(facts: Any) -> None:
    names = {_tasks(facts)["process_region"]["attr"]}
    if shared.concurrent_calls(facts.tree, names):
        return
    direct = shared.direct_calls(facts.tree, names)
    if direct:
        lines = ", ".join(map(str, direct))
        raise AssertionError(f"Line {lines}: `{next(iter(names))}(...)` called directly runs one region "
                             "after the other, each waiting for the last.")
    raise AssertionError(f"The file never starts `{next(iter(names))}` with `.submit()` or `.map()`.")


def _declared(facts: Any) -> list[tuple[int, str | None, str]]:
    return shared.declared_crons(facts.tree)


_cron = shared.cron_check(CRON, "every day at 06:00 UTC", _declared,
                          f'`{FLOW}.serve(name="every-morning", cron="0 6 * * *")` under '
                          '`if __name__ == "__main__":` (or the same `cron=` in `.to_deployment(...)` '
                          'or `.deploy(...)`).', needs="import.flow")
_completed = shared.run_completed(
    "import.flow", "flow",
    "Run it yourself, once, without the schedule: `WAREHOUSE_DB=/tmp/warehouse.db "
    ".venv-orchestrators/bin/python -c 'import dag; dag.daily_regions()'` in the file's folder.")
_rows = shared.warehouse_rows(
    TABLE, "`load_warehouse` replaces the table's rows: `DELETE FROM region_sales`, then one row "
           "per region and one for 'total', revenue rounded with round(x, 2).")

CHECKLIST = (
    ("**The flow**", (
        (f"""`@flow(name="{FLOW_NAME}")` on `def {FLOW}()`, which needs no arguments""", ("import.flow",)),
        ("""deployed to run every day at 06:00 UTC: `daily_regions.serve(name="every-morning",
      cron="0 6 * * *")` under `if __name__ == "__main__":` (or the same `cron=` given to
      `.to_deployment(...)` or `.deploy(...)`). The grader reads the `cron=` from your file.""",
         ("schedule.cron",)),
    ), ""),
    ("**The tasks**", (
        ("four `@task` functions: `extract_all`, `process_region`, `merge_results` and `load_warehouse`",
         ("structure.tasks",)),
        ("""`extract_all` and `load_warehouse` retry twice, 10 seconds apart:
      `@task(retries=2, retry_delay_seconds=10)`""", ("structure.retries",)),
        ("""the flow runs `process_region` once per region, `us`, `eu` and `asia`, side by side:
      `process_region.map(unmapped(sales), REGIONS)`, or `.submit()` for each region (a task
      called directly waits for the one before)""", ("structure.concurrent",)),
    ), ""),
    ("**The run**", (
        ("""`extract_all` reads `data/sales.csv` beside the file (`Path(__file__).parent / "data" /
      "sales.csv"`; columns `order_id,region,amount`) and the flow runs to the end on the grader's
      own CSV file""", ("run.completed",)),
        ("""each `process_region` returns `{"region": "us", "orders": 4, "revenue": 490.5}`, revenue
      rounded to 2 decimals; `load_warehouse` replaces the rows of table `region_sales` (columns
      `region`, `orders`, `revenue`) in the SQLite database at `os.environ["WAREHOUSE_DB"]` with
      one row per region and one for `total`""", ("run.warehouse",)),
    ), ""),
)

EXERCISE = Exercise(
    id="ex11_prefect_regions", title="Exercise 11: parallel regions as a Prefect flow",
    dag_id=FLOW_NAME, edges=chain("extract_all", "process_region", "merge_results", "load_warehouse"),
    schedule=CRON, schedule_text="every day at 06:00 UTC",
    checks=(shared.file_parses, shared.import_loads, defines_flow, tasks, retries, concurrent, _cron,
            _completed, _rows),
    points=16, expected_from=expected_from, checklist=CHECKLIST, warehouse_table=TABLE,
    engine="prefect",
)
