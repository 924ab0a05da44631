"""Exercise 1: a daily ETL — extract a CSV, keep the adults, load a warehouse table, email."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Any

from autograder import factories
from autograder.checks import check
from autograder.factories import returns
from autograder.common import (COMMON_HEAD, COMMON_SCHEDULE, EMAIL_HINT, _listed, airflow3_idioms,
                               tasks_succeeded)
from autograder.exercises import Exercise, chain, dag_section
from autograder.facts import Facts
from autograder.values import describe_value, normalize_row, row_differences

COLUMNS = ("id", "name", "age")
TASKS = ("extract", "transform", "load", "send_email")


def expected_from(data: Path) -> dict[str, Any]:
    """The adults (age > 18) of the hidden users.csv, as (id, name, age) rows."""
    with open(data / "users.csv", newline="") as f:
        rows = [normalize_row(r, COLUMNS) for r in csv.DictReader(f)]
    return {"adults": [r for r in rows if r[2] is not None and r[2] > 18], "all": rows}


def _show(rows: list[tuple], limit: int = 4) -> str:
    shown = ", ".join(f"(id={r[0]}, name={r[1]!r}, age={r[2]})" for r in rows[:limit])
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def _explain(missing: list[tuple], extra: list[tuple]) -> str:
    parts = []
    if missing:
        parts.append(f"missing {_show(missing)}")
        if any(r[2] == 19 for r in missing):
            parts.append("(19 is over 18: keep it)")
    if extra:
        parts.append(f"unexpected {_show(extra)}")
        if any(r[2] is not None and r[2] <= 18 for r in extra):
            parts.append("(only ages strictly greater than 18 stay: 18 itself is dropped)")
    return "; ".join(parts)


retries = factories.retries(
    2, 5, hint="Put retries and retry_delay in default_args so that every task gets them: "
               "default_args={'retries': 2, 'retry_delay': timedelta(minutes=5)}.")


@check("settings.owner", title="Every task is owned by data_team", points=1, needs=["structure.tasks"],
       hint="default_args={'owner': 'data_team', 'retries': 2, 'retry_delay': timedelta(minutes=5)}.")
def owner(facts: Facts) -> None:
    wrong = {t.task_id: t.owner for t in facts.dag.tasks.values() if t.owner != "data_team"}
    owners = ", ".join(sorted({repr(o) for o in wrong.values()}))
    assert not wrong, (f"{_listed(wrong)} {'is' if len(wrong) == 1 else 'are'} owned by {owners}, "
                       "not 'data_team': put 'owner': 'data_team' in default_args so that every task "
                       "gets it (the UI shows the owner as who to ask).")


@returns("transform", "run.output",
          title="transform keeps exactly the users older than 18", points=2,
          hidden=True,
          hint="Compare the age as a number: int(row['age']) > 18.")
def transformed(facts: Facts, got: Any) -> str:
    want = facts.expected["adults"]
    assert isinstance(got, list), (f"`transform` returned {describe_value(got)}; return the kept rows "
                                   "as a list of dicts so that `load` can pull them.")
    missing, extra = row_differences(got, want, COLUMNS)
    assert not missing and not extra, (
        f"On the grading data, transform returned {len(got)} rows, expected {len(want)}: "
        f"{_explain(missing, extra)}.")
    return f"{len(want)} of {len(facts.expected['all'])} users kept."


warehouse = factories.warehouse_rows(
    "users", COLUMNS, lambda facts: facts.expected["adults"], hidden=True, distinct=True,
    explain=_explain,
    hint="Get the hook of the connection: BaseHook.get_connection('warehouse').get_hook(), then "
         "hook.run('CREATE TABLE IF NOT EXISTS users (...)') and hook.insert_rows('users', rows).")


@check("run.idempotent", title="Running the DAG again does not duplicate rows", points=1,
       hidden=True, show_pass=True,
       needs=["run.warehouse"],
       hint="Delete the ids you are about to insert first, or use an upsert "
            "(insert_rows(..., replace=True, replace_index='id')).")
def idempotent(facts: Facts) -> str:
    rerun = facts.rerun
    assert rerun is not None, "The DAG was not run a second time."
    failed = {t: e for t, e in rerun.failures.items()}
    assert rerun.state == "success", (
        "A second run (the next day) failed"
        + ("".join(f": `{t}` failed: {e.describe(facts.filename)}" for t, e in failed.items())
           if failed else f" ({rerun.state})")
        + ". Real pipelines get re-run; make `load` safe to repeat.")
    rows = facts.warehouse_rows or []
    counts = Counter(normalize_row(r, COLUMNS) for r in rows)
    doubled = [r for r, n in counts.items() if n > 1]
    assert not doubled, (f"After a second run, table `users` holds {len(rows)} rows for "
                         f"{len(counts)} users: {_show(doubled, 2)} appear more than once.")
    return "A second run left the table as it was."


CHECKLIST = (
    dag_section("daily_etl", 'runs every day at 03:00: `schedule="0 3 * * *"`',
                ('`default_args` with `owner="data_team"`, `retries=2`, `retry_delay=timedelta(minutes=5)`',
                 ("settings.owner", "settings.retries"))),
    ("**The tasks**", (
        ("four tasks in one chain: `extract >> transform >> load >> send_email`",
         ("structure.tasks", "structure.edges")),
        ("""`extract` reads `data/users.csv` (columns `id,name,age`) and returns its rows as a list of
      dicts. Build the path from the DAG file, `Path(__file__).parent / "data" / "users.csv"`:
      the grader runs your DAG on its own CSV file, with other users in it.""", ("run.extract",)),
        ("""`transform` returns only the users with `age` **strictly greater than 18**: someone who is
      exactly 18 is dropped. Values read from a CSV file are strings until you convert them.""",
         ("run.output",)),
        ("""`load` writes those users into the table `users (id, name, age)` of the database behind the
      Airflow connection `warehouse`:
  - get the hook from the connection, so the same code works on SQLite and PostgreSQL:
    `BaseHook.get_connection("warehouse").get_hook()` (`from airflow.sdk import BaseHook`);
  - create the table if it is missing:
    `CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT, age INTEGER)`;
  - insert with `hook.insert_rows(...)`, rows as tuples in the table's column order; running
    the DAG twice must not duplicate anyone (`replace=True, replace_index="id"` upserts on the
    primary key).""", ("run.warehouse", "run.idempotent")),
        ("""`send_email` is an `EmailOperator` (`airflow.providers.smtp.operators.smtp`) to
      `team@company.com` with a subject that contains `ETL Success`.""",
         ("structure.operators", "run.email")),
    ), ""),
)

EXERCISE = Exercise(
    id="ex01_daily_etl", title="Exercise 1: daily ETL", dag_id="daily_etl",
    edges=chain(*TASKS), schedule="0 3 * * *", schedule_text="every day at 03:00 UTC",
    checks=(*COMMON_HEAD, factories.operators({"send_email": ("Email", "an EmailOperator")}),
            *COMMON_SCHEDULE, owner, retries, tasks_succeeded,
            factories.returns_rows("extract", "id", lambda facts: [r[0] for r in facts.expected["all"]],
                                   "users.csv", dicts=True),
            transformed, warehouse,
            factories.email(title="An email with \"ETL Success\" in its subject reaches the team",
                            subject=factories.subject_contains("ETL Success"), hint=EMAIL_HINT),
            idempotent, airflow3_idioms),
    points=19, expected_from=expected_from, warehouse_table="users", runs=2, checklist=CHECKLIST,
)
