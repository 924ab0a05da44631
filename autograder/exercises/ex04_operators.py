"""Exercise 4: one DAG, three operators — Bash with a templated env, Python from a CSV, email."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from autograder import factories
from autograder.factories import returns
from autograder.common import COMMON_HEAD, COMMON_SCHEDULE, airflow3_idioms, tasks_succeeded
from autograder.exercises import Exercise, chain, dag_section
from autograder.facts import Facts
from autograder.values import close, describe_value, numbers_in

TASKS = ("print_run_date", "total_revenue", "send_summary")
KINDS = {"print_run_date": ("Bash", "a BashOperator"),
         "total_revenue": ("Python", "a PythonOperator (or a @task function)"),
         "send_summary": ("Email", "an EmailOperator")}


def expected_from(data: Path) -> dict[str, Any]:
    """The total of the hidden orders' amounts, rounded to cents."""
    with open(data / "orders.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    total = sum((Decimal(r["amount"]) for r in rows), Decimal(0))
    return {"revenue": float(total.quantize(Decimal("0.01"))), "orders": len(rows)}


operators = factories.operators(
    KINDS, hint="BashOperator and PythonOperator come from "
                "airflow.providers.standard.operators.bash|python, EmailOperator from "
                "airflow.providers.smtp.operators.smtp.")


def _clock_dates() -> set[str]:
    now = datetime.now(timezone.utc)
    return {(now + timedelta(days=d)).date().isoformat() for d in (-1, 0, 1)}


@returns("print_run_date", "run.run_date",
          title="print_run_date prints the run's date from $RUN_DATE", points=2,
          hint="BashOperator(..., bash_command='echo \"Processing date: $RUN_DATE\"', "
               "env={\"RUN_DATE\": \"{{ ds }}\"}).")
def run_date(facts: Facts, got: Any) -> str:
    run_ds = facts.exercise.run_ds
    want = f"Processing date: {run_ds}"
    text = "" if got is None else str(got).strip()
    assert text, ("`print_run_date` printed nothing (its XCom is "
                  f"{describe_value(got)}): echo the date, `echo \"Processing date: $RUN_DATE\"`.")
    if text == want:
        return f"`print_run_date` printed {text!r}: the date of the graded run."
    if "$RUN_DATE" in text:
        why = ("bash printed `$RUN_DATE` as it is: single quotes stop bash from expanding variables, "
               "write the command with double quotes around the text")
    elif "{{" in text:
        why = ("the template was not rendered: put `{{ ds }}` in `env` or `bash_command`, which "
               "Airflow renders")
    elif any(day in text for day in _clock_dates() - {run_ds}):
        why = ("that is today's date from the clock, not the date of the run. A run keeps its date "
               "even when it runs late or is re-run: read it from the template `{{ ds }}`")
    elif text.rstrip().endswith(":"):
        why = ("$RUN_DATE was empty: set it with env={\"RUN_DATE\": \"{{ ds }}\"} on the "
               "BashOperator")
    elif run_ds in text and text.startswith(want):
        why = (f"the date is in another form than the one asked for, YYYY-MM-DD: `{{{{ ds }}}}` renders "
               f"it as `{run_ds}`; use env={{\"RUN_DATE\": \"{{{{ ds }}}}\"}}")
    elif run_ds in text:
        why = f"print exactly `{want}`: `echo \"Processing date: $RUN_DATE\"`"
    else:
        why = (f"the run's date, in the form `{{{{ ds }}}}` renders it (`{{{{ ds }}}}` → `{run_ds}`), comes "
               "from env={\"RUN_DATE\": \"{{ ds }}\"}")
    raise AssertionError(f"`print_run_date` printed {text!r}, expected {want!r} (the graded run is "
                         f"for {run_ds}): {why}.")


def _explain_revenue(got: Any, want: dict) -> str:
    if close(got, want["orders"], 0):
        return " That is the number of orders, not the sum of their amounts."
    return ""


@returns("total_revenue", "run.output",
          title="total_revenue returns the sum of the amounts for the grading data",
          points=2,
          hint="Read the file with csv.DictReader (some customer names contain a comma), convert each "
               "amount with float(...), and return round(sum(amounts), 2).")
def revenue(facts: Facts, got: Any) -> str:
    want = facts.expected
    assert got is not None, ("`total_revenue` returned nothing: `return` the total so that it is "
                             "stored as its XCom and the email can pull it.")
    assert close(got, want["revenue"]), (
        f"On the grading data ({want['orders']} orders, other than your sample), `total_revenue` "
        f"returned {describe_value(got)}; expected {want['revenue']}."
        + _explain_revenue(got, want))
    return f"Revenue {want['revenue']} over {want['orders']} orders."


def _shows_revenue(facts: Facts, subject: str) -> str | None:
    want = facts.expected["revenue"]
    if any(close(n, want) for n in numbers_in(subject)):
        return None
    if "None" in subject:
        why = (" It shows None: xcom_pull found no value. Check task_ids='total_revenue' and that "
               "total_revenue runs before send_summary.")
    elif "{{" in subject:
        why = " The template was not rendered."
    else:
        why = ""
    return f"it must show the revenue of the run, {want}.{why}"


email = factories.email(
    title="An email to the team shows the revenue in its subject", points=2,
    subject=_shows_revenue, needs=["import.dag_id"],
    hint="subject=\"Revenue for {{ ds }}: {{ ti.xcom_pull(task_ids='total_revenue') }}\" — the "
         "subject of an EmailOperator is a template.")

CHECKLIST = (
    dag_section("common_operators", 'runs every day at 02:00 UTC: `schedule="0 2 * * *"`'),
    ("**The tasks**", (
        ("three tasks in one chain: `print_run_date >> total_revenue >> send_summary`",
         ("structure.tasks", "structure.edges")),
        ("""`print_run_date` is a `BashOperator`, `total_revenue` a `PythonOperator` (or a `@task`
      function) and `send_summary` an `EmailOperator` (`airflow.providers.smtp.operators.smtp`)""",
         ("structure.operators",)),
        ("""`print_run_date` prints exactly `Processing date: <the run's date>`, for example
      `Processing date: 2024-01-02` — the date of the run, not today's date. Like the lesson's
      `with_env` task, pass it in an environment variable: `env={"RUN_DATE": "{{ ds }}"}` and
      `bash_command='echo "Processing date: $RUN_DATE"'`. `env` is a template: Airflow replaces
      `{{ ds }}` with the run's date (`YYYY-MM-DD`) just before the task runs.""", ("run.run_date",)),
        ("""`total_revenue` reads `data/orders.csv` (columns `order_id,customer,amount`) and returns
      the sum of `amount`, **rounded to 2 decimals** (622.79 for the sample file). Build the path
      from the DAG file, `Path(__file__).parent / "data" / "orders.csv"`: the grader runs your DAG
      on its own CSV file. Some customer names contain a comma, in quotes: read the file with
      `csv.DictReader`.""", ("run.output",)),
        ("""`send_summary` sends to `team@company.com` a subject that shows the revenue, pulled from
      `total_revenue`'s XCom:
      `subject="Revenue for {{ ds }}: {{ ti.xcom_pull(task_ids='total_revenue') }}"`.""",
         ("run.email",)),
    ), ""),
)

EXERCISE = Exercise(
    id="ex04_operators", title="Exercise 4: common operators", dag_id="common_operators",
    edges=chain(*TASKS), schedule="0 2 * * *", schedule_text="every day at 02:00 UTC",
    checks=(*COMMON_HEAD, operators, *COMMON_SCHEDULE, tasks_succeeded, run_date, revenue, email,
            airflow3_idioms),
    points=16, expected_from=expected_from, checklist=CHECKLIST,
)
