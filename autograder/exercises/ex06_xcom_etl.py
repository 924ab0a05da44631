"""Exercise 6: the lesson's XCom ETL — return values, a custom XCom key, a warehouse table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from autograder import factories
from autograder.checks import check
from autograder.factories import returns
from autograder.common import COMMON_HEAD, COMMON_SCHEDULE, airflow3_idioms, tasks_succeeded
from autograder.exercises import Exercise, chain
from autograder.facts import Facts
from autograder.values import as_int, describe_value, normalize_row

COLUMNS = ("user_id", "full_name", "email")
TABLE = "clean_users"
TASKS = ("extract", "transform", "load")
SHOWN = 3


def expected_from(data: Path) -> dict[str, Any]:
    """The hidden users, raw and as transform should return them."""
    users = json.loads((data / "users.json").read_text(encoding="utf-8"))
    clean = [{"user_id": u["id"], "full_name": f"{u['first_name']} {u['last_name']}",
              "email": u["email"].lower()} for u in users]
    return {"users": users, "clean": clean, "rows": [normalize_row(r, COLUMNS) for r in clean]}


def _field_problems(got: list, want: list[dict]) -> list[str]:
    """Per-user differences, matched on user_id, in the learner's terms."""
    keys = sorted({str(k) for r in got if isinstance(r, dict) for k in r})
    if not all(isinstance(r, dict) for r in got):
        odd = next(r for r in got if not isinstance(r, dict))
        return [f"each record must be a dict with keys {', '.join(COLUMNS)}; found {describe_value(odd)}"]
    if set(COLUMNS) - {k.lower() for k in keys}:
        return [f"the records have keys {', '.join(keys)}; expected exactly {', '.join(COLUMNS)}"]
    by_id = {as_int({str(k).lower(): v for k, v in r.items()}.get("user_id")): r for r in got}
    problems = []
    for record in want:
        mine = by_id.get(record["user_id"])
        if mine is None:
            problems.append(f"user_id {record['user_id']} is missing")
            continue
        mine = {str(k).lower(): v for k, v in mine.items()}
        for column in ("full_name", "email"):
            if mine.get(column) != record[column]:
                why = " (lower-cased)" if column == "email" and str(mine.get(column)).lower() == \
                    record[column] else ""
                problems.append(f"user {record['user_id']}: {column} is {mine.get(column)!r}, "
                                f"expected {record[column]!r}{why}")
    extra = sorted(set(by_id) - {r["user_id"] for r in want}, key=str)
    if extra:
        problems.append(f"unexpected user_id {', '.join(map(str, extra))}")
    return problems


def _summary(problems: list[str]) -> str:
    more = len(problems) - SHOWN
    return "; ".join(problems[:SHOWN]) + (f"; and {more} more" if more > 0 else "")


@returns("extract", "run.extract",
          title="extract returns every record of users.json", points=1,
          hint="return json.loads(USERS_JSON.read_text()): the return value becomes extract's XCom.")
def extracted(facts: Facts, got: Any) -> str:
    want = facts.expected["users"]
    assert isinstance(got, list), (f"`extract` returned {describe_value(got)}; return the list of "
                                   "records so that `transform` can pull it.")
    ids = sorted((as_int(r.get("id")) for r in got if isinstance(r, dict)),
                 key=lambda i: (i is None, i or 0))
    assert ids == sorted(u["id"] for u in want), (
        f"On the grading data, `extract` returned {len(got)} records with ids {ids[:8]}; the file "
        f"holds {len(want)} users with ids {sorted(u['id'] for u in want)}. Read the file next to "
        "the DAG: Path(__file__).parent / 'data' / 'users.json'.")
    return f"{len(want)} records passed through XCom."


@returns("transform", "run.output",
          title="transform returns user_id, full_name and a lower-cased email", points=2,
          hint="{'user_id': r['id'], 'full_name': f\"{r['first_name']} {r['last_name']}\", "
               "'email': r['email'].lower()} for each record.")
def transformed(facts: Facts, got: Any) -> str:
    want = facts.expected["clean"]
    assert isinstance(got, list), (f"`transform` returned {describe_value(got)}; return a list of "
                                   "dicts so that `load` can pull it.")
    problems = _field_problems(got, want)
    if not problems and len(got) != len(want):
        problems.append(f"{len(got)} records instead of {len(want)}: some appear twice")
    assert not problems, f"On the grading data, transform: {_summary(problems)}."
    return f"{len(want)} users transformed."


@check("run.xcom_key", title="load pushes the XCom `loaded_count`", points=2,
       needs=["run.tasks_succeeded"], show_pass=True,
       hint="In load: ti.xcom_push(key=\"loaded_count\", value=len(users)).")
def loaded_count(facts: Facts) -> str:
    keys = facts.run.xcom_keys
    want = len(facts.expected["clean"])
    mine = keys.get("load", {})
    if "loaded_count" not in mine:
        elsewhere = [t for t, k in keys.items() if "loaded_count" in k]
        found = ", ".join(f"`{k}`" for k in sorted(mine)) or "no XCom at all"
        if elsewhere:
            fix = (f" `loaded_count` was pushed by {', '.join(f'`{t}`' for t in elsewhere)}: push it "
                   "from `load`, after the rows are written.")
        elif set(mine) - {"return_value"}:
            fix = " The key must be exactly `loaded_count`: ti.xcom_push(key=\"loaded_count\", value=...)."
        else:
            fix = (" Push it with ti.xcom_push(key=\"loaded_count\", value=...): a return value is "
                   "stored under the key `return_value`.")
        raise AssertionError(f"`load` pushed {found}, not `loaded_count`.{fix}")
    got = mine["loaded_count"]
    assert as_int(got) == want, (f"`load` pushed loaded_count={describe_value(got)}; it loaded "
                                 f"{want} users on the grading data, so loaded_count must be {want}.")
    return f"loaded_count = {want}."


warehouse = factories.warehouse_rows(
    TABLE, COLUMNS, lambda facts: facts.expected["rows"],
    hint="hook = BaseHook.get_connection('warehouse').get_hook(); hook.run('CREATE TABLE IF NOT "
         f"EXISTS {TABLE} (...)'); hook.insert_rows('{TABLE}', rows, target_fields=[...]) — "
         "parameters, not f-strings, so that O'Brien cannot break the SQL.")


CHECKLIST = (
    ("**The DAG** (given in the starter)", (
        ("""`dag_id="xcom_etl"`, `schedule="@daily"`, `start_date=pendulum.datetime(2023, 10, 1, tz="UTC")`,
      `catchup=False`""", ("import.dag_id", "schedule.timing", "schedule.start_date", "schedule.catchup")),
        ("three tasks in one chain: `extract >> transform >> load`", ("structure.tasks", "structure.edges")),
    ), ""),
    ("**The tasks**", (
        ("""`extract` returns the list of records of `data/users.json` (each with `id`, `first_name`,
      `last_name`, `email`, and sometimes other fields). Its return value is its XCom.""",
         ("run.extract",)),
        ("""`transform` pulls them with `ti.xcom_pull(task_ids="extract")` and returns one dict per user:
      ```python
      {"user_id": 1, "full_name": "Alice Martin", "email": "alice.martin@example.com"}
      ```
      `full_name` is the first and last name with one space between; `email` is lower-cased.""",
         ("run.output",)),
        ("`load` pulls `transform`'s result and writes it into the table\n"
         "      `clean_users (user_id, full_name, email)` of the database behind the Airflow connection\n"
         "      `warehouse`:\n"
         '  - `hook = BaseHook.get_connection("warehouse").get_hook()` (`from airflow.sdk import BaseHook`);\n'  # noqa: E501
         '  - `hook.run("CREATE TABLE IF NOT EXISTS clean_users (user_id INTEGER PRIMARY KEY, full_name TEXT, email TEXT)")`;\n'  # noqa: E501
         '  - `hook.insert_rows("clean_users", rows, target_fields=["user_id", "full_name", "email"], replace=True, replace_index="user_id")`\n'  # noqa: E501
         "    with `rows` a list of `(user_id, full_name, email)` tuples. Let the hook fill in the values:\n"
         "    a name such as O'Brien breaks SQL built with f-strings.", ("run.warehouse",)),
        ("""`load` then pushes the number of users it loaded under the XCom key `loaded_count`:
      `ti.xcom_push(key="loaded_count", value=len(users))`.""", ("run.xcom_key",)),
    ), ""),
)

EXERCISE = Exercise(
    id="ex06_xcom_etl", title="Exercise 6: passing data with XCom", dag_id="xcom_etl",
    edges=chain(*TASKS), schedule="@daily", schedule_text="every day at 00:00 UTC (@daily)",
    checks=(*COMMON_HEAD, *COMMON_SCHEDULE, tasks_succeeded, extracted, transformed, loaded_count,
            warehouse, airflow3_idioms),
    points=16, expected_from=expected_from, warehouse_table=TABLE, checklist=CHECKLIST,
)
