"""Checks the Prefect and Dagster exercises share, and what the grader reads from the file itself.

Pure functions over ``client.FlowFacts``. The schedule and the concurrent calls are read from the
grader's own parse of the submitted bytes (``ast``): nothing the learner's code does at run time
changes them.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from autograder.checks import check
from autograder.values import close, describe_value

SCHEDULE_CALLS = ("serve", "to_deployment", "deploy", "aserve", "ato_deployment", "adeploy")
CRON_CLASSES = ("Cron", "CronSchedule")
RUN_HINT = "Run it yourself: `.venv-orchestrators/bin/python {file}` shows the whole error."


# --- What the grader reads in the file ------------------------------------------------------

def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "text"`` assignments."""
    found = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else []
        value = getattr(node, "value", None)
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            for target in targets:
                if isinstance(target, ast.Name):
                    found[target.id] = value.value
    return found


def _text(node: ast.AST | None, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def _called(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def declared_crons(tree: ast.Module | None) -> list[tuple[int, str | None, str]]:
    """(line, cron or None when not a literal, what declares it) for each cron the file declares:
    ``cron=`` of ``serve``/``to_deployment``/``deploy``, and ``Cron("...")``/``CronSchedule(cron=...)``."""
    if tree is None:
        return []
    constants = _constants(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _called(node)
        if name in SCHEDULE_CALLS:
            for kw in node.keywords:
                if kw.arg == "cron":
                    found.append((node.lineno, _text(kw.value, constants), f".{name}(cron=...)"))
        elif name in CRON_CLASSES:
            value = node.args[0] if node.args else next(
                (kw.value for kw in node.keywords if kw.arg == "cron"), None)
            found.append((node.lineno, _text(value, constants), f"{name}(...)"))
    return sorted(found, key=lambda f: f[0])


def _base_name(node: ast.AST) -> str | None:
    """``process_region`` in ``process_region.with_options(...).submit``."""
    while True:
        if isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Name):
            return node.id
        else:
            return None


def concurrent_calls(tree: ast.Module | None, names: set[str]) -> list[int]:
    """Lines where one of the tasks ``names`` is started with ``.submit()`` or ``.map()``."""
    if tree is None:
        return []
    return sorted(node.lineno for node in ast.walk(tree)
                  if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in ("submit", "map") and _base_name(node.func.value) in names)


def direct_calls(tree: ast.Module | None, names: set[str]) -> list[int]:
    """Lines where one of the tasks ``names`` is called like a function (it then runs alone)."""
    if tree is None:
        return []
    return sorted(node.lineno for node in ast.walk(tree)
                  if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names)


def same_cron(got: str, want: str, days: int = 8) -> bool:
    """Whether two cron expressions fire at the same times (UTC) over ``days`` days."""
    from croniter import croniter

    start = datetime(2023, 10, 1, tzinfo=timezone.utc)
    try:  # "0 0 31 2 *" is valid and never fires: croniter gives up looking, with a ValueError
        a, b = croniter(got, start), croniter(want, start)
        while True:
            x, y = a.get_next(datetime), b.get_next(datetime)
            if x != y:
                return False
            if x > start + timedelta(days=days):
                return True
    except (ValueError, KeyError, TypeError):
        return False


def is_seconds(value: Any, want: float) -> bool:
    """Whether ``value`` is a number of seconds equal to ``want`` (NaN, text, a list are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isclose(value, want, abs_tol=1e-6)


def valid_cron(text: str) -> bool:
    from croniter import croniter

    return croniter.is_valid(text)


# --- Shared checks --------------------------------------------------------------------------

@check("file.parses", title="The file exists and is valid Python", points=0, visibility="instructor",
       hint="Open the file in JupyterLab: the editor underlines the broken line.")
def file_parses(facts: Any) -> None:
    assert facts.read_error is None, (
        f"{facts.read_error}. Start from the exercise's starter: copy exercises/{facts.exercise.id}/dag.py.")
    err = facts.syntax_error
    if err:
        where = f" at line {err.line}: {(err.code or '').strip()}" if err.line else ""
        raise AssertionError(f"{facts.filename} is not valid Python: {err.message}{where}")


@check("import.loads", title="The file imports", points=1, needs=["file.parses"],
       visibility="instructor", hint=RUN_HINT)
def import_loads(facts: Any) -> None:
    if facts.grader_error:
        raise RuntimeError(facts.grader_error)  # the grader's own problem: reported as an error
    if facts.import_timed_out:
        raise AssertionError("Importing your file did not finish in time. Keep the top level of the "
                             "file to definitions: run the pipeline under `if __name__ == \"__main__\":`.")
    if facts.import_crash and getattr(facts, "meddled", False):
        raise AssertionError(f"While importing your file, {facts.import_crash}.")
    if facts.import_crash:
        raise AssertionError(f"While importing your file, {facts.import_crash}. The top level of the "
                             "file must not end the process: run things under "
                             "`if __name__ == \"__main__\":`.")
    err = facts.import_error
    if err:
        err = replace(err, message=re.sub(r" \(/[^()]*\)$", "", err.message))
        fix = ""
        if err.type in ("ImportError", "ModuleNotFoundError") and "airflow" in err.message:
            fix = " This exercise runs in the Prefect and Dagster environment, which has no Airflow."
        elif err.type in ("ImportError", "ModuleNotFoundError"):
            fix = (" Only your one file is graded, in the course's Prefect and Dagster environment: "
                   "import only what it has (prefect, dagster, pandas and the standard library).")
        raise AssertionError(f"Importing {facts.filename} failed: {err.describe(facts.filename)}.{fix}")


def run_completed(needs: str, what: str, hint: str) -> Any:
    """run.completed: the run ended, the process exited normally and the warehouse table exists
    (the grader's facts); the sandbox's own account of the run only words the message."""

    @check("run.completed", title=f"The {what} runs to the end on the grading data", points=2,
           needs=[needs], hint=hint)
    def completed(facts: Any) -> None:
        table = facts.exercise.warehouse_table
        if facts.run_timed_out:
            raise AssertionError("The run did not finish within the grader's time limit. Look for a "
                                 "loop that never ends, a sleep, or a task waiting on something.")
        if facts.run_crash:
            raise AssertionError(f"While running, {facts.run_crash}.")
        run = facts.run or {}
        failures = _failures(facts)
        if failures:
            first, error = failures[0]
            more = f" ({len(failures) - 1} more after it)" if len(failures) > 1 else ""
            raise AssertionError(f"{first} failed: {error}{more}.")
        if run.get("state") != "COMPLETED":
            said = run.get("message") or run.get("name") or "no state"
            raise AssertionError(f"The run ended as {said!s}, not Completed.")
        assert facts.returncode == 0, "The run said it completed, but its process did not exit normally."
        assert facts.warehouse_error is None, (
            f"The run said it completed, but {facts.warehouse_error}: write the table `{table}` into "
            f"the database at os.environ[\"WAREHOUSE_DB\"].")

    return completed


def _failures(facts: Any) -> list[tuple[str, str]]:
    """(task or step, error) the sandbox reported, first failure first."""
    run = facts.run or {}
    found = []
    from autograder.orchestrators.client import _error

    for step, error in (run.get("failures") or {}).items():
        if isinstance(error, dict):
            found.append((f"`{step}`", _error(error).describe(facts.filename)))
    error = run.get("error")
    if isinstance(error, dict) and not found:
        task = _task_of(run) or (error.get("function") if error.get("function") != "<module>" else None)
        found.append((f"`{task}`" if task else "The flow", _error(error).describe(facts.filename)))
    return found


def _task_of(run: dict) -> str | None:
    """The task a Prefect failure message names: "Task run 'extract_all-1a2' ..." -> extract_all."""
    m = re.search(r"[Tt]ask run '([A-Za-z_][\w]*?)-[0-9a-f]{3}'", str(run.get("message", "")))
    return m[1] if m else None


def warehouse_rows(table: str, hint: str) -> Any:
    """run.warehouse: the table holds one row per region and a total, as the grading data gives."""

    @check("run.warehouse", title=f"The warehouse table `{table}` holds the totals of the grading data",
           points=4, needs=["run.completed"], hidden=True, show_pass=True, hint=hint)
    def rows(facts: Any) -> str:
        want = facts.expected["rows"]
        got = facts.warehouse_rows or []
        assert got, f"The table `{table}` is empty: insert one row per region and one for the total."
        columns = set().union(*(r.keys() for r in got))
        missing = {"region", "orders", "revenue"} - columns
        assert not missing, (f"The table `{table}` has the columns {', '.join(sorted(columns))}; it needs "
                             f"`region`, `orders` and `revenue`.")
        by_region: dict[str, list[dict]] = {}
        for row in got:
            by_region.setdefault(str(row["region"]), []).append(row)
        problems = []
        twice = sorted(r for r, found in by_region.items() if len(found) > 1)
        if twice:
            problems.append(f"{', '.join(map(repr, twice))} appear more than once: replace the table's "
                            "rows on each run instead of adding to them")
        for region, values in want.items():
            found = by_region.get(region)
            if not found:
                problems.append(f"no row for {region!r}")
                continue
            row = found[0]
            if row["orders"] != values["orders"]:
                problems.append(f"{region!r} has orders {describe_value(row['orders'])}, expected "
                                f"{values['orders']}")
            if not close(row["revenue"], values["revenue"]):
                problems.append(f"{region!r} has revenue {row['revenue']!r}, expected {values['revenue']}")
            elif not _cents(row["revenue"]):
                problems.append(f"{region!r} has revenue {row['revenue']!r}: round it to 2 decimals, "
                                f"round(x, 2)")
        extra = sorted(set(by_region) - set(want))
        if extra:
            problems.append(f"rows the exercise does not ask for: {', '.join(map(repr, extra))}")
        assert not problems, "On the grading data (different from your sample): " + "; ".join(problems) + "."
        total = want["total"]
        return f"{len(want)} rows; total {total['orders']} orders, revenue {total['revenue']}."

    return rows


def _cents(value: Any) -> bool:
    try:
        return float(value) == round(float(value), 2)  # 0.30000000000000004 is not
    except (TypeError, ValueError):
        return False


def cron_check(want: str, text: str, found: Callable[[Any], list[tuple[int, str | None, str]]],
               example: str, needs: str) -> Any:
    """schedule.cron: the file declares a schedule that fires when ``want`` does."""

    @check("schedule.cron", title=f"Scheduled {text}", points=2, needs=[needs],
           hint=f"Declare it in the file: {example}")
    def cron(facts: Any) -> None:
        declared = found(facts)
        assert declared, f"No cron schedule is declared in {facts.filename}."

        def where(line: int, how: str) -> str:
            return f"Line {line}" if line else f"The {how}"

        unreadable = [(line, how) for line, value, how in declared if value is None]
        readable = [(line, value, how) for line, value, how in declared if value is not None]
        if not readable and unreadable:
            line, how = unreadable[0]
            raise AssertionError(f"{where(line, how)}: the grader cannot read the cron of {how}: write "
                                 "it as a string, or a module-level constant such as CRON = \"...\".")
        for line, value, how in readable:
            if not valid_cron(value):
                raise AssertionError(f"{where(line, how)}: {value!r} is not a valid cron expression.")
        wrong = [(line, value, how) for line, value, how in readable if not same_cron(value, want)]
        if len(wrong) == len(readable):
            line, value, how = wrong[0]
            raise AssertionError(f"{where(line, how)}: the schedule {value!r} does not run {text} "
                                 f"({want!r} does).")
    return cron
