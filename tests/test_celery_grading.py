"""The class-grading DAG on Airflow's CeleryExecutor: Redis broker, PostgreSQL metadata database,
two Celery workers of concurrency 1, each with its own warm grader (`python -m course cluster`)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from course import cluster

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from class_grading import make_class  # noqa: E402  (the benchmark's mix of right and wrong DAGs)

POSTGRES_URL = os.environ.get("COURSE_TEST_POSTGRES_URL")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory):
    if not POSTGRES_URL or not shutil.which("redis-server"):
        pytest.skip("needs COURSE_TEST_POSTGRES_URL and Debian's redis-server (.ci/run sets up both)")
    home = tmp_path_factory.mktemp("cluster")
    state = cluster.start(home, workers=2, postgres_url=POSTGRES_URL, progress=lambda *_: None)
    client = cluster.Client(state)
    client.set_paused("grade_class", False)
    try:
        yield home, state, client
    finally:
        client.close()
        cluster.stop(home, quiet=True)
        assert cluster.processes(home) == [], "processes of the cluster outlived `stop`"
        redis = [p for p in psutil.process_iter(["cmdline"])
                 if f"127.0.0.1:{state.redis_port}" in " ".join(p.info["cmdline"] or [])]
        assert redis == [], "Redis outlived `stop`"


def grades(out: Path) -> dict[tuple[str, str], tuple[str, str]]:
    with open(out / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    keys = [(r["student"], r["exercise"]) for r in rows]
    assert len(keys) == len(set(keys)), f"a submission has several rows in grades.csv: {keys}"
    return {(r["student"], r["exercise"]): (r["status"], r["score"]) for r in rows}


def on_worker(home: Path, pid: int | None, worker: str) -> bool:
    return bool(pid) and pid in {p.pid for p in cluster.worker_processes(home, worker)}


def grade_run(client, submitted: Path, out: Path, timeout: float = 600) -> tuple[dict, list[dict]]:
    run = client.trigger("grade_class", conf={"submitted": str(submitted), "out": str(out),
                                              "timeout": 60})
    run = client.wait("grade_class", run["dag_run_id"], timeout=timeout)
    tis = client.task_instances("grade_class", run["dag_run_id"])
    assert run["state"] == "success", {(t["task_id"], t["map_index"]): t["state"] for t in tis}
    return run, tis


def test_two_workers_grade_as_grade_class_does(running, tmp_path):
    home, _, client = running
    submitted = tmp_path / "submitted"
    make_class(submitted, 40)
    run, tis = grade_run(client, submitted, tmp_path / "out")
    summary = client.xcom("grade_class", run["dag_run_id"], "write_grades")
    assert summary == {"submissions": 40, "passed": 15, "graded_now": 40, "graded_warm": 40}
    # Ten tasks of four submissions each, named in the UI by their students.
    mapped = sorted((t for t in tis if t["task_id"] == "grade_submission"), key=lambda t: t["map_index"])
    assert [t["rendered_map_index"] for t in mapped[:2]] == [
        "student000, student001, student002, student003", "student004, student005, student006, student007"]
    assert len(mapped) == 10
    # Both workers graded, each through the warm grader started beside it.
    graded = {worker: (cluster.grader_dir(home, worker) / "grader.log").read_text().count(" graded ")
              for worker in ("worker1", "worker2")}
    assert sum(graded.values()) == 40 and min(graded.values()) >= 8, graded
    subprocess.run([sys.executable, "-m", "autograder", "grade-class", str(submitted), "--out",
                    str(tmp_path / "reference"), "--jobs", "2"], cwd=ROOT, check=True,
                   capture_output=True, timeout=300)
    assert grades(tmp_path / "out") == grades(tmp_path / "reference")

    # A re-trigger grades only what changed: one submission replaced by the reference solution.
    changed = sorted(submitted.glob("*/ex02_parallel_regions/dag.py"))[1]
    shutil.copy(ROOT / "solutions/ex02_parallel_regions/dag.py", changed)
    run, _ = grade_run(client, submitted, tmp_path / "out")
    summary = client.xcom("grade_class", run["dag_run_id"], "write_grades")
    assert summary == {"submissions": 40, "passed": 16, "graded_now": 1, "graded_warm": 1}
    assert grades(tmp_path / "out")[(changed.parts[-3], "ex02_parallel_regions")][0] == "pass"


def test_a_worker_killed_mid_run_loses_nothing(running, tmp_path):
    home, _, client = running
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    subs = make_class(submitted, 8)
    run = client.trigger("grade_class", conf={"submitted": str(submitted), "out": str(out),
                                              "timeout": 60, "per_task": 2})
    # Kill worker1 and everything it runs (its task, its grader) while it grades a submission.
    deadline = time.monotonic() + 240
    while not any(t["task_id"] == "grade_submission" and t["state"] == "running"
                  and on_worker(home, t.get("pid"), "worker1")
                  for t in client.task_instances("grade_class", run["dag_run_id"])):
        assert time.monotonic() < deadline, "worker1 ran no grading task within 240 s"
        time.sleep(0.3)
    time.sleep(1)
    assert cluster.kill_worker(home, "worker1") >= 2
    run = client.wait("grade_class", run["dag_run_id"], timeout=400)
    tis = client.task_instances("grade_class", run["dag_run_id"])
    assert run["state"] == "success", {(t["task_id"], t["map_index"]): t["state"] for t in tis}
    mapped = [t for t in tis if t["task_id"] == "grade_submission"]
    assert len(mapped) == 4 and {t["state"] for t in mapped} == {"success"}
    assert max(t["try_number"] for t in mapped) == 2, "no grading task was retried after the kill"

    # Each submission graded once in grades.csv, every report whole, as on one machine.
    assert set(grades(out)) == {(student, exercise) for student, exercise, _ in subs}
    for student, exercise, _ in subs:
        report = json.loads((out / "reports" / student / f"{exercise}.json").read_text())
        assert report["student"] == student and report["checks"], report
        assert (out / "feedback" / student / f"{exercise}.md").read_text().startswith("# ")
    assert not list(out.rglob("*.tmp")), "a half-written report was left behind"
    summary = client.xcom("grade_class", run["dag_run_id"], "write_grades")
    assert summary["submissions"] == 8 and summary["passed"] == 3
