"""Exercise 3: the lesson's hello_world DAG — three BashOperator tasks in a row, daily."""

from __future__ import annotations

import re

from dateutil import parser as dateparser

from typing import Any

from autograder import factories
from autograder.checks import check
from autograder.factories import returns
from autograder.common import COMMON_HEAD, COMMON_SCHEDULE, airflow3_idioms, tasks_succeeded
from autograder.exercises import Exercise, chain, dag_section
from autograder.facts import Facts
from autograder.values import describe_value

TASKS = ("say_hello", "print_date", "sleep_5_seconds")
HELLO = "Hello from Airflow!"
DESCRIPTION, TAGS = "My first Airflow DAG", ("example",)


bash_tasks = factories.operators(
    {t: ("Bash", "a BashOperator") for t in TASKS}, check_id="structure.bash",
    title="Every task is a BashOperator",
    why="This exercise is about shell commands: make each task a BashOperator (or a `@task.bash` "
        "function that returns the command).",
    hint="from airflow.providers.standard.operators.bash import BashOperator, then "
         "BashOperator(task_id=\"say_hello\", bash_command='echo \"Hello from Airflow!\"').")

default_args = factories.retries(
    3, 5, check_id="settings.default_args",
    title="default_args give every task 3 retries, 5 minutes apart",
    why="Like the lesson, pass default_args to the DAG so that every task gets them. ")


@check("settings.tags", title="tags and description are kept from the starter", points=1,
       needs=["import.dag_id"],
       hint=f"with DAG(..., description={DESCRIPTION!r}, tags={list(TAGS)!r}) as dag:")
def tags_and_description(facts: Facts) -> None:
    dag, wrong = facts.dag, []
    if set(TAGS) - set(dag.tags):
        wrong.append(f"its tags are {list(dag.tags)!r}, without {sorted(set(TAGS) - set(dag.tags))!r}")
    if dag.description != DESCRIPTION:
        wrong.append(f"its description is {dag.description or None!r}, the starter's is {DESCRIPTION!r}")
    assert not wrong, ("The DAG lost what the starter gave it: " + "; ".join(wrong) + ". Keep "
                       f"`description={DESCRIPTION!r}` and `tags={list(TAGS)!r}`: the UI shows them.")


@returns("say_hello", "run.say_hello",
          title="say_hello prints \"Hello from Airflow!\"", points=2,
          hint="bash_command='echo \"Hello from Airflow!\"': the double quotes keep the words together.")
def says_hello(facts: Facts, got: Any) -> str:
    assert got is not None, (
        "`say_hello` pushed no XCom. A BashOperator keeps the last line its command prints as its "
        "XCom: make the command `echo` the greeting (and leave do_xcom_push at its default, True).")
    text = str(got).strip()
    if text.lower().strip("'\" .!") == HELLO.lower().strip("!"):
        detail = " Only capitals, quotes or punctuation differ: copy the text exactly."
    else:
        detail = ""
    assert text == HELLO, (f"`say_hello` printed {text!r} as its last line; the exercise asks for "
                           f"exactly {HELLO!r}.{detail}")
    return f"`say_hello` printed {HELLO!r}."


def _looks_like_a_date(text: str) -> bool:
    if text.isdigit():
        return len(text) >= 9  # `date +%s`: seconds since 1970
    if re.search(r"\d{1,2}:\d\d", text) and re.search(r"\b\d{4}\b", text):
        return True  # `date` in any language: a time of day and a year
    try:
        dateparser.parse(text)
    except (ValueError, OverflowError):
        return False
    return any(c.isdigit() for c in text)


@returns("print_date", "run.print_date",
          title="print_date prints the date", points=1,
          hint="bash_command=\"date\" runs the `date` program; `echo date` would print the word.")
def prints_date(facts: Facts, got: Any) -> str:
    text = "" if got is None else str(got).strip()
    assert text, ("`print_date` printed nothing (its XCom is "
                  f"{describe_value(got)}). Run the `date` command: bash_command=\"date\".")
    assert _looks_like_a_date(text), (
        f"`print_date` printed {text!r} as its last line, which is not a date. Its command must run "
        "`date` (and print nothing after it: Airflow keeps the last line).")
    return f"`print_date` printed {text!r}."


CHECKLIST = (
    dag_section("hello_world", 'runs every day at midnight UTC: `schedule="@daily"`',
                ("""`default_args` that give every task `retries=3` and `retry_delay=timedelta(minutes=5)`""",
                 ("settings.default_args",)),
                ("""keep `tags=["example"]` and the description from the starter, `"My first Airflow DAG"`:
      the UI shows them""", ("settings.tags",))),
    ("**The tasks**", (
        ("three tasks in one chain: `say_hello >> print_date >> sleep_5_seconds`",
         ("structure.tasks", "structure.edges")),
        ("""each a `BashOperator`
      (`from airflow.providers.standard.operators.bash import BashOperator`)""", ("structure.bash",)),
        ("""`say_hello` prints exactly `Hello from Airflow!`: `bash_command='echo "Hello from Airflow!"'`""",
         ("run.say_hello",)),
        ("`print_date` runs the `date` command", ("run.print_date",)),
        ("""`sleep_5_seconds` sleeps. The lesson sleeps 5 seconds; `sleep 1` is enough here and keeps
      grading quick (the grader checks that every task runs and succeeds).""", ("run.tasks_succeeded",)),
    ), ""),
)

EXERCISE = Exercise(
    id="ex03_first_dag", title="Exercise 3: your first DAG", dag_id="hello_world",
    edges=chain(*TASKS), schedule="@daily", schedule_text="every day at 00:00 UTC (@daily)",
    checks=(*COMMON_HEAD, bash_tasks, *COMMON_SCHEDULE, default_args, tags_and_description,
            tasks_succeeded, says_hello, prints_date, airflow3_idioms),
    points=15, checklist=CHECKLIST,
)
