"""The Prefect and Dagster exercises (ex11, ex12): checks over facts built by hand (fast), what the
grader reads in the file itself, and grade-class over a class that mixes them with an Airflow
exercise (slow). Their golden cases run in tests/test_grader_cases.py like every other exercise's."""

from __future__ import annotations

import ast
import copy
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.checks import evaluate
from autograder.exercises import all_exercises
from autograder.orchestrators import checks as shared
from autograder.orchestrators.client import FlowFacts

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = all_exercises()
PREFECT, DAGSTER = EXERCISES["ex11_prefect_regions"], EXERCISES["ex12_dagster_regions"]


def right_facts(ex) -> FlowFacts:
    """What the grader collects from a correct submission graded on the sample data."""
    source = (ROOT / "solutions" / ex.id / "dag.py").read_text()
    want = ex.expected_from(ex.sample_data)
    if ex.engine == "prefect":
        tasks = {t: {"name": t, "fn": t, "retries": 2 if t in ("extract_all", "load_warehouse") else 0,
                     "retry_delay_seconds": 10 if t in ("extract_all", "load_warehouse") else 0}
                 for t in ("extract_all", "process_region", "merge_results", "load_warehouse")}
        structure = {"flows": {"daily_regions": {"name": "daily-regions", "fn": "daily_regions"}},
                     "tasks": tasks, "schedules": []}
    else:
        assets = {a: {"deps": sorted(x for x, y in ex.edges if y == a),
                      "retry": {"max_retries": 2, "delay": 10.0}
                      if a in ("sales_orders", "warehouse_regions") else None}
                  for a in ex.tasks}
        structure = {"defs": "defs", "assets": assets, "checks": [["region_totals", "total_adds_up"]],
                     "schedules": [{"name": "every_morning", "cron": "0 6 * * *", "timezone": "UTC",
                                    "job": "j", "assets": sorted(ex.tasks)}]}
    return FlowFacts(exercise=ex, submission=Path("dag.py"), filename="dag.py", source=source,
                     tree=ast.parse(source), structure=structure, run={"state": "COMPLETED"},
                     returncode=0, expected=want,
                     warehouse_rows=[{"region": k, **v} for k, v in want["rows"].items()])


def verdicts(facts: FlowFacts) -> dict:
    return {r.id: r for r in evaluate(facts.exercise.checks, facts)}


@pytest.mark.parametrize("ex", [PREFECT, DAGSTER], ids=lambda e: e.id)
def test_a_right_submission_passes_every_check(ex):
    results = verdicts(right_facts(ex))
    assert {i: r.message for i, r in results.items() if r.status != "pass"} == {}
    assert sum(r.points for r in results.values()) == ex.points


def _rows(change):
    def mutate(facts):
        facts.warehouse_rows = change(copy.deepcopy(facts.warehouse_rows))
    return mutate


def _structure(path, value):
    def mutate(facts):
        *keys, last = path
        node = facts.structure
        for key in keys:
            node = node[key]
        node[last] = value
    return mutate


def _source(old, new):
    def mutate(facts):
        facts.source = facts.source.replace(old, new)
        facts.tree = ast.parse(facts.source)
    return mutate


MISTAKES = [
    (PREFECT, "flow renamed", _structure(("flows", "daily_regions", "name"), "regions"), "import.flow",
     ["`daily_regions` is named 'regions'"]),
    (PREFECT, "no flow", _structure(("flows",), {}), "import.flow", ["defines no `@flow`"]),
    (PREFECT, "a flow that needs an argument", _structure(("flows", "daily_regions", "required"), ["day"]),
     "import.flow", ["`daily_regions` needs `day` to run, but a schedule starts it with no arguments"]),
    (PREFECT, "a task missing", lambda f: f.structure["tasks"].pop("merge_results"), "structure.tasks",
     ["No task `merge_results`"]),
    (PREFECT, "retries as a list", _structure(("tasks", "extract_all", "retry_delay_seconds"), [10, 20]),
     "structure.retries", ["`extract_all` has retry_delay_seconds=[10, 20], not 10"]),
    (PREFECT, "regions called directly",
     _source("process_region.map(unmapped(sales), REGIONS)", "[process_region(sales, r) for r in REGIONS]"),
     "structure.concurrent", ["called directly runs one region after the other"]),
    (PREFECT, "a cron the grader cannot read",
     _source('cron="0 6 * * *"', "cron=os.environ['CRON']"), "schedule.cron",
     ["the grader cannot read the cron of .serve(cron=...)"]),
    (PREFECT, "a run that fails", lambda f: setattr(f, "run", {"state": "FAILED", "message": "x", "error": {
        "type": "KeyError", "message": "'price'", "line": 31, "code": "row['price']",
        "function": "extract_all"}}), "run.completed",
     ["`extract_all` failed: KeyError: 'price' (dag.py, line 31"]),
    (PREFECT, "completed, says the sandbox, with nothing written",
     lambda f: setattr(f, "warehouse_error", "the warehouse has no table 'region_sales'"), "run.completed",
     ["The run said it completed, but the warehouse has no table 'region_sales'"]),
    (PREFECT, "a run out of time", lambda f: setattr(f, "run_timed_out", True), "run.completed",
     ["did not finish within the grader's time limit"]),
    (PREFECT, "unrounded revenue", _rows(lambda rows: [{**r, "revenue": r["revenue"] + 1e-12} for r in rows]),
     "run.warehouse", ["round it to 2 decimals"]),
    (PREFECT, "rows appended twice", _rows(lambda rows: rows + rows), "run.warehouse",
     ["appear more than once: replace the table's rows"]),
    (PREFECT, "a retry delay of NaN",
     _structure(("tasks", "extract_all", "retry_delay_seconds"), float("nan")), "structure.retries",
     ["`extract_all` has retry_delay_seconds=nan, not 10"]),
    (DAGSTER, "a retry delay of NaN", _structure(("assets", "sales_orders", "retry"),
                                                 {"max_retries": 2, "delay": float("nan")}),
     "structure.retries", ["`sales_orders` waits nan s between tries, not 10"]),
    (PREFECT, "a cron that never fires", _source('cron="0 6 * * *"', 'cron="0 0 31 2 *"'), "schedule.cron",
     ["the schedule '0 0 31 2 *' does not run every day at 06:00 UTC"]),
    (DAGSTER, "a cron that never fires", _structure(("schedules", 0, "cron"), "0 0 31 2 *"), "schedule.cron",
     ["the schedule '0 0 31 2 *' does not run every day at 06:00 UTC"]),
    (DAGSTER, "no Definitions", _structure(("defs",), None), "import.defs",
     ["defines no `dagster.Definitions`"]),
    (DAGSTER, "an asset missing", lambda f: f.structure["assets"].pop("asia_summary"), "structure.assets",
     ["missing: `asia_summary`"]),
    (DAGSTER, "a summary without its input", _structure(("assets", "eu_summary", "deps"), []),
     "structure.deps", ["`eu_summary` does not read `sales_orders`"]),
    (DAGSTER, "summaries in a chain",
     _structure(("assets", "eu_summary", "deps"), ["sales_orders", "us_summary"]),
     "structure.parallel", ["`eu_summary` reads `us_summary`"]),
    (DAGSTER, "a retry policy of one try", _structure(("assets", "sales_orders", "retry"),
                                                      {"max_retries": 1, "delay": 10.0}),
     "structure.retries", ["`sales_orders` retries 1 time(s), not 2"]),
    (DAGSTER, "the check on another asset", _structure(("checks",), [["sales_orders", "not_empty"]]),
     "structure.asset_check", ["no asset check on `region_totals` (it has `not_empty` on `sales_orders`)"]),
    (DAGSTER, "a schedule in another time zone", _structure(("schedules", 0, "timezone"), "Europe/Paris"),
     "schedule.cron", ["The ScheduleDefinition `every_morning` runs in 'Europe/Paris' time"]),
    (DAGSTER, "a schedule of some assets", _structure(("schedules", 0, "assets"), ["warehouse_regions"]),
     "schedule.target", ["leaves out `sales_orders`"]),
    (DAGSTER, "a step that fails", lambda f: setattr(f, "run", {"state": "FAILED", "failures": {
        "us_summary": {"type": "ZeroDivisionError", "message": "division by zero", "line": 40,
                       "code": "1 / 0"}}}), "run.completed", ["`us_summary` failed: ZeroDivisionError"]),
    (DAGSTER, "a region missing in the table", _rows(lambda rows: [r for r in rows if r["region"] != "eu"]),
     "run.warehouse", ["no row for 'eu'"]),
]


@pytest.mark.parametrize(("ex", "mistake", "mutate", "check_id", "fragments"), MISTAKES,
                         ids=[f"{m[0].id[:4]}-{m[1]}" for m in MISTAKES])
def test_a_mistake_fails_its_check_with_its_message(ex, mistake, mutate, check_id, fragments):
    facts = right_facts(ex)
    mutate(facts)
    result = verdicts(facts)[check_id]
    assert result.status == "fail", result
    assert any(fragment in result.message for fragment in fragments), result.message


def test_every_graded_check_has_a_mistake_here():
    tested = {(m[0].id, m[3]) for m in MISTAKES}
    untested = sorted((ex.id, c.id) for ex in (PREFECT, DAGSTER) for c in ex.checks
                      if c.points and c.id != "import.loads" and (ex.id, c.id) not in tested)
    assert untested == []


def test_the_grader_reads_every_way_prefect_users_declare_a_cron():
    tree = ast.parse('CRON = "0 6 * * *"\n'
                     'flow.serve(name="a", cron="0 6 * * *")\n'
                     'serve(flow.to_deployment(name="b", cron=CRON))\n'
                     'flow.deploy(name="c", cron=make_cron())\n'
                     'flow.serve(name="d", schedule=Cron("30 5 * * 1-5", timezone="UTC"))\n'
                     'flow.serve(name="e", schedules=[CronSchedule(cron="0 7 * * *")])\n')
    assert [(line, cron) for line, cron, _ in shared.declared_crons(tree)] == [
        (2, "0 6 * * *"), (3, "0 6 * * *"), (4, None), (5, "30 5 * * 1-5"), (6, "0 7 * * *")]


def test_the_grader_finds_concurrent_and_direct_task_calls():
    tree = ast.parse("a = [p.submit(s, r) for r in R]\n"
                     "b = p.with_options(name='x').map(unmapped(s), R)\n"
                     "c = p(s, 'us')\n"
                     "d = other.submit(s)\n")
    assert shared.concurrent_calls(tree, {"p"}) == [1, 2]
    assert shared.direct_calls(tree, {"p"}) == [3]


def test_same_cron_compares_firing_times():
    assert shared.same_cron("0 6 * * 0-6", "0 6 * * *")
    assert not shared.same_cron("@daily", "0 6 * * *")
    assert not shared.same_cron("not a cron", "0 6 * * *")
    assert not shared.same_cron("0 0 31 2 *", "0 6 * * *")  # valid, and never fires


@pytest.mark.slow
def test_grade_class_grades_airflow_prefect_and_dagster_in_one_pass(tmp_path):
    """Three students, three exercises: one Airflow, one Prefect, one Dagster, in one command."""
    cases = ROOT / "tests" / "grader_cases"
    handed_in = {
        ("ana", "ex02_parallel_regions"): ROOT / "solutions/ex02_parallel_regions/dag.py",
        ("ana", "ex11_prefect_regions"): cases / "ex11_prefect_regions/submit_and_to_deployment/dag.py",
        ("ana", "ex12_dagster_regions"): ROOT / "solutions/ex12_dagster_regions/dag.py",
        ("ben", "ex11_prefect_regions"): cases / "ex11_prefect_regions/sequential_regions/dag.py",
        ("ben", "ex12_dagster_regions"): cases / "ex12_dagster_regions/unrounded_revenue/dag.py",
    }
    submitted = tmp_path / "submitted"
    for (student, exercise), source in handed_in.items():
        (submitted / student / exercise).mkdir(parents=True)
        shutil.copy(source, submitted / student / exercise / "dag.py")
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "autograder", "grade-class", str(submitted), "--out",
                           str(out), "--jobs", "2", "--timeout", "30"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "3/5 submissions passed" in done.stdout
    with open(out / "grades.csv", newline="") as f:
        grades = {(r["student"], r["exercise"]): (r["status"], float(r["score"]), float(r["max_score"]))
                  for r in csv.DictReader(f)}
    assert grades == {
        ("ana", "ex02_parallel_regions"): ("pass", 18.0, 18.0),
        ("ana", "ex11_prefect_regions"): ("pass", 16.0, 16.0),
        ("ana", "ex12_dagster_regions"): ("pass", 19.0, 19.0),
        ("ben", "ex11_prefect_regions"): ("fail", 14.0, 16.0),
        ("ben", "ex12_dagster_regions"): ("fail", 15.0, 19.0),
    }
    report = json.loads((out / "reports" / "ben" / "ex12_dagster_regions.json").read_text())
    rows = next(c for c in report["checks"] if c["id"] == "run.warehouse")
    assert "round it to 2 decimals" in rows["message"]  # the instructor sees the grading data ...
    feedback = (out / "feedback" / "ben" / "ex12_dagster_regions.md").read_text()
    assert "round it to 2 decimals" not in feedback and "grading data you have not seen" in feedback
    assert "ex11_prefect_regions" in (out / "class-report.html").read_text()


def test_what_the_engine_says_becomes_facts_and_the_blame_falls_where_it_belongs():
    from autograder.orchestrators.client import _read_result

    def read(result: dict) -> FlowFacts:
        facts = FlowFacts(exercise=DAGSTER, submission=Path("dag.py"), filename="dag.py")
        _read_result(facts, {"events": [], "returncode": 0, **result})
        return facts

    flood = read({"overflow": True})
    assert "wrote more than 1 MB to a file descriptor it did not open" in flood.import_crash
    assert flood.grader_error is None  # the learner's doing, not the grader's
    imported = {"event": "imported", "ok": True, "structure": {"defs": "defs"}}
    assert read({"events": [imported], "timed_out": "run", "phase": "run"}).run_timed_out
    killed = read({"events": [imported], "phase": "run", "returncode": -9})
    assert killed.run_crash == "the process running your code was stopped: it was killed"
    assert read({"error": "TimeoutError: no server"}).grader_error == "TimeoutError: no server"


def _read(ex, result: dict) -> FlowFacts:
    from autograder.orchestrators.client import _read_result

    facts = FlowFacts(exercise=ex, submission=Path("dag.py"), filename="dag.py")
    _read_result(facts, {"returncode": 0, "phase": "run", **result})
    return facts


MEDDLED = "wrote into a file descriptor it did not open (the grader's own)"
PREFECT_RIGHT = right_facts(PREFECT).structure
FORGERIES = {
    "flows as a list": (PREFECT, {**PREFECT_RIGHT, "flows": [1]}),
    "a task as a number": (PREFECT, {**PREFECT_RIGHT, "tasks": {**PREFECT_RIGHT["tasks"], "x": 1}}),
    "a task without its name": (PREFECT, {**PREFECT_RIGHT, "tasks": {"x": {"fn": "x", "retries": 0,
                                                                            "retry_delay_seconds": 0}}}),
    "a number too large for float()": (PREFECT, {**PREFECT_RIGHT, "tasks": {"x": {
        "name": "x", "fn": "x", "retries": 10 ** 400, "retry_delay_seconds": 0}}}),
    "deps as text": (DAGSTER, {"defs": "defs", "assets": {"sales_orders": {"deps": "abc"}}}),
    "a check of three names": (DAGSTER, {"defs": "defs", "checks": [["a", "b", "c"]]}),
    "a schedule as text": (DAGSTER, {"defs": "defs", "schedules": ["0 6 * * *"]}),
    "a key inside does not write": (DAGSTER, {"defs": "defs", "extra": 1}),
}


@pytest.mark.parametrize("forgery", FORGERIES, ids=list(FORGERIES))
def test_a_structure_of_the_wrong_shape_on_the_channel_is_a_failing_import_not_a_grader_error(forgery):
    ex, structure = FORGERIES[forgery]
    facts = _read(ex, {"events": [{"event": "imported", "ok": True, "structure": structure}]})
    assert facts.structure is None and MEDDLED in facts.import_crash
    results = verdicts(facts)
    assert results["import.loads"].status == "fail"
    assert "must not end the process" not in results["import.loads"].message
    assert [r.id for r in results.values() if r.status == "error"] == []


def test_what_inside_says_of_a_right_submission_fits_its_shape():
    from autograder.orchestrators.client import RAN, STRUCTURE, fits

    for ex in (PREFECT, DAGSTER):
        assert fits(right_facts(ex).structure, STRUCTURE[ex.engine]), ex.id
    assert fits({**PREFECT_RIGHT, "flows": {"f": {"name": "f", "fn": "f", "required": ["day"]}}},
                STRUCTURE["prefect"])
    assert fits({"defs": None}, STRUCTURE["dagster"])  # no Definitions: a verdict, not a forgery
    assert fits({"event": "ran", "state": "FAILED", "failures": {"us_summary": {
        "type": "KeyError", "message": "'x'", "line": 3, "code": "r['x']", "traceback": "..."}},
        "materialized": ["sales_orders"], "checks": {"region_totals:adds_up": False}}, RAN)


def test_two_accounts_of_one_step_or_a_line_inside_never_writes_are_believed_neither():
    imported = {"event": "imported", "ok": True, "structure": right_facts(DAGSTER).structure}
    ran = {"event": "ran", "state": "COMPLETED"}
    twice = _read(DAGSTER, {"events": [imported, imported, ran]})
    assert MEDDLED in twice.import_crash and twice.meddled
    ran_twice = _read(DAGSTER, {"events": [imported, ran, {"event": "ran", "state": "FAILED"}]})
    assert ran_twice.structure is not None and MEDDLED in ran_twice.run_crash and ran_twice.run is None
    junk = _read(DAGSTER, {"events": [imported, ran], "junk": True})
    assert MEDDLED in junk.run_crash
    assert "While running, the process running your code " + MEDDLED in \
        verdicts(junk)["run.completed"].message
    failures_as_a_list = _read(DAGSTER, {"events": [imported, {"event": "ran", "failures": [1, 2]}]})
    assert MEDDLED in failures_as_a_list.run_crash
    honest = _read(DAGSTER, {"events": [{"event": "phase", "phase": "import"}, imported,
                                        {"event": "phase", "phase": "run"}, ran]})
    assert not honest.meddled and honest.run == ran and honest.run_crash is None


def test_the_engine_keeps_only_lines_inside_could_have_written():
    from autograder.orchestrators.engine import channel_event

    assert channel_event(b'{"event": "ran", "state": "COMPLETED"}') == {"event": "ran", "state": "COMPLETED"}
    for line in (b"[" * 200_000, b"{" + b'"a": {' * 5000, b'{"event": 1}', b'["event"]', b"not json",
                 b'{"event": "imported", "x": ' + b"[" * 990 + b"]" * 990 + b"}"):
        assert channel_event(line) is None, line[:40]
