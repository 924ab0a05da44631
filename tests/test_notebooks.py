"""The lesson notebooks: one per lesson of the manifest, stored clean, and every one of them runs.

The fast tests read the notebooks as files. The slow test starts one fresh lab in a temporary
Airflow home and executes every notebook top to bottom in a Jupyter kernel that gets the
environment `make lab` gives JupyterLab; a cell that raises fails the test. In the same kernel it
then tests the tests: other answers replace the reference solutions and the questions' tests
(hidden ones included) run on them, and what the notebook's text says about the live lab is
checked against what the lab did. Notebooks that read the lab's processes run a second time on a
lab whose processes are spawned, not forked, as on macOS. Each notebook runs in the kernel its
metadata names: Airflow's, or the Prefect + Dagster one that `make setup` registers in .venv.
"""

from __future__ import annotations

import ast
import json
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

from course import engine, lab, manifest, orchestrators
from course.paths import HOME_ENV, REPO_ROOT, LabPaths

NOTEBOOKS = REPO_ROOT / "notebooks"
LESSONS = manifest.lessons()
SOLUTION_KEYS = {"grade": False, "solution": True, "locked": False, "schema_version": 3}
TEST_KEYS = {"grade": True, "solution": False, "locked": True, "schema_version": 3}
# Exercise DAG ids that lesson DAGs must never take.
EXERCISE_DAG_ID = re.compile(r"""dag_id\s*=\s*["']([\w.-]+)["']""")
NOTEBOOK_DAG_ID = re.compile(r"""dag_id\s*=\s*["']([\w.-]+)["']|@dag\b[^\n]*\n(?:\s*@.*\n)*\s*def (\w+)""")
DRAWS_FIGURE = re.compile(r"^display\.(dag_graph|run_graph|gantt|runs_gantt)\(")
RUNS_A_DAG = re.compile(r"\blab\.(run_dag|wait_for_runs)\(|\.trigger\(")
PICTURES_A_RUN = re.compile(r"^display\.(run_graph|gantt|runs_gantt|next_runs_table)\(")
CELL_TIMEOUT = 900  # seconds; grading every exercise in one cell is the slowest
LAB_PORT = 28080
# Away from Prefect's 4200 and Dagster's 3000, where a learner's own servers listen.
ORCHESTRATOR_PORTS = {"COURSE_PREFECT_PORT": "24200", "COURSE_DAGSTER_PORT": "23000"}
AIRFLOW_KERNEL = "python3"
SOLUTION = re.compile(r"### BEGIN SOLUTION\n.*?### END SOLUTION", re.S)
README = REPO_ROOT / "README.md"

# Other answers to the graded questions, written differently from the reference solution. Each
# replaces the solution in its cell, then the question's tests (hidden ones included) run: a
# correct answer must pass, a wrong one must fail with an AssertionError.
OTHER_ANSWERS: dict[str, dict[str, list[str]]] = {
    "l01_q1_answer": {
        "correct": ['fetch_tries = 1 + 1  # first try, one retry\nfetch_state = "FAILED".lower()',
                    'from airflow.utils.state import TaskInstanceState\n'
                    'fetch_tries = 2\nfetch_state = TaskInstanceState.FAILED'],
        "wrong": ['fetch_tries = 3\nfetch_state = "success"',  # retried until it succeeds
                  'fetch_tries = 2\nfetch_state = "up_for_retry"'],
    },
    "l01_q2_answer": {
        "correct": ['from airflow.utils.state import State\nreport_state = State.UPSTREAM_FAILED',
                    'report_state = "Upstream_Failed "'],
        "wrong": ['report_state = "failed"', 'report_state = "skipped"', 'report_state = "success"'],
    },
    "l02_q1_answer": {
        "correct": ['parses_dag_files = "airflow dag-processor"', 'parses_dag_files = "DAG processor"',
                    'parses_dag_files = "dag_processor"'],
        "wrong": ['parses_dag_files = "scheduler"', 'parses_dag_files = "api-server"'],
    },
    "l02_q2_answer": {
        "correct": [
            'worker_setting = "[core] parallelism"\n'
            'worker_count = len(processes[processes["command"].str.startswith("airflow worker")])',
            'worker_setting = "AIRFLOW__CORE__PARALLELISM"\n'
            'worker_count = processes["command"].str.contains("worker").sum()',  # a numpy integer
        ],
        "wrong": [
            'worker_setting = "max_active_tasks_per_dag"\n'
            'worker_count = int(processes["command"].str.contains("LocalExecutor").sum())',
            'worker_setting = "parallelism"\nworker_count = len(processes)',
        ],
    },
    "l03_q1_answer": {
        "correct": ['runs_created = len(pd.date_range("2023-10-01", "2023-10-05"))\n'
                    'last_run_date = pendulum.date(2023, 10, 5).isoformat()'],
        "wrong": ['runs_created = 4\nlast_run_date = "2023-10-04"',  # Airflow 2's answer
                  'runs_created = 1\nlast_run_date = "2023-10-05"'],  # catchup=False's answer
    },
    "l03_q2_answer": {
        "correct": ['new_schedule = "00 02 * * *"',
                    'from airflow.sdk import CronTriggerTimetable\n'
                    'new_schedule = CronTriggerTimetable("0 2 * * *", timezone="UTC")'],
        "wrong": ['new_schedule = "@daily"', 'new_schedule = "0 2 * * 1-5"'],
    },
    "l05_q1_answer": {
        "correct": ["rendered_command = 'echo \"Processing date: ' "
                    "+ pendulum.date(2023, 10, 15).to_date_string() + '\"'",
                    "rendered_command = 'echo \"Processing date: 2023-10-15\" '"],
        "wrong": ["rendered_command = 'echo \"Processing date: 2023-10-15T03:00:00+00:00\"'",  # logical_date
                  "rendered_command = 'echo \"Processing date: 2023-10-14\"'"],  # Airflow 2's day
    },
    "l05_q2_answer": {
        "correct": ['env_only_line = "date={} airflow_home={}".format("2023-10-15", "unset")'],
        "wrong": ['env_only_line = "date=2023-10-15 airflow_home=" + str(LabPaths.default().home)',
                  'env_only_line = "date={{ ds }} airflow_home=unset"',
                  'env_only_line = "date= airflow_home=unset"'],
    },
    "l08_q1_answer": {
        "correct": ['weekday_0630 = "30 6 * * MON-FRI"',
                    'weekday_0630 = CronTriggerTimetable("30 6 * * 1-5", timezone="UTC")'],
        "wrong": ['weekday_0630 = "30 6 * * 0-4"', 'weekday_0630 = "30 6 * * *"'],
    },
    "l08_q2_answer": {
        "correct": ['logical_date_airflow3 = pendulum.parse("2023-10-15T03:00:00Z")\n'
                    'logical_date_airflow2 = logical_date_airflow3.subtract(days=1)',
                    'from datetime import datetime, timezone\n'
                    'logical_date_airflow3 = datetime(2023, 10, 15, 3, tzinfo=timezone.utc)\n'
                    'logical_date_airflow2 = datetime(2023, 10, 14, 3, tzinfo=timezone.utc)'],
        "wrong": ['logical_date_airflow3 = pendulum.datetime(2023, 10, 14, 3, tz="UTC")\n'
                  'logical_date_airflow2 = pendulum.datetime(2023, 10, 13, 3, tz="UTC")',
                  # both labelled the moment they are due
                  'logical_date_airflow3 = logical_date_airflow2 = pendulum.datetime(2023, 10, 15, 3, '
                  'tz="UTC")'],
    },
    "l13_q1_answer": {
        "correct": ['exception_type = KeyError.__name__\nbad_key = "execution_date"'],
        "wrong": ['exception_type = "ValueError"\nbad_key = "execution_date"',
                  'exception_type = "KeyError"\nbad_key = "logical_date"'],
    },
    "l13_q2_answer": {
        "correct": [
            # only_failed is true by default, and also re-runs upstream_failed tasks
            'clear_request = {"dag_run_id": etl_run, "task_ids": ["load", "send_email"], "dry_run": False}',
            'clear_request = {"dag_run_id": etl_run, "dry_run": False}',
            'clear_request = {"dag_run_id": etl_run, "task_ids": ["load"], "include_downstream": True,\n'
            '                 "dry_run": False}',
            'clear_request = {"dag_run_id": etl_run, "task_ids": ["send_email"], "include_upstream": True,\n'
            '                 "dry_run": False}',
        ],
        "wrong": [
            'clear_request = {"dag_run_id": etl_run, "task_ids": ["load", "send_email"]}',  # a dry run
            'clear_request = {"dag_run_id": etl_run, "task_ids": ["load"], "dry_run": False}',
            'clear_request = {"dag_run_id": etl_run, "dry_run": False, "only_failed": False}',
            'clear_request = {"dag_run_id": etl_run, "task_ids": ["load"], "include_upstream": True,\n'
            '                 "only_failed": False, "dry_run": False}',
            'clear_request = {"dag_run_id": etl_run, "dry_run": False, "reset_dag_runs": False}',
            'clear_request = {"dag_run_id": "run_42", "task_ids": ["load", "send_email"], "dry_run": False}',
        ],
    },
}
OTHER_ANSWERS |= {
    "l15_q1_answer": {
        "correct": ['predicted_task_runs = len(["extract_all", "process_region eu", "process_region asia",\n'
                    '                           "merge_results", "load_warehouse"])\n'
                    'predicted_extract_tries = 1 + 1'],
        "wrong": ['predicted_task_runs = 6\npredicted_extract_tries = 2',  # the three-region run's count
                  'predicted_task_runs = 5\npredicted_extract_tries = 1'],  # a retry is a new try
    },
    "l15_q2_answer": {
        "correct": ['predicted_materialized = set(["asia_summary"])'],
        "wrong": ['predicted_materialized = {"sales_orders", "asia_summary"}',
                  'predicted_materialized = {"asia_summary", "region_totals", "warehouse_regions"}'],
    },
    "l15_q3_answer": {
        # The same table, each row as the phrase numbers of (dagster, airflow, prefect).
        "correct": ['orders = [(0, 1, 2), (1, 2, 0), (2, 1, 0), (0, 2, 1), (0, 1, 2), (2, 1, 0)]\n'
                    'comparison = {row: dict(zip(("dagster", "airflow", "prefect"), order))\n'
                    '              for row, order in zip(CHOICES, orders)}'],
        "wrong": ['comparison = {row: {"airflow": 0, "prefect": 1, "dagster": 2} for row in CHOICES}',
                  # where run state lives: Prefect's and Dagster's swapped
                  'orders = [(0, 1, 2), (0, 2, 1), (2, 1, 0), (0, 2, 1), (0, 1, 2), (2, 1, 0)]\n'
                  'comparison = {row: dict(zip(("dagster", "airflow", "prefect"), order))\n'
                  '              for row, order in zip(CHOICES, orders)}'],
    },
}
OTHER_ANSWERS |= {
    "l04_q1_answer": {
        "correct": ['upstream_of = {"publish": ["clean"], "clean": ("extract",), "extract": [], "audit": []}',
                    'upstream_of = dict(extract=set(), audit=set(), clean={"extract"}, publish={"clean"})'],
        "wrong": [  # the order of the calls read as arrows
                  'upstream_of = {"extract": set(), "clean": {"extract"}, "audit": {"extract"},\n'
                  '               "publish": {"clean", "audit"}}',
                  # every task that a value passed through
                  'upstream_of = {"extract": set(), "clean": {"extract"}, "audit": set(),\n'
                  '               "publish": {"extract", "clean"}}'],
    },
    "l04_q2_answer": {
        "correct": ['price_instances = 3 * 2\ntask_instances_in_run = 1 + price_instances + 1'],
        "wrong": ['price_instances = 3\ntask_instances_in_run = 5',  # the two lists zipped
                  'price_instances = 6\ntask_instances_in_run = 3'],  # tasks counted, not instances
    },
}
OTHER_ANSWERS |= {
    "l09_q1_answer": {
        "correct": ['new_orders_events = len(["mark_updated"])\nnew_report_runs = new_orders_events'],
        "wrong": ['new_orders_events = 0\nnew_report_runs = 0',  # "the run failed, so nothing happened"
                  'new_orders_events = 2\nnew_report_runs = 2',  # both tasks declare the asset
                  'new_orders_events = 1\nnew_report_runs = 0'],
    },
    "l09_q2_answer": {
        "correct": ['runs_after_customers = ["l09_needs_either"]\nneeds_both_still_waits_for = "l09_orders"'],
        "wrong": [  # the orders updates made before l09_needs_both existed counted
                  'runs_after_customers = {"l09_needs_both", "l09_needs_either"}\n'
                  'needs_both_still_waits_for = None',
                  'runs_after_customers = {"l09_needs_either"}\nneeds_both_still_waits_for = '
                  '"l09_customers"'],
    },
}
OTHER_ANSWERS |= {
    "l10_q1_answer": {
        "correct": ['invoice_states = dict(report="success", load_invoice="skipped", '
                    'wait_for_invoice="skipped")'],
        "wrong": [  # soft_fail forgotten: a timed-out sensor fails
                  'invoice_states = {"wait_for_invoice": "failed", "load_invoice": "upstream_failed",\n'
                  '                  "report": "success"}',
                  # a skip that stops at the sensor
                  'invoice_states = {"wait_for_invoice": "skipped", "load_invoice": "success", "report": '
                  '"success"}'],
    },
    "l10_q2_answer": {
        "correct": ['publish_states = {task: "upstream_failed" for task in ("publish", "summary")}\n'
                    'publish_states |= {"page": "success", "done": "success"}'],
        "wrong": [  # none_failed_min_one_success read as "runs when one upstream succeeded"
                  'publish_states = {"publish": "upstream_failed", "page": "success", "summary": "success",\n'
                  '                  "done": "success"}',
                  'publish_states = {"publish": "failed", "page": "skipped", "summary": "skipped", "done": '
                  '"success"}'],
    },
}
OTHER_ANSWERS |= {
    "l00_q1_answer": {
        "correct": ['ui_url = f"http://127.0.0.1:{engine.read_state(LabPaths.default()).port}"\n'
                    'airflow_version = str(lab.client().get("/version")["version"])'],
        "wrong": ['ui_url = "http://localhost:8080"\nairflow_version = '
                  'lab.client().get("/version")["version"]',
                  'ui_url = engine.status().url\nairflow_version = "2.10.5"'],  # a tutorial's version
    },
    "l00_q2_answer": {
        "correct": ['password_file = LabPaths.default().home / '
                    '"simple_auth_manager_passwords.json.generated"\n'
                    'with password_file.open() as opened:\n    admin_password = json.load(opened)["admin"]'],
        "wrong": ['password_file = str(engine.status().password_file)\n'  # a str, not a Path
                  'admin_password = json.loads(Path(password_file).read_text())["admin"]',
                  'password_file = engine.status().password_file\nadmin_password = "admin"'],
    },
    "l06_q1_answer": {
        # The solution's first line takes the cell's indentation; the lines after it carry their own.
        "correct": ['extract, report = EmptyOperator(task_id="extract"), EmptyOperator(task_id="report")\n'
                    '    cleans = [EmptyOperator(task_id=f"clean_{region}") for region in ("eu", "us")]\n'
                    '    chain(extract, cleans, report)'],
        "wrong": ['extract = EmptyOperator(task_id="extract")\n'  # one line, not a fan-out
                  '    clean_us = EmptyOperator(task_id="clean_us")\n'
                  '    clean_eu = EmptyOperator(task_id="clean_eu")\n'
                  '    report = EmptyOperator(task_id="report")\n'
                  '    chain(extract, clean_us, clean_eu, report)',
                  'extract = EmptyOperator(task_id="extract")\n'  # the fan-in forgotten
                  '    clean_us = EmptyOperator(task_id="clean_us")\n'
                  '    clean_eu = EmptyOperator(task_id="clean_eu")\n'
                  '    report = EmptyOperator(task_id="report")\n'
                  '    chain(extract, [clean_us, clean_eu])'],
    },
    "l06_q2_answer": {
        "correct": ['import pandas as pd\n'
                    'frame = pd.DataFrame(list(tis.values()))\n'
                    'max_parallel = int(max(((frame["start_date"] <= moment) & (frame["end_date"] > '
                    'moment)).sum()\n'
                    '                       for moment in frame["start_date"]))'],
        "wrong": ['max_parallel = len(tis)',  # every task of the run
                  'max_parallel = 1'],  # "tasks run one after another"
    },
    "l07_q1_answer": {
        "correct": ['users_loaded = int(lab.xcom(etl_id, etl_run, "load"))\n'
                    'first_email = {user["user_id"]: user["email"] for user in lab.xcom(etl_id, etl_run, '
                    '"transform")}[1]'],
        "wrong": ['users_loaded = 0\nfirst_email = "ada@example.com"',
                  'users_loaded = len(USERS)\nfirst_email = USERS[0]["email"].upper()'],
    },
    "l07_q2_answer": {
        "correct": ['good_xcoms = set("ace")', 'good_xcoms = {"e", "c", "a"}'],
        "wrong": ['good_xcoms = set("abcde")', 'good_xcoms = {"a", "e"}'],  # an S3 key is a good XCom
    },
    "l14_q1_answer": {
        "correct": ['regions_edges = {("extract_all", "process_us"), ("extract_all", "process_eu"),\n'
                    '                 ("extract_all", "process_asia"), ("process_us", "merge_results"),\n'
                    '                 ("process_eu", "merge_results"), ("process_asia", "merge_results"),\n'
                    '                 ("merge_results", "send_report")}'],
        "wrong": ['regions_edges = {("extract_all", "process_us"), ("process_us", "process_eu"),\n'
                  '                 ("process_eu", "process_asia"), ("process_asia", "merge_results")}',
                  'regions_edges = {("extract_all", "process_us"), ("extract_all", "process_eu"),\n'
                  '                 ("extract_all", "process_asia"), ("process_us", "merge_results"),\n'
                  '                 ("process_eu", "merge_results"), ("merge_results", "send_report")}'],
    },
    "l14_q2_answer": {
        "correct": ['kept = []\n'
                    '    for row in rows:\n'
                    '        if int(row["age"]) > 18:\n'
                    '            kept.append(dict(row, id=int(row["id"]), age=int(row["age"])))\n'
                    '    return kept'],
        "wrong": ['return [{**row, "id": int(row["id"]), "age": int(row["age"])} for row in rows\n'
                  '            if int(row["age"]) >= 18]',
                  'return [{**row, "id": int(row["id"]), "age": int(row["age"])} for row in rows\n'
                  '            if row["age"] > "18"]'],  # text compared, not numbers
    },
}
# What a notebook's text says about the live lab, checked in its kernel after it ran.
CLAIMS: dict[str, list[str]] = {
    "02_architecture": [
        # The process table starts at `airflow standalone`, whose children are the four components.
        "top = processes.iloc[0]\n"
        "assert top['command'] == 'airflow standalone', processes\n"
        "started = sorted(processes.loc[processes['parent'] == top['pid'], 'command'])\n"
        "assert started[1:] == ['airflow dag-processor', 'airflow scheduler', 'airflow triggerer'], started\n"
        "assert started[0].startswith('airflow api_server -- host:127.0.0.1 port:'), started",
        # An unchanged DAG file is parsed again and again, min_file_process_interval (5 s) apart,
        # each time in a new process.
        "times = [t for t, _ in seen]\n"
        "assert len(seen) >= 3 and saved < times[0], (saved, seen)\n"
        "assert all(later - earlier >= 4.9 for earlier, later in zip(times, times[1:])), times\n"
        "assert len({pid for _, pid in seen}) == len(seen), seen",
    ],
    "03_first_dag": [
        # `from airflow import DAG` gives no warning; ruff flags the use of airflow.DAG as AIR311.
        "assert re.search(r':15:\\d+: AIR311 `airflow.DAG`', found.stdout), found.stdout",
    ],
    "04_taskflow": [
        # summarize ran as three mapped instances; load got their values in map_index order.
        "mapped = instances[instances['task_id'] == 'summarize']\n"
        "assert sorted(mapped['map_index']) == [0, 1, 2] and set(instances['state']) == {'success'}, "
        "instances\n"
        "assert [row['region'] for row in summaries] == ['asia', 'eu', 'us'], summaries\n"
        "assert loaded == [f'loading {row}' for row in summaries], loaded",
        # The classic DAG gives the same values; the API marks only summarize as mapped.
        "assert classic_summaries == summaries and lab.xcom(classic_id, classic_run, 'load') == 3\n"
        "assert [t['task_id'] for t in lab.client().tasks(taskflow_id) if t['is_mapped']] == ['summarize']",
    ],
    "05_operators": [
        # The tasks' environment has AIRFLOW_HOME, which append_env=True keeps and env= alone drops.
        "assert quiz_printed['env_added'].startswith('date=2023-10-15 airflow_home=/'), quiz_printed",
    ],
    "09_assets": [
        # The consumer ran because of the producer's event: asset_triggered, no logical date.
        "assert (report_run['run_type'], report_run['triggered_by'], report_run['logical_date'], "
        "report_run['state']) == ('asset_triggered', 'asset', None, 'success'), report_run\n"
        "first = events.iloc[0]\n"
        "assert (first['source'], first['extra'], first['runs_created']) == "
        "('l09_producer.extract_orders', {'rows': 3}, ['l09_report']), events\n"
        "assert \"l09_orders was updated by l09_producer.extract_orders with extra {'rows': 3}\" in "
        "report_log",
        # The & consumer holds the customers update and waits for orders.
        "assert queued_for_both == ['l09_customers'] and consumer_runs == "
        "{'l09_needs_both': 0, 'l09_needs_either': 1}, (queued_for_both, consumer_runs)",
    ],
    "10_sensors_trigger_rules": [
        # While no file was there: one sensor up_for_reschedule, the other deferred on the triggerer.
        "assert rescheduled['state'] == 'up_for_reschedule', rescheduled\n"
        "assert deferral['trigger'].endswith('FileTrigger'), deferral\n"
        "assert deferral['triggerer']['job_type'] == 'TriggererJob' "
        "and deferral['triggerer']['state'] == 'running', deferral",
        # Both runs succeeded once the file came; the deferred sensor's log has the triggerer's lines.
        "assert {mode: run['state'] for mode, run in sensor_results.items()} == "
        "{'reschedule': 'success', 'deferrable': 'success'}, sensor_results\n"
        "log = lab.task_log(sensor_dags['deferrable'], sensor_runs['deferrable'], 'wait_for_orders')\n"
        "assert 'Trigger fired event' in log and 'Pausing task as DEFERRED' in log, log[-2000:]\n"
        "log = lab.task_log(sensor_dags['reschedule'], sensor_runs['reschedule'], 'wait_for_orders')\n"
        "assert log.count('Poking for file') >= 2 and 'UP_FOR_RESCHEDULE' in log, log[-2000:]",
        # The trigger-rule run, as the text reads it.
        "assert rules_run['state'] == 'failed' and rules_states == "
        "{'fetch_a': 'success', 'fetch_b': 'failed', "
        "'merge': 'upstream_failed', 'alert': 'success', 'cleanup': 'success', 'choose': 'success', "
        "'fast_path': 'success', 'slow_path': 'skipped', 'join_default': 'skipped', 'join': 'success'}, "
        "rules_states",
    ],
    "08_scheduling": [
        # A run without a logical date: the date keys are absent from the context, not None.
        'absent = {key for key, value in no_date_context.items() if value == "(absent)"}\n'
        'assert {"logical_date", "ds", "data_interval_start", "data_interval_end"} <= absent, absent\n'
        'assert no_date_context["dag_run.logical_date"] == "None", no_date_context\n'
        'assert no_date_run["state"] == "failed", no_date_run\n'
        'assert "UndefinedError: \'ds\' is undefined" in echo_log, echo_log[-2000:]',
    ],
    "15_prefect_dagster": [
        # Prefect ran the three regions side by side; Dagster's materialize() one after another.
        "assert overlap and span < 2.5, (overlap, span)",
        "summaries = steps[steps['step'].str.endswith('_summary')].sort_values('start')\n"
        "ends = list(summaries['start'] + summaries['seconds'])\n"
        "assert all(start >= end - 0.05 for end, start in zip(ends, summaries['start'][1:])), summaries",
        # Both retried the extract once; the Dagster schedule is off, the Prefect deployment's is on.
        "assert extract.run_count == 2\n"
        "assert int(steps.loc[steps['step'] == 'sales_orders', 'tries'].iloc[0]) == 2, steps",
        "assert schedule['scheduleState']['status'] == 'STOPPED' and saved.paused is False",
    ],
}
# Lesson 11: backfill, re-runs and DAG versions, predicted and then run on the lab.
OTHER_ANSWERS |= {
    "l11_q1_answer": {
        "correct": ['backfill_dates = [f"2023-10-{day:02d}" for day in range(2, 9) if day != 4]',
                    'backfill_dates = {day.to_date_string() for day in pendulum.interval(\n'
                    '    pendulum.date(2023, 10, 2), pendulum.date(2023, 10, 8)).range("days")} - '
                    '{"2023-10-04"}'],
        "wrong": ['backfill_dates = [f"2023-10-{day:02d}" for day in range(2, 9)]',  # 4 October again
                  'backfill_dates = ["2023-10-02", "2023-10-03", "2023-10-05", "2023-10-06", "2023-10-07"]'],
    },
    "l11_q2_answer": {
        "correct": ['versions_after_edits = 1 + 1\nnew_version_made_by = "RETRIES".lower()'],
        "wrong": ['versions_after_edits = 3\nnew_version_made_by = "both"',  # every save a version
                  # a local folder has no versions
                  'versions_after_edits = 1\nnew_version_made_by = "neither"',
                  'versions_after_edits = 2\nnew_version_made_by = "print"'],
    },
    "l11_q3_answer": {
        "correct": ['rows_after_rerun = dict(l11_sales_appended=2 * 7 * 3, l11_sales=7 * 3)'],
        "wrong": ['rows_after_rerun = {"l11_sales": 21, "l11_sales_appended": 21}',  # appending is safe
                  'rows_after_rerun = {"l11_sales": 42, "l11_sales_appended": 42}'],  # both double
    },
}
CLAIMS |= {
    "11_backfill_versioning": [
        # Today's run, which catchup=False allows when the DAG is unpaused, wrote today's partition.
        "today = pendulum.today('UTC').to_date_string()\n"
        "runs = lab.client().runs(dag_id)\n"
        "assert any(r['run_type'] == 'scheduled' and r['logical_date'][:10] == today for r in runs), runs\n"
        "assert int(lab.warehouse(f\"SELECT COUNT(*) AS n FROM l11_sales WHERE ds = '{today}'\")['n'][0]) == "
        "3",
        # The backfill: `backfill` runs at midnight, Airflow's default of 10 runs at once, side by side.
        "assert backfill['max_active_runs'] == 10 and backfill['reprocess_behavior'] == 'none', backfill\n"
        "assert all(r['run_type'] == 'backfill' and r['dag_run_id'].startswith('backfill__')\n"
        "           and r['logical_date'].endswith('T00:00:00Z') for r in backfill_runs), backfill_runs\n"
        "spans = sorted((ti['start_date'], ti['end_date'], r['dag_run_id']) for r in backfill_runs\n"
        "               for ti in lab.client().task_instances(dag_id, r['dag_run_id']))\n"
        "assert any(b[0] < a[1] and a[2] != b[2] for a, b in zip(spans, spans[1:])), spans",
        # Versions come from the local bundle `lessons`, which has no versions of its own; the Code
        # tab shows the print line; the re-run runs list versions 1 and 2, and their logs the print.
        "versions = lab.dag_versions(dag_id)\n"
        "assert {(v['bundle_name'], v['bundle_version']) for v in versions} == {('lessons', None)}, "
        "versions\n"
        "assert 'rows for {ds}' in lab.client().get(f'/dagSources/{dag_id}')['content']\n"
        "assert all([v['version_number'] for v in r['dag_versions']] == [1, 2] for r in rerun_runs), "
        "rerun_runs\n"
        "assert len(rerun_runs) == 7 and all(r['state'] == 'success' for r in rerun_runs), rerun_runs\n"
        "assert any(' rows for 2023-10-04' in line for line in wednesday_log.splitlines()), "
        "wednesday_log[-2000:]",
    ],
}
# Lesson 12: what Airflow masks, and which of a DAG project's tests fail, predicted and then run.
OTHER_ANSWERS |= {
    "l12_q1_answer": {
        "correct": ['masked_in_log = dict.fromkeys(["api_key", "password"], True) | {"regions": False}\n'
                    'xcom_password = "pw-" + "4c1e55a2"'],
        "wrong": ['masked_in_log = {"regions": True, "api_key": True, "password": True}\n'  # every Variable
                  'xcom_password = "pw-4c1e55a2"',
                  # Connections only
                  'masked_in_log = {"regions": False, "api_key": False, "password": True}\n'
                  'xcom_password = "pw-4c1e55a2"',
                  'masked_in_log = {"regions": False, "api_key": True, "password": True}\n'
                  'xcom_password = "***"'],  # masking does not reach XCom
    },
    "l12_q2_answer": {
        "correct": ['failing_tests = ["test_expected_dag_ids", "test_no_import_errors"]'],
        "wrong": ['failing_tests = {"test_no_import_errors", "test_expected_dag_ids", '
                  '"test_every_dag_has_tags",\n'
                  '                 "test_every_task_retries"}',  # the untagged DAG never loaded
                  'failing_tests = {"test_no_import_errors"}'],
    },
    "l12_q3_answer": {
        "correct": ['failing_after_fix = ("test_every_task_retries", "test_every_dag_has_tags")'],
        "wrong": ['failing_after_fix = {"test_every_dag_has_tags"}',  # retries default to 0
                  'failing_after_fix = set()'],
    },
}
CLAIMS |= {
    "12_variables_connections_testing": [
        # warehouse comes from the secrets backend's file, not the metadata database; no Fernet key.
        "assert lab_connections['warehouse']['conn_type'] == 'sqlite' and 'warehouse' not in in_database\n"
        "assert 'LocalFilesystemBackend' in paths.config_file.read_text()\n"
        "mine = [v for v in lab.client().get('/variables')['variables'] if v['key'].startswith('l12_')]\n"
        "assert len(mine) == 2 and not any(v['is_encrypted'] for v in mine), mine",
        # The task read all four; the UI's Code tab shows the DAG file as it is.
        "assert report['state'] == 'success' and len(printed) == 4, printed\n"
        "assert \"regions: ['eu', 'us']\" in printed[0] and 'warehouse: sqlite ' in printed[3], printed\n"
        "stored = lab.client().get(f'/dagSources/{report_id}')['content']\n"
        "assert stored == (DAGS / 'l12_partner_report.py').read_text()",
        # The unit test and the whole run passed; Airflow 3.3's DagBag has no include_examples.
        "assert {'test_clean_converts_amounts_and_drops_empty_ones', 'test_a_whole_run_succeeds'} <= "
        "first_run.passed\n"
        "from airflow.models import DagBag\n"
        "try:\n"
        "    DagBag(dag_folder=PROJECT / 'dags', include_examples=False)\n"
        "except TypeError as error:\n"
        "    assert 'include_examples' in str(error)\n"
        "else:\n"
        "    raise AssertionError('DagBag accepted include_examples')",
    ],
}
# Notebooks that also run on a lab whose processes are spawned (their processes differ there).
SPAWNED = {"02_architecture"}
# Airflow features that a cross-reference ("... (notebook 08)") may send the reader to, and how
# the code of the notebook it names shows the feature.
FEATURES = {"asset": r"\bAsset\(", "timetable": r"Timetable\(", "sensor": r"Sensor\(",
            "deferrable": r"deferrable=True", "trigger rule": r"trigger_rule=", "backfill": r"backfill",
            "xcom": r"xcom", "param": r"params=", "email": r"SmtpNotifier|EmailOperator"}
# A table row of Airflow 2 imports: `from airflow... import ...` | replacement | what happens.
OLD_IMPORT_ROW = re.compile(r"^>?\s*\|([^|]*`from airflow[^|]*)\|[^|]*\|([^|]*)\|", re.M)
IMPORT = re.compile(r"`(from airflow[\w.]* import [\w, ]+)`")
# Notebooks with such a table, besides the README.
IMPORT_TABLES = ("03_first_dag", "04_taskflow", "09_assets", "10_sensors_trigger_rules")


def by_slug(lesson: manifest.Lesson) -> str:
    return lesson.slug


def lesson_named(slug: str) -> manifest.Lesson:
    return next(lesson for lesson in LESSONS if lesson.slug == slug)


def read(lesson: manifest.Lesson) -> nbformat.NotebookNode:
    return nbformat.read(lesson.notebook, as_version=4)


def nbgrader(cell: nbformat.NotebookNode) -> dict:
    return cell.metadata.get("nbgrader", {})


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


# --- fast: the notebooks as files --------------------------------------------------------------

def test_every_lesson_has_its_notebook_and_there_are_no_others():
    expected = {lesson.notebook.name for lesson in LESSONS}
    found = {path.name for path in NOTEBOOKS.glob("*.ipynb")}
    assert found == expected, \
        f"missing: {sorted(expected - found)}, not in course.yml: {sorted(found - expected)}"


@pytest.mark.parametrize("lesson", LESSONS, ids=by_slug)
def test_notebook_opens_with_its_title_and_objectives(lesson):
    first = read(lesson).cells[0]
    assert first.cell_type == "markdown", f"{lesson.notebook.name} starts with a {first.cell_type} cell"
    head = first.source
    assert head.startswith("# ") and lesson.title in head.splitlines()[0], head.splitlines()[0]
    assert "**Objectives**" in head
    missing = [objective.text for objective in lesson.objectives if f"- {objective.text}" not in head]
    assert not missing, f"{lesson.notebook.name} does not list the objectives {missing} of course.yml"


@pytest.mark.parametrize("lesson", LESSONS, ids=by_slug)
def test_a_notebook_that_runs_dags_shows_a_picture_of_a_run(lesson):
    """A run is shown as a graph with its states, a Gantt chart or a timeline of next runs."""
    cells = code_cells(read(lesson))
    if not any(RUNS_A_DAG.search(cell.source) for cell in cells):
        return
    drawn = [cell.source.strip().splitlines()[-1] for cell in cells
             if cell.source.strip() and PICTURES_A_RUN.search(cell.source.strip().splitlines()[-1])]
    assert drawn, (f"{lesson.notebook.name} runs DAGs but shows no picture of a run: end a cell with "
                   "display.run_graph(dag_id, run_id), display.gantt(dag_id, run_id) or "
                   "display.next_runs_table(schedule)")


@pytest.mark.parametrize("lesson", LESSONS, ids=by_slug)
def test_notebook_is_stored_without_outputs(lesson):
    dirty = [i for i, cell in enumerate(read(lesson).cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, f"{lesson.notebook.name}: cells {dirty} have outputs; clear them before saving"


@pytest.mark.parametrize("lesson", LESSONS, ids=by_slug)
def test_notebook_is_valid_and_every_code_cell_is_python(lesson):
    nb = read(lesson)
    nbformat.validate(nb)
    transform = TransformerManager().transform_cell
    for i, cell in enumerate(code_cells(nb)):
        # IPython runs a top-level `await` (Prefect's server calls, in a notebook).
        compile(transform(cell.source), f"{lesson.notebook.name} cell {i}", "exec",
                flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        if cell.source.startswith("%%writefile"):  # the cell's body is a DAG file: it must be Python too
            compile(cell.source.split("\n", 1)[1], f"{lesson.notebook.name} cell {i} (file)", "exec")


@pytest.mark.parametrize("lesson", LESSONS, ids=by_slug)
def test_notebook_ends_with_nbgrader_questions(lesson):
    nb = read(lesson)
    graded = [cell for cell in nb.cells if nbgrader(cell)]
    solutions = [cell for cell in graded if nbgrader(cell).get("solution")]
    tests = [cell for cell in graded if nbgrader(cell).get("grade")]
    assert solutions, "no nbgrader solution cell"
    assert tests, "no autograded test cell"
    for cell in solutions:
        meta = nbgrader(cell)
        assert {k: meta.get(k) for k in SOLUTION_KEYS} == SOLUTION_KEYS, meta
        assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source, meta["grade_id"]
    for cell in tests:
        meta = nbgrader(cell)
        assert {k: meta.get(k) for k in TEST_KEYS} == TEST_KEYS, meta
        assert meta.get("points", 0) > 0, meta
        assert "assert" in cell.source, f"{meta['grade_id']} tests nothing"
    assert any("### BEGIN HIDDEN TESTS" in cell.source for cell in tests), "no hidden tests"
    ids = [nbgrader(cell)["grade_id"] for cell in graded]
    assert len(ids) == len(set(ids)), f"duplicate grade_id in {ids}"
    heading = max(i for i, cell in enumerate(nb.cells)
                  if cell.cell_type == "markdown" and "## Check your understanding" in cell.source)
    first_graded = min(i for i, cell in enumerate(nb.cells) if nbgrader(cell))
    assert heading < first_graded, "the questions come after the '## Check your understanding' heading"
    assert len(solutions) <= 3, "1-3 questions per notebook"


@pytest.mark.parametrize("lesson", LESSONS, ids=by_slug)
def test_nbgrader_can_make_the_student_version(lesson):
    nb, resources = ClearSolutions().preprocess(read(lesson), {"language": "python"})
    nb, _ = ClearHiddenTests().preprocess(nb, resources)
    text = "\n".join(cell.source for cell in nb.cells)
    assert "### BEGIN SOLUTION" not in text and "### BEGIN HIDDEN TESTS" not in text
    assert "raise NotImplementedError()" in text
    for cell in nb.cells:
        if nbgrader(cell).get("solution"):
            compile(cell.source, nbgrader(cell)["grade_id"], "exec")


@pytest.mark.parametrize("lesson", LESSONS, ids=by_slug)
def test_every_assert_of_a_question_says_why_it_failed(lesson):
    """A learner whose answer fails reads the assert's message: a bare assert says nothing."""
    for cell in read(lesson).cells:
        if nbgrader(cell).get("grade"):
            tree = ast.parse(TransformerManager().transform_cell(cell.source))
            bare = [ast.unparse(node) for node in ast.walk(tree)
                    if isinstance(node, ast.Assert) and node.msg is None]
            grade_id = nbgrader(cell)["grade_id"]
            assert not bare, f"{lesson.notebook.name} {grade_id}: give these a message: {bare}"


def test_lesson_dag_ids_carry_their_lesson_prefix_and_never_take_an_exercise_id():
    exercise_ids = {m for path in (REPO_ROOT / "exercises").glob("*/*.py")
                    for m in EXERCISE_DAG_ID.findall(path.read_text())}
    seen: dict[str, str] = {}
    for lesson in LESSONS:
        name, prefix = lesson.notebook.name, f"l{lesson.slug[:2]}_"
        for cell in code_cells(read(lesson)):
            for explicit, decorated in NOTEBOOK_DAG_ID.findall(cell.source):
                dag_id = explicit or decorated
                assert dag_id.startswith(prefix), f"{name}: DAG id {dag_id!r} should start with {prefix!r}"
                assert dag_id not in exercise_ids, f"{name}: {dag_id!r} is an exercise's DAG id"
                assert seen.setdefault(dag_id, lesson.slug) == lesson.slug, f"{dag_id!r} is in two notebooks"
    assert len(seen) >= 10, f"found only {sorted(seen)}: is the DAG id pattern still right?"



def test_lesson_dags_are_tagged_with_their_own_lesson():
    """The UI's tag filter finds a lesson's DAGs under lesson-NN, NN the notebook's number."""
    tagged = 0
    for lesson in LESSONS:
        for cell in code_cells(read(lesson)):
            for number in re.findall(r"""["']lesson-(\d\d)["']""", cell.source):
                tagged += 1
                assert number == lesson.slug[:2], (
                    f"{lesson.notebook.name} tags a DAG lesson-{number}; "
                    f"its lesson's tag is lesson-{lesson.slug[:2]}")
    assert tagged >= 10, "no lesson tags found: is the pattern still right?"

def test_exercises_notebook_names_only_exercises_of_the_manifest():
    known = {exercise for lesson in LESSONS for exercise in lesson.exercises}
    exercises_lesson = lesson_named("14_exercises")
    text = "\n".join(cell.source for cell in read(exercises_lesson).cells)
    named = set(re.findall(r"\bex\d\d_[a-z0-9_]+", text))
    assert named, "the exercises notebook names no exercise"
    assert named <= known, f"not in course.yml: {sorted(named - known)}"
    assert set(exercises_lesson.exercises) <= named


def test_the_lesson_checklist_sends_each_exercise_to_the_notebook_that_teaches_it():
    """A row "| what | notebooks | exercises |" of the exercises notebook's checklist table lists the
    notebook of each exercise it names (the lesson course.yml gives that exercise), so that the
    table stays right when lessons are numbered again."""
    taught_in = {exercise: lesson.slug[:2] for lesson in LESSONS for exercise in lesson.exercises
                 if lesson.slug != "14_exercises"}
    text = "\n".join(cell.source for cell in read(lesson_named("14_exercises")).cells)
    rows = re.findall(r"^\|([^|\n]+)\|\s*([\d, ]+?)\s*\|([^|\n]*)\|$", text, re.M)
    assert len(rows) >= 6, "the checklist table was not found: is the pattern still right?"
    for what, notebooks, exercises in rows:
        numbers = set(re.findall(r"\d\d", notebooks))
        assert numbers, what
        for exercise in re.findall(r"\bex\d\d_[a-z0-9_]+", exercises):
            if exercise in taught_in:
                assert taught_in[exercise] in numbers, (
                    f"the row '{what.strip()}' names {exercise}, taught in notebook {taught_in[exercise]}, "
                    f"but lists notebooks {notebooks.strip()}")


@pytest.mark.parametrize("lesson", LESSONS, ids=by_slug)
def test_notebook_names_a_kernel_that_make_setup_registers(lesson):
    kernel = read(lesson).metadata.kernelspec.name
    installed = REPO_ROOT / ".venv" / "share" / "jupyter" / "kernels" / kernel / "kernel.json"
    assert kernel == AIRFLOW_KERNEL or installed.is_file(), f"{kernel}: no {installed}; run `make setup`"


def test_other_answers_name_graded_questions_and_cover_whole_notebooks():
    questions = {lesson.slug: [nbgrader(cell)["grade_id"] for cell in read(lesson).cells
                               if nbgrader(cell).get("solution")] for lesson in LESSONS}
    known = {grade_id for ids in questions.values() for grade_id in ids}
    assert set(OTHER_ANSWERS) <= known, f"not graded questions: {sorted(set(OTHER_ANSWERS) - known)}"
    cells = {nbgrader(cell)["grade_id"]: cell.source for lesson in LESSONS for cell in read(lesson).cells
             if nbgrader(cell).get("solution")}
    for grade_id, answers in OTHER_ANSWERS.items():
        assert answers["correct"] and answers["wrong"], f"{grade_id}: give correct and wrong answers"
        solution = SOLUTION.search(cells[grade_id])
        for answer in answers["correct"] + answers["wrong"]:  # as it will stand in the cell
            cell = solution.string[:solution.start()] + answer + solution.string[solution.end():]
            compile(TransformerManager().transform_cell(cell), grade_id, "exec")
    for slug, ids in questions.items():  # every graded question, in every notebook
        missing = [grade_id for grade_id in ids if grade_id not in OTHER_ANSWERS]
        assert not missing, f"{slug}: no other answers for {missing}"
    assert set(CLAIMS) | SPAWNED <= set(questions)


def test_cross_references_send_the_reader_to_notebooks_that_show_the_feature():
    code = {lesson.slug[:2]: "\n".join(cell.source for cell in code_cells(read(lesson)))
            for lesson in LESSONS}
    checked = 0
    for lesson in LESSONS:
        for cell in read(lesson).cells:
            if cell.cell_type != "markdown":
                continue
            for line in cell.source.splitlines():
                for ref in re.finditer(r"\bnotebooks? (\d\d)\b", line, re.I):
                    assert ref.group(1) in code, (
                        f"{lesson.notebook.name} sends the reader to notebook "
                        f"{ref.group(1)}, which course.yml does not list: {line.strip()}")
                    # The clause that points there: from the table cell's or sentence's start.
                    clause = re.split(r"\||\. ", line[:ref.start()])[-1][-100:].lower()
                    for feature in (f for f in FEATURES if f in clause):
                        checked += 1
                        assert re.search(FEATURES[feature], code[ref.group(1)], re.I), \
                            f"{lesson.notebook.name} sends the reader to notebook {ref.group(1)} for " \
                            f"{feature}s, which it does not show: {line.strip()}"
    assert checked >= 3, "no cross-reference names a feature: is the pattern still right?"


def test_tables_of_airflow_2_imports_say_what_airflow_3_does():
    """Each "`from airflow...` | ... | works, warns or does not import" row, against this Airflow."""
    sources = [("README.md", README.read_text())] + [
        (f"notebook {slug[:2]}", "\n".join(cell.source for cell in read(lesson_named(slug)).cells))
        for slug in IMPORT_TABLES if any(lesson.slug == slug for lesson in LESSONS)]
    rows = [(statement, outcome, source) for source, text in sources
            for imports, outcome in OLD_IMPORT_ROW.findall(text) for statement in IMPORT.findall(imports)]
    assert len(rows) >= 5, rows
    probe = """\
import json, sys, warnings
import airflow
seen = {}
for statement in json.loads(sys.argv[1]):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            exec(statement, {})
        except ImportError as error:
            seen[statement] = type(error).__name__
            continue
    seen[statement] = [w.category.__name__ for w in caught
                       if issubclass(w.category, (DeprecationWarning, FutureWarning))]
print(json.dumps(seen))
"""
    statements = sorted({statement for statement, _, _ in rows})
    done = subprocess.run([sys.executable, "-c", probe, json.dumps(statements)], capture_output=True,
                          text=True, timeout=300, env=engine.airflow_env(LabPaths.default()))
    assert done.returncode == 0, done.stderr[-2000:]
    warned = json.loads(done.stdout.strip().splitlines()[-1])
    for statement, outcome, source in rows:
        if isinstance(warned[statement], str):  # the import failed
            assert "does not import" in outcome, \
                f"{source} says `{statement}` {outcome.strip()!r}; Airflow 3 raised {warned[statement]}"
            continue
        assert "does not import" not in outcome, f"{source} says `{statement}` fails; it imports"
        says_warning = "deprecation warning" in outcome
        says_none = "no warning" in outcome
        assert says_warning != says_none, f"{source}: say whether `{statement}` warns: {outcome}"
        assert says_warning == bool(warned[statement]), (
            f"{source} says `{statement}` {outcome.strip()!r}; Airflow 3 warned "
            f"{warned[statement] or 'nothing'}")


# --- slow: run every notebook against one fresh lab ----------------------------------------------

def spawning_config(write_config):
    """``engine.write_config``, plus the start method macOS has: processes spawned, not forked."""
    def write(paths: LabPaths, *args) -> None:
        write_config(paths, *args)
        text = paths.config_file.read_text()
        paths.config_file.write_text(text.replace("[core]\n", "[core]\nmp_start_method = spawn\n", 1))
    return write


def start_notebook_lab(tmp_path_factory: pytest.TempPathFactory, mode: str) -> Iterator[LabPaths]:
    """A lab of its own in a temporary Airflow home, stopped (and checked) at the end.

    ``mode`` "fork" (the default on Linux) or "spawn": Airflow spawning its worker processes, as
    on macOS.
    """
    paths = LabPaths.default(tmp_path_factory.mktemp(f"notebook-lab-{mode}"))
    with pytest.MonkeyPatch.context() as patch:
        if mode == "spawn":
            patch.setattr(engine, "write_config", spawning_config(engine.write_config))
        # Away from 8080 and up, where a learner's own lab (or another test run) listens.
        engine.start(paths, port=engine.free_port(LAB_PORT), progress=lambda *_: None)
    try:
        # The api-server on our port must be ours: a lab started at the same moment elsewhere
        # could have won the port, and would then answer the health check for us.
        client = lab.Client(paths)
        client.token()
        client.close()
        yield paths
    finally:
        orchestrators.stop(paths=paths, quiet=True)
        engine.stop(paths, quiet=True)
    assert not engine.status(paths).running, "the lab still answers after engine.stop"
    assert not orchestrators.processes(paths), "Prefect or Dagster processes outlived orchestrators.stop"


@pytest.fixture(scope="module")
def forking_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabPaths]:
    """One lab for every notebook, in the lessons' order, as a learner goes through them."""
    yield from start_notebook_lab(tmp_path_factory, "fork")


@pytest.fixture
def spawning_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabPaths]:
    """A lab for one notebook, stopped before the next test starts its own."""
    yield from start_notebook_lab(tmp_path_factory, "spawn")


def kernel_env(paths: LabPaths) -> dict[str, str]:
    """What `make lab` gives JupyterLab, so its kernels: the lab's Airflow home and the repo on sys.path."""
    env = engine.airflow_env(paths)
    env[HOME_ENV] = str(paths.home)
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    env.update(ORCHESTRATOR_PORTS)
    return env


def error_outputs(nb: nbformat.NotebookNode) -> list[str]:
    return [f"{out.get('ename')}: {out.get('evalue')}" for cell in code_cells(nb)
            for out in cell.outputs if out.output_type == "error"]


def text_of(cell: nbformat.NotebookNode) -> str:
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif "data" in out:
            parts.append(out.data.get("text/plain", ""))
    return "".join(parts)


def run_scratch(client: NotebookClient, source: str) -> str | None:
    """Run ``source`` in the notebook's kernel; the error it raised as "Name: message", or None."""
    client.nb.cells.append(nbformat.v4.new_code_cell(source))
    try:
        client.execute_cell(client.nb.cells[-1], len(client.nb.cells) - 1, store_history=False)
    except CellExecutionError as error:
        return f"{error.ename}: {error.evalue}"
    finally:
        client.nb.cells.pop()
    return None


def answers_and_claims_problems(client: NotebookClient, lesson: manifest.Lesson) -> list[str]:
    """Other answers in place of the solutions, then the questions' tests; the notebook's claims."""
    graded = {nbgrader(cell)["grade_id"]: cell for cell in client.nb.cells if nbgrader(cell)}
    problems = []
    for grade_id, answers in OTHER_ANSWERS.items():
        if grade_id not in graded:
            continue
        tests = graded[grade_id.removesuffix("_answer") + "_tests"].source
        solution = SOLUTION.search(graded[grade_id].source)
        tries = [(True, answer) for answer in answers["correct"]]
        tries += [(False, answer) for answer in answers["wrong"]]
        for correct, answer in tries:
            cell = solution.string[:solution.start()] + answer + solution.string[solution.end():]
            error = run_scratch(client, cell) or run_scratch(client, tests)
            if correct and error:
                problems.append(f"{grade_id}: the correct answer\n{answer}\nfails: {error}")
            elif not correct and not (error or "").startswith("AssertionError"):
                problems.append(f"{grade_id}: the wrong answer\n{answer}\n"
                                f"{'passes' if error is None else 'raises ' + error}")
            elif not correct and not error.removeprefix("AssertionError:").strip():
                problems.append(f"{grade_id}: the wrong answer\n{answer}\nfails without saying why: "
                                "give the assert a message")
    for claim in CLAIMS.get(lesson.slug, []):
        if error := run_scratch(client, claim):
            problems.append(f"the notebook says what the lab does not:\n{claim}\n{error}")
    return problems


# The spawned runs first, each on a lab of its own, so that no two labs run at once.
LAB_RUNS = [pytest.param(lesson, "spawn", id=f"{lesson.slug}-spawned")
            for lesson in LESSONS if lesson.slug in SPAWNED] + [
    pytest.param(lesson, "fork", id=lesson.slug) for lesson in LESSONS]


@pytest.mark.slow
@pytest.mark.parametrize(("lesson", "mode"), LAB_RUNS)
def test_notebook_runs_top_to_bottom(lesson, mode, request):
    notebook_lab = request.getfixturevalue(f"{mode}ing_lab")
    state = engine.read_state(notebook_lab)
    nb = read(lesson)
    kernel = nb.metadata.kernelspec.name
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=kernel,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    started = time.monotonic()
    with client.setup_kernel(env=kernel_env(notebook_lab)):
        try:
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
        except CellExecutionError as error:
            pytest.fail(f"{lesson.notebook.name}: a cell raised\n{str(error)[-4000:]}", pytrace=False)
        took = time.monotonic() - started
        problems = answers_and_claims_problems(client, lesson)
    assert not problems, "\n\n".join(problems)

    cells = code_cells(nb)
    assert all(cell.execution_count for cell in cells), "some cells did not run"
    assert not error_outputs(nb), error_outputs(nb)
    shown = "".join(text_of(cell) + "".join(out.get("data", {}).get("text/markdown", "")
                                             for out in cell.outputs) for cell in cells)
    assert "could not grade" not in shown, "the exercises notebook failed to run the grader"
    if lesson.slug == "14_exercises":  # the starters, graded: each has a verdict with points
        assert shown.count("NOT YET") >= 8, shown[-3000:]
    assert engine.read_state(notebook_lab) == state, "a notebook restarted the lab"
    if kernel != AIRFLOW_KERNEL:  # Prefect and Dagster: both wrote the lab's warehouse, both UIs saw it
        with sqlite3.connect(notebook_lab.warehouse) as warehouse:
            for table in ("l15_prefect_regions", "l15_dagster_regions"):
                rows = warehouse.execute(f"SELECT region, orders FROM {table} ORDER BY region").fetchall()
                assert rows == [("asia", 4), ("eu", 4), ("us", 4)], (table, rows)
        assert set(orchestrators.running(notebook_lab)) == {"prefect", "dagster"}, shown[-2000:]
        assert "the UI shows the run as SUCCESS" in shown, shown[-2000:]
        print(f"{lesson.notebook.name} ran in {took:.1f} s")
        return
    # The notebook found the test's lab (COURSE_AIRFLOW_HOME reached the kernel) and did not restart it.
    setup = text_of(cells[0])
    assert f"running at {state.url}" in setup and str(notebook_lab.home) in setup, setup
    assert "Starting Airflow" not in setup, setup
    # Pictures from course.display were drawn, not just printed as <Figure ...>.
    for cell in cells:
        if DRAWS_FIGURE.search(cell.source.strip().splitlines()[-1]):
            assert any("image/png" in out.get("data", {}) for out in cell.outputs), \
                f"{lesson.notebook.name}: no picture from\n{cell.source}"
    print(f"{lesson.notebook.name} ran in {took:.1f} s")
