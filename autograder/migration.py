"""Airflow 2 → 3 advice: ruff's AIR rules, each rewritten as one sentence with its replacement,
the course's own notes where ruff has none, and what a failed import of the learner's file means.

Pure functions over text: ruff itself runs in ``autograder.runner.airflow2_idioms``.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

# ruff's rules for code that Airflow 3 removed (301), moved to a provider (302), or keeps working
# for now (311, 312). AIR304 (``datetime.now()`` in a DAG argument) is advice of its own, not a
# change between Airflow 2 and 3.
RULES = ("AIR301", "AIR302", "AIR311", "AIR312")

START_DATE = 'start_date=pendulum.datetime(2023, 10, 1, tz="UTC")'

DATASET_NOTE = ("Airflow 2's `Dataset` (`airflow.datasets`) was removed in Airflow 3: a dataset is now "
                "an Asset, `from airflow.sdk import Asset`, then `Asset(\"orders_clean\")` where you "
                "wrote `Dataset(...)`; `schedule=[...]` and `outlets=[...]` take it as before.")

# The course's replacements where ruff has none, or where its suggestion is itself deprecated.
# Keyed by dotted name; a key also covers every name under it.
COURSE_NOTES = {
    "airflow.utils.dates.days_ago": f"`days_ago()` was removed in Airflow 3: give a fixed start date, "
                                    f"`{START_DATE}` (with `import pendulum`).",
    "airflow.utils.dates": "`airflow.utils.dates` has no date helpers in Airflow 3: give a fixed start "
                           f"date, `{START_DATE}` (with `import pendulum`).",
    "airflow.operators.dummy": "`DummyOperator` is called `EmptyOperator` in Airflow 3: "
                               "`from airflow.providers.standard.operators.empty import EmptyOperator`.",
    "airflow.operators.dummy_operator": "`DummyOperator` is called `EmptyOperator` in Airflow 3: "
                                        "`from airflow.providers.standard.operators.empty import "
                                        "EmptyOperator`.",
    "airflow.contrib": "`airflow.contrib` was removed in Airflow 3: its operators and hooks live in "
                       "provider packages (`airflow.providers.<name>`), and the course environment has "
                       "only the ones the exercises need.",
    "airflow.hooks.postgres_hook": "`airflow.hooks.postgres_hook` was removed in Airflow 3: use "
                                   "`PostgresHook` from `airflow.providers.postgres.hooks.postgres`, or "
                                   "`BaseHook.get_connection(\"warehouse\").get_hook()` for the "
                                   "course's `warehouse` connection.",
    "airflow.utils.weekday": "`airflow.utils.weekday` moved to the standard provider in Airflow 3: use "
                             "`WeekDay` from `airflow.providers.standard.utils.weekday`.",
    "airflow.hooks.base_hook": "`airflow.hooks.base_hook` was removed in Airflow 3: use `BaseHook` "
                               "from `airflow.sdk`.",
    "airflow.hooks.base.BaseHook": "`airflow.hooks.base.BaseHook` is deprecated in Airflow 3: use "
                                   "`BaseHook` from `airflow.sdk`.",
    "provide_context": "`provide_context=True` was removed in Airflow 3: delete it; a callable that "
                       "accepts `**context` gets the context anyway.",
    "execution_date": "`execution_date` was removed in Airflow 3: use `context['logical_date']` in "
                      "Python and `{{ logical_date }}` in templates (or `ds` / `{{ ds }}` for the date "
                      "as text).",
    "airflow.datasets": DATASET_NOTE,
    "airflow.Dataset": DATASET_NOTE,
    "airflow.sdk.Dataset": DATASET_NOTE,
    "airflow.operators.subdag": "SubDAGs were removed in Airflow 3: group tasks with `TaskGroup` "
                                "from `airflow.sdk`.",
}

# Top-level names that are a project's own folders, not packages anyone installs.
PROJECT_FOLDERS = {"dags", "include", "plugins", "utils", "helpers", "helper", "common", "lib", "src",
                   "scripts", "config", "settings", "tasks", "operators", "hooks", "sql", "etl",
                   "custom_operators", "modules", "functions", "util", "tools"}


def _quoted(text: str) -> list[str]:
    return re.findall(r"`([^`]+)`", text)


def course_note(name: str) -> str | None:
    """The course's replacement for ``name`` (a dotted name), most specific first."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        note = COURSE_NOTES.get(".".join(parts[:end]))
        if note:
            return note
    return None


@cache
def installed_providers() -> tuple[str, ...]:
    """The Airflow providers in this environment, as the short names of their packages."""
    from importlib.metadata import distributions

    prefix = "apache-airflow-providers-"
    return tuple(sorted({(d.metadata["Name"] or "").lower().removeprefix(prefix).replace("-", ".")
                         for d in distributions()
                         if (d.metadata["Name"] or "").lower().startswith(prefix)}))


def sentence(code: str, message: str, fix: str | None) -> str:
    """One ruff AIR finding as one sentence: what changed in Airflow 3 and what to write instead."""
    names = _quoted(message)
    name = names[0] if names else ""
    note = course_note(name) if name else None
    if note:
        return note
    fix = (fix or "").strip()
    replacement = None
    if m := (re.search(r"use `([^`]+)` from `([^`]+)`", fix)
             or re.search(r"`([^`]+)` has been moved to `([^`]+)`", fix)):
        replacement = f"`{m[1]}` from `{m[2]}`"
    elif m := re.match(r"Use `([^`]+)` instead", fix):
        replacement = f"`{m[1]}`"
    provider = re.search(r"into `([^`]+)` provider", message)
    if code == "AIR302" and provider:
        change = f"moved to the {provider[1]} provider in Airflow 3"
    elif code == "AIR312" and provider:
        change = f"still works in Airflow 3 but is deprecated (it moved to the {provider[1]} provider)"
    elif code == "AIR311":
        change = "still works in Airflow 3 but is deprecated"
    else:
        change = "was removed in Airflow 3"
    text = f"`{name}` {change}" if name else message.split(";")[0].strip().rstrip(".")
    if replacement:
        text += f": use {replacement} instead"
    elif fix:
        text += f": {fix[0].lower()}{fix[1:].rstrip('.')}"
    if provider and provider[1].replace("-", ".") not in installed_providers():
        text += f" (the {provider[1]} provider is not part of the course environment)"
    return text + "."


def _missing(message: str) -> tuple[str, str] | None:
    """(kind, dotted name) that an ImportError's message says is missing."""
    if m := re.search(r"cannot import name '([\w.]+)' from '([\w.]+)'", message):
        return "name", f"{m[2]}.{m[1]}"
    if m := re.search(r"No module named '([\w.]+)'", message):
        return "module", m[1]
    return None


def import_fix(message: str, idioms: list[dict], exercise_id: str,
               submission: Path | None = None) -> str:
    """What to do about an ImportError or ModuleNotFoundError raised by importing the file."""
    found = _missing(message)
    if found is None:
        if "relative import" in message:
            return _only_this_file()
        return ""
    kind, name = found
    if name.startswith("airflow.providers."):
        provider = name.split(".")[2]
        if provider not in {p.split(".")[0] for p in installed_providers()}:
            return (f"The {provider} provider (`apache-airflow-providers-{provider}`) is not part of "
                    f"the course environment. {_needs(exercise_id)}")
    if name.split(".")[0] == "airflow":
        module = name if kind == "module" else name.rsplit(".", 1)[0]
        for finding in idioms:
            flagged = finding.get("name", "")
            if flagged == name or flagged.startswith(module + "."):
                return finding["message"]
        note = course_note(name)
        if note:
            return note
        return (f"`{name}` does not exist in Airflow 3 (it is an Airflow 2 path): find its new "
                "place in the Airflow 3 documentation or in the starter's imports.")
    top = name.split(".")[0]
    beside = submission is not None and ((submission.parent / f"{top}.py").exists()
                                         or (submission.parent / top).is_dir())
    if "unknown location" in message or beside or top in PROJECT_FOLDERS:
        return _only_this_file(top)
    return f"`{top}` is not part of the course environment. {_needs(exercise_id)}"


def _only_this_file(module: str | None = None) -> str:
    what = f"`{module}`" if module else "other modules of your project"
    return (f"Only this one file is graded, so {what} cannot be imported: put the helper code you "
            "need into the DAG file itself.")


def _needs(exercise_id: str) -> str:
    providers = ", ".join(installed_providers())
    return (f"The exercise needs nothing beyond Airflow 3 with its providers here ({providers}), "
            f"pandas, pendulum and Python's standard library: see the imports of "
            f"exercises/{exercise_id}/dag.py.")
