"""Golden cases of the Prefect and Dagster exercises that each break one checklist line, made from
the reference solutions (the other cases of tests/grader_cases/ex11_*/ and ex12_* are written by hand).

    .venv/bin/python tests/grader_cases/orchestrator_cases.py
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

def case(ex, name, doc, subs, expected, src=None):
    src = src or (ROOT / "solutions" / ex / "dag.py").read_text()
    end = src.index('"""', 3) + 3
    src = f'"""{doc}"""' + src[end:]
    for old, new in subs:
        if old not in src:
            sys.exit(f"{ex}/{name}: {old!r} not in the solution")
        src = src.replace(old, new, 1)
    d = ROOT / "tests" / "grader_cases" / ex / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "dag.py").write_text(src)
    (d / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")

def only(fail, fragments, passes=("run.completed",)):
    checks = {c: "pass" for c in passes}
    checks[fail] = "fail"
    return {"status": "fail", "only": True, "checks": checks, "messages": {fail: fragments}}

P = "ex11_prefect_regions"
case(P, "sequential_regions",
     "Wrong (one checklist line): each region is called directly, so each waits for the one before.",
     [("    summaries = process_region.map(unmapped(sales), REGIONS)",
       "    summaries = [process_region(sales, region) for region in REGIONS]")],
     only("structure.concurrent",
          ["`process_region(...)` called directly runs one region after the other"]))
case(P, "no_retries", "Wrong (one checklist line): extract_all never retries.",
     [("@task(retries=2, retry_delay_seconds=10)\ndef extract_all", "@task\ndef extract_all")],
     only("structure.retries",
          ["`extract_all` has retries=0, not 2", "`extract_all` has retry_delay_seconds=0, not 10"]))
case(P, "cron_at_midnight", "Wrong (one checklist line): the deployment runs at midnight, not at 06:00.",
     [('cron="0 6 * * *"', 'cron="0 0 * * *"')],
     only("schedule.cron", ["the schedule '0 0 * * *' does not run every day at 06:00 UTC"]))
case(P, "no_deployment",
     "Wrong (one checklist line): the file runs the flow once and declares no schedule.",
     [('    daily_regions.serve(name="every-morning", cron="0 6 * * *")', "    daily_regions()")],
     only("schedule.cron", ["No cron schedule is declared in dag.py."]))
case(P, "flow_named_regions",
     "Wrong (one checklist line): the flow is named 'regions', not 'daily-regions'.",
     [('@flow(name="daily-regions")', '@flow(name="regions")')],
     only("import.flow", ["`daily_regions` is named 'regions'; give it `@flow(name=\"daily-regions\")`"],
          passes=()))
case(P, "merge_in_the_flow",
     "Wrong (one checklist line): the merge is plain code in the flow, not a task.",
     [("@task\ndef merge_results", "def merge_results"),
      ("    merged = merge_results(summaries)",
       "    merged = merge_results([s.result() for s in summaries])")],
     only("structure.tasks",
          ["No task `merge_results`: decorate `def merge_results(...)` with `@task`"]))
case(P, "unrounded_revenue", "Wrong (one checklist line): revenue is not rounded to cents.",
     [('"revenue": round(sum(amounts), 2)}', '"revenue": sum(amounts)}'),
      ('"revenue": round(sum(s["revenue"] for s in summaries), 2)}',
       '"revenue": sum(s["revenue"] for s in summaries)}')],
     only("run.warehouse", ["round it to 2 decimals"]))
case(P, "task_raises_keyerror", "Wrong: extract_all reads a column the CSV does not have.",
     [('"amount": float(row["amount"])}', '"amount": float(row["price"])}')],
     {"status": "fail",
      "checks": {"structure.tasks": "pass", "run.completed": "fail", "run.warehouse": "skip"},
      "messages": {"run.completed": ["`extract_all` failed: KeyError: 'price' (dag.py, line"]}})
case(P, "syntax_error", "Wrong: a missing closing parenthesis.",
     [("    load_warehouse(merged)\n", "    load_warehouse(merged\n")],
     {"status": "fail", "checks": {"file.parses": "fail", "import.loads": "skip"},
      "messages": {"file.parses": ["dag.py is not valid Python"]}})

D = "ex12_dagster_regions"
case(D, "summary_reads_another",
     "Wrong (one checklist line): eu_summary waits for us_summary, "
     "so the regions run one after the other.",
     [("""    @dg.asset(name=f"{region}_summary")
    def summary(sales_orders: list[dict]) -> dict:""",
      """    @dg.asset(name=f"{region}_summary", deps=["us_summary"] if region != "us" else [])
    def summary(sales_orders: list[dict]) -> dict:""")],
     {"status": "fail",
      "checks": {"structure.parallel": "fail", "structure.deps": "pass", "run.completed": "pass"},
      "messages": {"structure.parallel": ["`eu_summary` reads `us_summary`", "cannot run side by side"]}})
case(D, "no_retry_policy", "Wrong (one checklist line): warehouse_regions has no retry policy.",
     [("@dg.asset(retry_policy=FLAKY)\ndef warehouse_regions", "@dg.asset\ndef warehouse_regions")],
     only("structure.retries", ["`warehouse_regions` has no retry_policy"]))
case(D, "no_asset_check", "Wrong (one checklist line): the Definitions leave the asset check out.",
     [("    asset_checks=[total_adds_up],\n", "")],
     only("structure.asset_check", ["`defs` has no asset check on `region_totals`"]))
case(D, "schedule_at_midnight", "Wrong (one checklist line): @daily runs at midnight, not at 06:00.",
     [('cron_schedule="0 6 * * *"', 'cron_schedule="@daily"')],
     {"status": "fail", "only": True,
      "checks": {"schedule.cron": "fail", "schedule.target": "fail", "run.completed": "pass"},
      "messages": {"schedule.cron": ["the schedule '@daily' does not run every day at 06:00 UTC"]}})
case(D, "schedule_one_asset",
     "Wrong (one checklist line): the schedule materialises the warehouse table only.",
     [("target=dg.AssetSelection.all()", 'target=dg.AssetSelection.assets("warehouse_regions")')],
     only("schedule.target", ["The schedule `every_morning` leaves out `sales_orders`"]))
case(D, "no_definitions",
     "Wrong (one checklist line): the assets are there, but no Definitions gathers them.",
     [("defs = dg.Definitions(", "everything = dict(")],
     only("import.defs", ["defines no `dagster.Definitions` at the top level"], passes=()))
case(D, "unrounded_revenue", "Wrong (one checklist line): revenue is not rounded to cents.",
     [('"revenue": round(sum(amounts), 2)}', '"revenue": sum(amounts)}'),
      ('"revenue": round(sum(r["revenue"] for r in regions.values()), 2)}',
       '"revenue": sum(r["revenue"] for r in regions.values())}')],
     only("run.warehouse", ["round it to 2 decimals"]))
case(D, "asset_raises_keyerror", "Wrong: sales_orders reads a column the CSV does not have.",
     [('"amount": float(row["amount"])}', '"amount": float(row["price"])}')],
     {"status": "fail",
      "checks": {"structure.assets": "pass", "run.completed": "fail", "run.warehouse": "skip"},
      "messages": {"run.completed": ["`sales_orders` failed: KeyError: 'price' (dag.py, line"]}})
case(D, "asset_named_after_table", "Wrong: the last asset is named after its table, not warehouse_regions.",
     [("def warehouse_regions(region_totals: dict)", "def region_sales(region_totals: dict)"),
      ("region_totals, warehouse_regions],", "region_totals, region_sales],")],
     {"status": "fail",
      "checks": {"structure.assets": "fail", "run.completed": "pass", "run.warehouse": "pass"},
      "messages": {"structure.assets": ["missing: `warehouse_regions`; not asked for: `region_sales`"]}})
case(D, "totals_read_the_orders",
     "Wrong (one checklist line): region_totals also reads sales_orders, "
     "an arrow the graph does not have.",
     [("def region_totals(us_summary: dict, eu_summary: dict, asia_summary: dict) -> dict:",
       "def region_totals(us_summary: dict, eu_summary: dict, asia_summary: dict, "
       "sales_orders: list) -> dict:")],
     only("structure.deps", ["`region_totals` reads `sales_orders`, which the graph does not show"]))
case(P, "flow_needs_an_argument",
     "Wrong (one checklist line): the flow needs the CSV's path, so no schedule can start it.",
     [("def daily_regions() -> dict:", "def daily_regions(csv_path: str) -> dict:")],
     only("import.flow",
          ["`daily_regions` needs `csv_path` to run, but a schedule starts it with no arguments"],
          passes=()))
case(D, "misspelled_argument",
     "Wrong: us_summary's argument is sales_order, an asset nobody makes: "
     "Dagster refuses the definitions and suggests sales_orders.",
     [("""    @dg.asset(name=f"{region}_summary")
    def summary(sales_orders: list[dict]) -> dict:
        amounts = [sale["amount"] for sale in sales_orders if sale["region"] == region]""",
       """    @dg.asset(name=f"{region}_summary")
    def summary(sales_order: list[dict]) -> dict:
        amounts = [sale["amount"] for sale in sales_order if sale["region"] == region]""")],
     {"status": "fail", "checks": {"import.loads": "fail", "structure.deps": "skip"},
      "messages": {"import.loads": ['Input asset "["sales_order"]" is not produced', '["sales_orders"]']}})
