"""The class-grading DAG end to end on the embedded lab (LocalExecutor, dynamic task mapping)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from autograder import service
from course import lab

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def test_grade_class_dag_maps_one_task_per_submission(lab_home, tmp_path):
    submitted, out = tmp_path / "submitted", tmp_path / "out"
    for student, source in {"dana": ROOT / "solutions/ex02_parallel_regions/dag.py",
                            "eli": ROOT / "tests/grader_cases/ex02_parallel_regions/missing_edge/dag.py",
                            "fay": ROOT / "tests/grader_cases/ex01_daily_etl/wrong_schedule_daily/dag.py",
                            }.items():
        exercise = "ex01_daily_etl" if student == "fay" else "ex02_parallel_regions"
        (submitted / student / exercise).mkdir(parents=True)
        shutil.copy(source, submitted / student / exercise / "dag.py")

    dag_id = lab.deploy_dag("grade_class.py", ROOT / "autograder/airflow_dags/grade_class.py")
    assert dag_id == "grade_class"
    run = lab.run_dag(dag_id, conf={"submitted": str(submitted), "out": str(out), "timeout": 60},
                      timeout=600)
    tis = lab.client().task_instances(dag_id, run["dag_run_id"])
    assert run["state"] == "success", {(t["task_id"], t["map_index"]): t["state"] for t in tis}
    mapped = [t for t in tis if t["task_id"] == "grade_submission"]
    assert len(mapped) == 3 and {t["state"] for t in mapped} == {"success"}
    with open(out / "grades.csv", newline="") as f:
        grades = {(r["student"], r["exercise"]): r["status"] for r in csv.DictReader(f)}
    assert grades == {("dana", "ex02_parallel_regions"): "pass", ("eli", "ex02_parallel_regions"): "fail",
                      ("fay", "ex01_daily_etl"): "fail"}
    assert (out / "feedback/eli/ex02_parallel_regions.md").exists()
    summary = lab.xcom(dag_id, run["dag_run_id"], "write_grades")
    assert summary == {"submissions": 3, "passed": 1, "graded_now": 3, "graded_warm": 3}
    # The teardown stopped the grading service: its socket is gone and nothing answers there.
    sock = Path(lab.xcom(dag_id, run["dag_run_id"], "start_grading_service"))
    assert not sock.exists(), f"the grading service still listens on {sock} after the teardown"
    assert service.stop(sock) is False
