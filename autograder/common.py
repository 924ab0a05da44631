"""Checks every DAG exercise shares: file, import, structure, schedule and the run itself.

Each reads the exercise's contract from ``facts.exercise`` and what was found from ``facts``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from datetime import datetime

from autograder.checks import Failed, KeepGoing, check
from autograder.factories import (  # noqa: F401 (no_mail, idiom_lines: shared from here too)
    _listed, _names, airflow2_idioms, edges_equal, idiom_lines,
    no_mail, schedule_equals)
from autograder.facts import Facts, dependency_order
from autograder.migration import COURSE_NOTES, import_fix

EMAIL_HINT = ("Use EmailOperator from airflow.providers.smtp.operators.smtp with "
              "to=\"team@company.com\"; the grader's mail server catches it.")
RETRIES_NOTE = "While grading, retries are set to 0 so that a failing task reports at once."
UPSTREAM_FAILED = " (not run, because a task upstream failed)"

# What the Airflow 2 idioms of the lesson turn into on Airflow 3, keyed by what shows in errors.
# `_explanation` adds them, with OTHER_FIXES, to the errors a learner sees.
AIRFLOW2_FIXES = {
    "schedule_interval": "`schedule_interval=` was removed in Airflow 3: write `schedule=` instead "
                         "(same values: '@daily', '0 3 * * *', None).",
    "provide_context": COURSE_NOTES["provide_context"],
    "execution_date": COURSE_NOTES["execution_date"],
}


# Errors whose message alone does not tell a beginner what to do; a key of several words
# matches when every one of them is in the error.
OTHER_FIXES = {
    "not JSON compliant": "XCom values are stored as JSON, which has no NaN or infinity: replace "
                          "them before returning (pandas: `df.astype(object).where(df.notna(), None)`).",
    # Airflow stores a returned DataFrame as Parquet, which needs pyarrow: the course has none.
    ("pyarrow", "as an XCom"): "The task returned a pandas DataFrame, and XCom values should be small "
                               "and JSON-serialisable: return `df.to_dict(\"records\")` instead and "
                               "rebuild the frame downstream with `pd.DataFrame(rows)`, or write the "
                               "frame to the warehouse and return the table's name.",
    # insert_rows given dicts: it iterates each row, so it inserts the keys ("id", "name", ...).
    "datatype mismatch": "hook.insert_rows takes each row as a tuple or list of values in the "
                         "table's column order, e.g. (1, 'Alice', 34); a dict row inserts its keys: "
                         "turn each dict into a tuple, (r['id'], r['name'], r['age']).",
    "invalid input syntax for type": "hook.insert_rows takes each row as a tuple or list of values "
                                     "in the table's column order; a dict row inserts its keys: "
                                     "turn each dict into a tuple of its values.",
}
DUPLICATE_TASK = re.compile(r"Task id '([^']*)' has already been added to the Dag")


def _explanation(text: str) -> str:
    fixes = [fix for key, fix in {**AIRFLOW2_FIXES, **OTHER_FIXES}.items()
             if all(word in text for word in ((key,) if isinstance(key, str) else key))]
    if m := DUPLICATE_TASK.search(text):
        fixes.append(f"Two tasks of the DAG have task_id `{m[1]}`: every task needs a task_id of its "
                     "own, so rename or delete one of them.")
    return " ".join(fixes)


def run_order(facts: Facts) -> list[str]:
    """The learner's tasks upstream first; tasks free to run at the same time in the order the
    exercise has them (extract before transform), then by id."""
    if facts.dag is None:
        return []
    ex = facts.exercise
    return facts.dag.dependency_order(dependency_order(ex.tasks, ex.edges))


def _in_order(items: list[str]) -> str:
    """Task ids in the order given (dependency order), quoted."""
    return ", ".join(f"`{i}`" for i in items)


@check("file.parses", title="The DAG file exists and is valid Python", points=0, visibility="instructor",
       hint="Open the file in JupyterLab: the editor underlines the broken line.")
def file_parses(facts: Facts) -> None:
    assert facts.read_error is None, (
        f"{facts.read_error}. Start from the exercise's starter: copy "
        f"exercises/{facts.exercise.id}/dag.py.")
    err = facts.syntax_error
    if err:
        where = f" at line {err.line}: {(err.code or '').strip()}" if err.line else ""
        raise AssertionError(f"{facts.filename} is not valid Python: {err.message}{where}")


@check("import.loads", title="Airflow can import the DAG file", points=1, needs=["file.parses"],
       visibility="instructor",
       hint="Run `python {file}` in a terminal to see the full error.")
def import_loads(facts: Facts) -> None:
    if facts.import_timed_out:
        raise AssertionError("Importing your file did not finish in time. Code at the top level of a "
                             "DAG file runs every time Airflow parses it: move slow work "
                             "(sleeps, downloads, big reads) into a task.")
    if facts.import_crash:
        raise AssertionError(f"While importing your file, {facts.import_crash}. Code at the top "
                             "level of a DAG file must not end the process.")
    err = facts.import_error
    if err and err.type in ("Crash", "Refused", "NotSerializable"):  # the grader's own words
        raise AssertionError(f"Importing {facts.filename}: {err.message}. A DAG file must only "
                             "define DAGs and tasks.")
    if err:
        # "cannot import name 'x' from 'm' (/path/to/site-packages/m.py)": the grader's path, not theirs
        err = replace(err, message=re.sub(r" \(/[^()]*\)$", "", err.message))
        message = f"Importing {facts.filename} failed: {err.describe(facts.filename)}."
        fix = _explanation(f"{err.message} {err.code or ''}")
        if err.type in ("ImportError", "ModuleNotFoundError"):
            fix = import_fix(err.message, facts.airflow2_idioms, facts.exercise.id,
                             facts.submission) or fix
        raise AssertionError(f"{message} {fix} {_more_idioms(facts, f'{message} {fix}', err.line)}"
                             .strip())


def _more_idioms(facts: Facts, said: str, line: int | None) -> str:
    """Where the file's other Airflow 2 idioms are listed: fixed together, they cost one try."""
    others = {f["message"] for f in facts.airflow2_idioms
              if f["message"] not in said and f["line"] != line
              and not (f.get("name") and f["name"] in said)}
    listed = next((c.title for c in facts.exercise.checks
                   if c.id in ("advice.airflow3_imports", "fix.airflow3_idioms")), None)
    if not others or not listed:
        return ""
    return (f"The file has {len(others)} more Airflow 2 idiom{'s' if len(others) > 1 else ''}, "
            f"listed under \"{listed}\" below: fix {'them' if len(others) > 1 else 'it'} too.")


@check("import.dag_id", title="The file defines the DAG with the expected dag_id", points=1,
       needs=["import.loads"])
def dag_id_found(facts: Facts) -> None:
    want, ids, name = facts.exercise.dag_id, facts.dag_ids, facts.filename
    assert ids, (f"No DAG found in {name}. Create one with "
                 f"`with DAG(dag_id=\"{want}\", ...) as dag:` or call your `@dag` function "
                 "at the end of the file.")
    twice = sorted(i for i, n in Counter(ids).items() if n > 1 and (i == want or len(set(ids)) == 1))
    assert not twice, (f"{name} defines {Counter(ids)[twice[0]]} DAGs with dag_id `{twice[0]}`: "
                       "Airflow keeps only one of them and drops the others without a word. Give "
                       "each DAG a dag_id of its own, or delete the copies you do not need.")
    if want in ids:
        return
    if facts.dag is not None:
        raise KeepGoing(f"Your DAG has dag_id `{facts.dag.dag_id}`; the exercise asks for `{want}`: set "
                        f"`dag_id=\"{want}\"`. The other checks graded your DAG as it is.")
    shown = _names(sorted(set(ids))[:8]) + (f" and {len(set(ids)) - 8} more" if len(set(ids)) > 8 else "")
    if facts.exercise.also_dags:  # the exercise asks for several DAGs in the file
        raise AssertionError(f"{name} defines {len(set(ids))} DAGs, {shown}, and none has dag_id "
                             f"`{want}`: give that DAG `dag_id=\"{want}\"`, as the checklist names it.")
    raise AssertionError(f"{name} defines {len(set(ids))} DAGs, {shown}, and none has "
                         f"dag_id `{want}`. The grader grades one DAG, the exercise's: give it "
                         f"`dag_id=\"{want}\"` and move the others to files of their own (or delete "
                         "them).")


@check("structure.tasks", title="The DAG has exactly the expected tasks", points=1,
       needs=["import.dag_id"])
def expected_tasks(facts: Facts) -> None:
    have, want = set(facts.dag.tasks), set(facts.exercise.tasks)
    problems = []
    if want - have:
        problems.append(f"missing task(s) {_names(want - have)}")
    if have - want:
        problems.append(f"unexpected task(s) {_names(have - want)}")
    text = "; ".join(problems)
    assert not problems, (f"{text[0].upper()}{text[1:]}. Task ids must be exactly "
                          f"{_names(want)}.{_group_prefix(have - want, want - have)}")


def _group_prefix(unexpected: set[str], missing: set[str]) -> str:
    """Why ``regions.process_us`` is not ``process_us``, when a TaskGroup is the cause."""
    groups = sorted({u[:-len(m) - 1] for u in unexpected for m in missing if u.endswith(f".{m}")})
    if not groups:
        return ""
    named = _names(groups)
    return (f" A TaskGroup puts its group_id before the ids of its tasks ({named}): create the "
            f"group with `prefix_group_id=False` (`@task_group(prefix_group_id=False)` or "
            f"`TaskGroup(\"{groups[0].rsplit('.', 1)[-1]}\", prefix_group_id=False)`), or leave "
            "those tasks out of it.")


@check("structure.acyclic", title="Dependencies contain no cycle", points=0, needs=["import.dag_id"],
       visibility="instructor")
def no_cycle(facts: Facts) -> None:
    cycle = facts.dag.find_cycle()
    if cycle is None:
        return
    odd = [f"{a} >> {b}" for a, b in zip(cycle, cycle[1:], strict=False)
           if (a, b) not in facts.exercise.edges]
    raise AssertionError(
        f"Cycle: {' -> '.join(cycle)}. Airflow cannot run a DAG whose dependencies go round in a "
        "circle, so the test run is skipped: remove "
        + (f"`{odd[0]}`, which the exercise does not ask for." if len(odd) == 1 else
           "the arrow that closes the circle."))


def _rule(task: object) -> str:
    """``one_success`` from however the trigger rule was written down."""
    return str(getattr(task, "trigger_rule", "") or "all_success").rsplit(".", 1)[-1].lower()


@check("structure.joins", title="A task that several arrows lead into waits for all of them",
       points=1, needs=["structure.edges"], show_pass=True,
       hint="Leave trigger_rule out: the default, all_success, starts a task once every task before "
            "it has succeeded.")
def joins_wait_for_all(facts: Facts) -> str:
    """dag.test() runs one task at a time, so only the trigger rule shows whether a join waits."""
    joins = {}
    for _, b in facts.exercise.edges:
        joins[b] = sorted(a for a, c in facts.exercise.edges if c == b)
    joins = {t: ups for t, ups in joins.items() if len(ups) > 1}
    wrong = [f"`{t}` has trigger_rule=\"{_rule(facts.dag.tasks[t])}\": it may start before "
             f"{_listed(ups)} have all succeeded"
             for t, ups in sorted(joins.items()) if _rule(facts.dag.tasks[t]) != "all_success"]
    assert not wrong, ("; ".join(wrong) + ". Remove trigger_rule (the default, all_success, waits "
                       "for every task before it).")
    return f"{_names(joins)} wait{'s' if len(joins) == 1 else ''} for every task before it."


@check("schedule.start_date", title="start_date is as asked", points=0.5, needs=["import.dag_id"])
def start_date(facts: Facts) -> None:
    want = facts.exercise.start_date
    got = facts.dag.start_date
    assert got, f"The DAG has no start_date: set `start_date=pendulum.datetime({want.year}, " \
                f"{want.month}, {want.day}, tz=\"UTC\")`."
    when = datetime.fromisoformat(got)
    assert (when.date(), when.hour, when.minute) == (want, 0, 0), (
        f"start_date is {when:%Y-%m-%d %H:%M} ({when.tzname()}); the exercise asks for {want} "
        f"00:00: `start_date=pendulum.datetime({want.year}, {want.month}, {want.day}, tz=\"UTC\")`.")


@check("schedule.catchup", title="catchup is as asked", points=0.5, needs=["import.dag_id"])
def catchup(facts: Facts) -> None:
    want = facts.exercise.catchup
    assert facts.dag.catchup == want, (
        f"catchup is {facts.dag.catchup}; set `catchup={want}` "
        + ("so Airflow does not create a run for every day since the start date."
           if not want else "."))


@check("run.tasks_succeeded", title="A test run succeeds: every task ends in success", points=2,
       needs=["structure.tasks", "structure.acyclic"], show_pass=True, visibility="instructor",
       hint="Read the task's log below; fix the first failing task, then grade again.")
def tasks_succeeded(facts: Facts) -> str:
    run = facts.run
    assert run is not None, "The DAG was not run."
    if run.timed_out:
        running = _names(run.running_tasks) if run.running_tasks else "no task (Airflow itself)"
        raise AssertionError(f"The test run did not finish in time: {running} was still running. "
                             "Does a task sleep, wait for input or loop forever?")
    # Upstream first, as the run met them: the first failure is usually the cause of the others.
    order = run_order(facts)
    rank = {t: i for i, t in enumerate(order)}
    in_order = sorted(run.task_states, key=lambda t: (rank.get(t, len(rank)), t))
    failed = {t: run.task_states[t] for t in in_order if run.task_states[t] != "success"}
    # One line per error (or end state), in the order of the first task that met it.
    groups: dict[tuple[str, str], list[str]] = {}
    for task_id, state in failed.items():
        if task_id in run.failures:
            groups.setdefault(("error", run.failures[task_id].describe(facts.filename)), []).append(task_id)
        else:
            groups.setdefault(("state", state), []).append(task_id)
    lines = []
    for (kind, text), task_ids in groups.items():
        if kind == "state":
            lines.append(f"{_in_order(task_ids)} ended {text}"
                         + (UPSTREAM_FAILED if text == "upstream_failed" else ""))
            continue
        fix = _explanation(text)
        stop = "" if text.endswith(".") else "."
        lines.append(f"{_in_order(task_ids)} failed: {text}" + (f"{stop} {fix}" if fix else ""))
    if run.crash:
        lines.insert(0, run.crash[0].upper() + run.crash[1:])
    if run.error and not lines:
        lines.append(f"dag.test() raised {run.error.describe(facts.filename)}")
    missing = set(facts.exercise.tasks) - set(run.task_states)
    if missing and not lines:
        lines.append(f"task(s) {_names(missing)} never ran")
    if lines or run.state != "success":
        message = " ".join([line if line.endswith(".") else f"{line}." for line in lines] + [RETRIES_NOTE])
        first = next((t for t, s in failed.items() if s == "failed"), None)
        raise Failed(message, None if first is None else (
            f"Fix `{first}` first: it is the first task that failed on its own (tasks are listed "
            "upstream first). Read its log below, then grade again."))
    return f"All {len(run.task_states)} tasks succeeded. {RETRIES_NOTE}"


airflow3_idioms = airflow2_idioms(
    "advice.airflow3_imports", title="Airflow 3 idioms (advice, no points)", points=0,
    visibility="instructor", intro="Airflow 2 idioms found:",
    outro="Shims keep some of them working for now; use the Airflow 3 form.")

COMMON_HEAD = [file_parses, import_loads, dag_id_found, expected_tasks, no_cycle, edges_equal()]
COMMON_SCHEDULE = [schedule_equals(), start_date, catchup]
