"""Exercise 12: the parallel-regions pipeline as Dagster assets, graded in .venv-orchestrators."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autograder.checks import check
from autograder.exercises import Exercise, chain
from autograder.orchestrators import checks as shared

REGIONS = ("us", "eu", "asia")
SUMMARIES = tuple(f"{r}_summary" for r in REGIONS)
ASSETS = ("sales_orders", *SUMMARIES, "region_totals", "warehouse_regions")
EDGES = frozenset({("sales_orders", s) for s in SUMMARIES} | {(s, "region_totals") for s in SUMMARIES}
                  | chain("region_totals", "warehouse_regions"))
RETRYING = ("sales_orders", "warehouse_regions")
CRON = "0 6 * * *"
TABLE = "region_sales"


def expected_from(data: Path) -> dict[str, Any]:
    """The rows of the warehouse table for the sales data in ``data``."""
    from autograder.exercises.ex02_parallel_regions import expected_from as regions

    merged = regions(data)["merge_results"]
    return {"rows": {name: {"orders": v["orders"], "revenue": v["revenue"]} for name, v in merged.items()}}


def _structure(facts: Any) -> dict:
    return facts.structure or {}


@check("import.defs", title="The file defines `defs = dg.Definitions(...)`", points=1,
       needs=["import.loads"], hint="At the end of the file: `defs = dg.Definitions(assets=[...], "
                                    "asset_checks=[...], schedules=[...])`.")
def defines_definitions(facts: Any) -> None:
    assert _structure(facts).get("defs"), (
        f"{facts.filename} defines no `dagster.Definitions` at the top level, so Dagster finds none "
        "of your assets.")


@check("structure.assets", title="The six assets", points=2, needs=["import.defs"],
       hint="One `@dg.asset` function per asset; the function's name is the asset's name.")
def assets(facts: Any) -> None:
    got = set(_structure(facts).get("assets", {}))
    missing = [a for a in ASSETS if a not in got]
    extra = sorted(got - set(ASSETS))
    problems = []
    if missing:
        problems.append(f"missing: {', '.join(f'`{a}`' for a in missing)}")
    if extra:
        problems.append(f"not asked for: {', '.join(f'`{a}`' for a in extra)}")
    assert not problems, f"The assets of `defs` are {', '.join(f'`{a}`' for a in sorted(got)) or 'none'}; " \
                         + "; ".join(problems) + "."


def _edges(facts: Any) -> set[tuple[str, str]]:
    return {(dep, name) for name, a in _structure(facts).get("assets", {}).items() for dep in a["deps"]}


@check("structure.deps", title="Each asset reads exactly the assets the graph shows", points=2,
       needs=["structure.assets"],
       hint="An asset's arguments are the assets it reads: `def us_summary(sales_orders)`, "
            "`def region_totals(us_summary, eu_summary, asia_summary)`, "
            "`def warehouse_regions(region_totals)`.")
def deps(facts: Any) -> None:
    got = _edges(facts)
    problems = [f"`{b}` does not read `{a}`" for a, b in sorted(EDGES - got)]
    problems += [f"`{b}` reads `{a}`, which the graph does not show" for a, b in sorted(got - EDGES)
                 if not (a in SUMMARIES and b in SUMMARIES)]
    assert not problems, "; ".join(problems) + "."


@check("structure.parallel", title="The three region summaries do not read each other", points=1,
       needs=["structure.assets"],
       hint="Each `<region>_summary` takes `sales_orders` as its only asset argument.")
def parallel(facts: Any) -> None:
    got = sorted((a, b) for a, b in _edges(facts) if a in SUMMARIES and b in SUMMARIES)
    assert not got, ("; ".join(f"`{b}` reads `{a}`" for a, b in got)
                     + ": it has to wait for it, so the regions cannot run side by side.")


@check("structure.retries", title="`sales_orders` and `warehouse_regions` retry twice, 10 s apart",
       points=2, needs=["structure.assets"],
       hint="`@dg.asset(retry_policy=dg.RetryPolicy(max_retries=2, delay=10))`.")
def retries(facts: Any) -> None:
    problems = []
    for name in RETRYING:
        policy = _structure(facts)["assets"][name].get("retry")
        if policy is None:
            problems.append(f"`{name}` has no retry_policy")
            continue
        if policy.get("max_retries") != 2:
            problems.append(f"`{name}` retries {policy.get('max_retries')} time(s), not 2")
        if not shared.is_seconds(policy.get("delay"), 10):
            problems.append(f"`{name}` waits {policy.get('delay')!r} s between tries, not 10")
    assert not problems, "; ".join(problems) + "."


@check("structure.asset_check", title="An asset check on `region_totals`", points=1,
       needs=["structure.assets"],
       hint="`@dg.asset_check(asset=region_totals)` on a function that returns "
            "`dg.AssetCheckResult(passed=...)`; list it in `Definitions(asset_checks=[...])`.")
def asset_check(facts: Any) -> None:
    on = [name for asset, name in _structure(facts).get("checks", []) if asset == "region_totals"]
    others = [f"`{name}` on `{asset}`" for asset, name in _structure(facts).get("checks", [])
              if asset != "region_totals"]
    assert on, ("`defs` has no asset check on `region_totals`"
                + (f" (it has {', '.join(others)})" if others else "") + ".")


def _declared(facts: Any) -> list[tuple[int, str | None, str]]:
    found = []
    for schedule in _structure(facts).get("schedules", []):
        cron = schedule.get("cron")
        how = f"ScheduleDefinition `{schedule.get('name')}`"
        zone = schedule.get("timezone") or "UTC"
        if isinstance(cron, str) and zone not in ("UTC", "Etc/UTC"):
            raise AssertionError(f"The {how} runs in {zone!r} time, so 06:00 there is not 06:00 UTC: "
                                 "give it `execution_timezone=\"UTC\"` (or leave it out).")
        found.append((0, cron if isinstance(cron, str) else None, how))
    return found


_cron = shared.cron_check(CRON, "every day at 06:00 UTC", _declared,
                          'schedules=[dg.ScheduleDefinition(name="every_morning", '
                          'target=dg.AssetSelection.all(), cron_schedule="0 6 * * *")].',
                          needs="import.defs")


@check("schedule.target", title="The schedule materialises every asset", points=1,
       needs=["structure.assets"],
       hint="Target every asset: `target=dg.AssetSelection.all()` (or a job of "
            "`dg.define_asset_job(\"daily_regions\", selection=dg.AssetSelection.all())`).")
def schedule_target(facts: Any) -> None:
    schedules = [s for s in _structure(facts).get("schedules", [])
                 if isinstance(s.get("cron"), str) and shared.same_cron(s["cron"], CRON)]
    assert schedules, "No schedule of `defs` runs every day at 06:00 UTC, so it selects nothing yet."
    best = max(schedules, key=lambda s: len(set(s.get("assets", [])) & set(ASSETS)))
    missing = [a for a in ASSETS if a not in best.get("assets", [])]
    assert not missing, (f"The schedule `{best.get('name')}` leaves out "
                         f"{', '.join(f'`{a}`' for a in missing)}.")


_completed = shared.run_completed(
    "import.defs", "assets' materialisation",
    "Materialise them yourself: `.venv-orchestrators/bin/python {file}` (its __main__ calls "
    "`dg.materialize(...)`) shows the whole error.")
_rows = shared.warehouse_rows(
    TABLE, "`warehouse_regions` replaces the table's rows: `DELETE FROM region_sales`, then one "
           "row per region and one for 'total', revenue rounded with round(x, 2).")

CHECKLIST = (
    ("**The definitions**", (
        ("`defs = dg.Definitions(assets=[...], asset_checks=[...], schedules=[...])` at the top level "
         "of the file", ("import.defs",)),
        ("""a daily schedule at 06:00 UTC: `dg.ScheduleDefinition(..., cron_schedule="0 6 * * *")`""",
         ("schedule.cron",)),
        ("that materialises every asset: `target=dg.AssetSelection.all()`", ("schedule.target",)),
    ), ""),
    ("**The assets**", (
        ("""six assets: `sales_orders`, `us_summary`, `eu_summary`, `asia_summary`, `region_totals`
      and `warehouse_regions`""", ("structure.assets",)),
        ("""the graph comes from the arguments: each `<region>_summary(sales_orders)`,
      `region_totals(us_summary, eu_summary, asia_summary)`, `warehouse_regions(region_totals)`""",
         ("structure.deps",)),
        ("""the three summaries read `sales_orders` only, never each other: Dagster may run them side
      by side""", ("structure.parallel",)),
        ("""`sales_orders` and `warehouse_regions` retry twice, 10 seconds apart:
      `retry_policy=dg.RetryPolicy(max_retries=2, delay=10)`""", ("structure.retries",)),
        ("""an asset check on `region_totals`: `@dg.asset_check(asset=region_totals)` returning
      `dg.AssetCheckResult(passed=...)`""", ("structure.asset_check",)),
    ), ""),
    ("**The run**", (
        ("""`sales_orders` reads `data/sales.csv` beside the file (`Path(__file__).parent / "data" /
      "sales.csv"`; columns `order_id,region,amount`) and the assets materialise without an error
      on the grader's own CSV file""", ("run.completed",)),
        ("""each summary is `{"region": "us", "orders": 4, "revenue": 490.5}`, revenue rounded to 2
      decimals; `warehouse_regions` replaces the rows of table `region_sales` (columns `region`,
      `orders`, `revenue`) in the SQLite database at `os.environ["WAREHOUSE_DB"]` with one row per
      region and one for `total`""", ("run.warehouse",)),
    ), ""),
)

EXERCISE = Exercise(
    id="ex12_dagster_regions", title="Exercise 12: parallel regions as Dagster assets",
    dag_id="defs", edges=EDGES, schedule=CRON, schedule_text="every day at 06:00 UTC",
    checks=(shared.file_parses, shared.import_loads, defines_definitions, assets, deps, parallel,
            retries, asset_check, _cron, schedule_target, _completed, _rows),
    points=19, expected_from=expected_from, checklist=CHECKLIST, warehouse_table=TABLE,
    engine="dagster",
)
