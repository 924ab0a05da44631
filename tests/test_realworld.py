"""DAG files as learners find them: copied from tutorials, books and Airflow's own examples.

tests/realworld/ holds Airflow 2-style files in the shapes tutorials use; each one's first message
(the first check that did not pass) must name the cause and its Airflow 3 replacement. Airflow's own
example DAGs, as installed, are graded too: none may crash a check, take longer than its deadline or
leave a process or file of the sandbox behind.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

import airflow
from autograder.config import GradeConfig
from autograder.exercises import find
from autograder.grade import grade
from autograder.model import CheckResult, Report
from autograder.runner import WarmServer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "realworld"
CONFIG = GradeConfig.from_env(run_timeout=20.0, import_timeout=10.0)
# Some examples wait on purpose (sensors, a virtualenv to build): their runs are cut short, since
# what is asked of them is a report in time, not a verdict.
EXAMPLE_CONFIG = GradeConfig.from_env(run_timeout=5.0, import_timeout=10.0)
SANDBOX_UIDS = 100_000  # the sandbox runs learner code as a throwaway uid at or above this

EMPTY = "`from airflow.providers.standard.operators.empty import EmptyOperator`"
NOT_IN_COURSE = "is not part of the course environment"
# file: (exercise, the first check that does not pass, what its message must say)
FIRST_MESSAGE = {
    "days_ago": ("ex03", "import.loads",
                 ["`days_ago()` was removed in Airflow 3", 'pendulum.datetime(2023, 10, 1, tz="UTC")']),
    "dummy_operator": ("ex03", "import.loads", ["'airflow.operators.dummy'", "EmptyOperator", EMPTY]),
    "dummy_operator_module": ("ex03", "import.loads", ["'airflow.operators.dummy_operator'", EMPTY]),
    "contrib": ("ex03", "import.loads", ["`airflow.contrib` was removed in Airflow 3",
                                         "`airflow.providers.<name>`"]),
    "postgres_hook": ("ex01", "import.loads", [
        "`airflow.hooks.postgres_hook` was removed",
        "`PostgresHook` from `airflow.providers.postgres.hooks.postgres`"]),
    "weekday": ("ex07", "import.loads", ["`airflow.utils.weekday`",
                                         "`WeekDay` from `airflow.providers.standard.utils.weekday`"]),
    "schedule_interval": ("ex03", "import.loads", ["'schedule_interval'", "write `schedule=` instead"]),
    "bash_operator_module": ("ex03", "import.loads", [
        "`airflow.operators.bash_operator.BashOperator` moved to the standard provider in Airflow 3",
        "use `BashOperator` from `airflow.providers.standard.operators.bash` instead."]),
    "airflow2_tutorial": ("ex03", "import.loads", [
        "'airflow.operators.python_operator'",
        "use `PythonOperator` from `airflow.providers.standard.operators.python` instead.",
        'The file has 4 more Airflow 2 idioms, listed under "Airflow 3 idioms (advice, no points)" '
        "below: fix them too."]),
    "helper_package": ("ex01", "import.loads", ["No module named 'dags'", "Only this one file is graded",
                                                "put the helper code you need into the DAG file"]),
    "helper_module": ("ex01", "import.loads", ["No module named 'helpers'", "Only this one file is graded"]),
    "docker_provider": ("ex01", "import.loads", [f"`apache-airflow-providers-docker`) {NOT_IN_COURSE}",
                                                 "exercises/ex01_daily_etl/dag.py"]),
    "amazon_provider": ("ex01", "import.loads", [f"`apache-airflow-providers-amazon`) {NOT_IN_COURSE}"]),
    "geopandas_package": ("ex02", "import.loads", [f"`geopandas` {NOT_IN_COURSE}",
                                                   "exercises/ex02_parallel_regions/dag.py"]),
    "several_dags": ("ex03", "import.dag_id", ["`example_bash_daily`, `example_bash_hourly`",
                                               "none has dag_id `hello_world`", 'dag_id="hello_world"']),
    "foreign_dag_id": ("ex03", "import.dag_id", ["Your DAG has dag_id `tutorial`",
                                                 'set `dag_id="hello_world"`']),
    "same_dag_id_twice": ("ex03", "import.dag_id", ["defines 2 DAGs with dag_id `hello_world`",
                                                    "Give each DAG a dag_id of its own"]),
    "upper_case_task_ids": ("ex03", "structure.tasks", ["unexpected task(s) `PRINT_DATE`, `SAY_HELLO`"]),
    "duplicate_task_id": ("ex03", "import.loads", ["line 10", "Two tasks of the DAG have task_id "
                                                   "`say_hello`"]),
    "cycle": ("ex03", "structure.acyclic", ["Cycle: print_date -> sleep_5_seconds -> say_hello",
                                            "remove `sleep_5_seconds >> say_hello`"]),
    "no_email_task": ("ex01", "structure.tasks", ["Missing task(s) `send_email`"]),
    # A helper started in a session of its own, and a file in /tmp: the run is not disturbed
    # and neither outlives the grading (see test_nothing_of_the_examples_is_left_behind).
    "background_process": ("ex03", None, []),
}
SITE = Path(airflow.__file__).parent
EXAMPLES = sorted([*SITE.glob("example_dags/*.py"), *SITE.glob("providers/standard/example_dags/*.py")])
EXAMPLES = [p for p in EXAMPLES if p.name != "__init__.py"]


def _sandbox_leftovers(before: set[Path] = frozenset()) -> list[str]:
    """This checkout's sandboxed processes still running, and files a sandbox left in the
    machine's temporary folders (other checkouts on the machine may be grading too)."""
    found = [f"process {p.pid} {p.info['cmdline']}"
             for p in psutil.process_iter(["uids", "cmdline"])
             if p.info["uids"] and p.info["uids"].real >= SANDBOX_UIDS
             and str(ROOT) in " ".join(p.info["cmdline"] or ())]
    for folder in (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")):
        for entry in folder.iterdir() if folder.is_dir() else ():
            try:
                if entry not in before and entry.lstat().st_uid >= SANDBOX_UIDS:
                    found.append(f"file {entry}")
            except OSError:
                pass
    return found


def _temporary_files() -> set[Path]:
    return {e for folder in (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")) if folder.is_dir()
            for e in folder.iterdir()}


BEFORE: set[Path] = set()


@pytest.fixture(scope="module")
def reports() -> dict[str, Report]:
    """The corpus and the example DAGs, graded by one warm grader, two at a time."""
    BEFORE.update(_temporary_files())
    jobs = {name: (ex, CORPUS / f"{name}.py", CONFIG) for name, (ex, _, _) in FIRST_MESSAGE.items()}
    jobs.update({f"example:{p.name}": ("ex03", p, EXAMPLE_CONFIG) for p in EXAMPLES})
    with WarmServer(CONFIG) as server, ThreadPoolExecutor(max_workers=2) as pool:
        futures = {key: pool.submit(grade, find(ex), path, config, server)
                   for key, (ex, path, config) in jobs.items()}
        return {key: f.result() for key, f in futures.items()}


def _first(report: Report) -> CheckResult:
    return next(c for c in report.checks if c.status in ("fail", "error"))


def _summary(report: Report) -> str:
    return "\n".join(f"{c.id}: {c.status} — {c.message}" for c in report.checks)


def test_the_corpus_is_all_there():
    assert sorted(p.stem for p in CORPUS.glob("*.py")) == sorted(FIRST_MESSAGE)


@pytest.mark.parametrize("name", sorted(FIRST_MESSAGE))
def test_first_message_names_the_cause_and_the_fix(name: str, reports: dict[str, Report]):
    _, check_id, fragments = FIRST_MESSAGE[name]
    report = reports[name]
    if check_id is None:
        assert report.status == "pass", _summary(report)
        return
    first = _first(report)
    assert first.id == check_id, _summary(report)
    for fragment in fragments:
        assert fragment in first.message, f"{fragment!r} not in {first.message!r}"
    assert "site-packages" not in first.message and "<id>" not in first.hint
    if check_id == "import.loads":
        assert first.hint == f"Run `python tests/realworld/{name}.py` in a terminal to see the full error."


def test_a_foreign_dag_id_is_the_only_failure(reports: dict[str, Report]):
    report = reports["foreign_dag_id"]
    assert [c.id for c in report.checks if c.status != "pass"] == ["import.dag_id"], _summary(report)
    assert report.score == report.max_score - 1


def test_airflow2_advice_is_one_clean_sentence_each(reports: dict[str, Report]):
    advice = next(c for c in reports["airflow2_tutorial"].checks if c.id == "advice.airflow3_imports")
    assert advice.status == "fail"
    for expected in ("Line 4: `airflow.DAG` still works in Airflow 3 but is deprecated: use `DAG` from "
                     "`airflow.sdk` instead.",
                     "Line 16: `schedule_interval` was removed in Airflow 3: use `schedule` instead.",
                     "Line 18: `provide_context=True` was removed in Airflow 3"):
        assert expected in advice.message
    for garbled in (";;", "; It", "datetime.now"):
        assert garbled not in advice.message


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_airflow_example_dag_gets_a_report_in_time(path: Path, reports: dict[str, Report]):
    report = reports[f"example:{path.name}"]
    assert not [c for c in report.checks if c.status == "error"], _summary(report)
    deadline = EXAMPLE_CONFIG.import_timeout + EXAMPLE_CONFIG.run_timeout + 30  # runs are cut short
    assert report.duration_s < deadline
    assert report.status == "fail"  # none of them is the exercise's DAG
    first = _first(report)
    assert first.message and "<id>" not in first.hint, _summary(report)


def test_nothing_of_the_examples_is_left_behind(reports: dict[str, Report]):
    deadline = time.monotonic() + 10
    while _sandbox_leftovers(BEFORE) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _sandbox_leftovers(BEFORE)
    assert not [p.pid for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "97"]]
    assert not Path("/tmp/realworld-left-behind").exists()
