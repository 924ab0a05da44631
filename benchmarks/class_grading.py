"""Submissions per minute when grading a class, three ways, in one run on the same submissions:

  * baseline: `python -m autograder grade EX --submission ...` once per submission, one after
    another (a fresh Airflow process each time);
  * `python -m autograder grade-class` (children forked from one warm Airflow process, one job
    per core);
  * the `grade_class` DAG on the embedded lab (mapped tasks of a few submissions, LocalExecutor,
    each sending its submission to the warm grading service the DAG's setup task starts).

The class is synthetic: reference solutions and golden wrong answers, mixed, for --size
submissions (default 40). Target: grade-class >= 60 submissions/min on 2 cores.

    .venv/bin/python benchmarks/class_grading.py [--size 40] [--skip-dag] [--skip-baseline]
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MIX = [
    ("ex01_daily_etl", ROOT / "solutions/ex01_daily_etl/dag.py"),
    ("ex02_parallel_regions", ROOT / "solutions/ex02_parallel_regions/dag.py"),
    ("ex01_daily_etl", ROOT / "tests/grader_cases/ex01_daily_etl/age_off_by_one/dag.py"),
    ("ex02_parallel_regions", ROOT / "tests/grader_cases/ex02_parallel_regions/missing_edge/dag.py"),
    ("ex02_parallel_regions", ROOT / "tests/grader_cases/ex02_parallel_regions/task_raises_keyerror/dag.py"),
    ("ex01_daily_etl", ROOT / "tests/grader_cases/ex01_daily_etl/taskflow/dag.py"),
    ("ex02_parallel_regions", ROOT / "tests/grader_cases/ex02_parallel_regions/schedule_interval/dag.py"),
    ("ex01_daily_etl", ROOT / "tests/grader_cases/ex01_daily_etl/wrong_schedule_daily/dag.py"),
]


def make_class(root: Path, size: int) -> list[tuple[str, str, Path]]:
    subs = []
    for n, (exercise, source) in zip(range(size), itertools.cycle(MIX), strict=False):
        student = f"student{n:03d}"
        folder = root / student / exercise
        folder.mkdir(parents=True)
        shutil.copy(source, folder / "dag.py")
        subs.append((student, exercise, folder / "dag.py"))
    return subs


def per_minute(count: int, seconds: float) -> str:
    return f"{count / seconds * 60:6.1f} submissions/min ({count} in {seconds:.0f} s)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=40)
    parser.add_argument("--skip-dag", action="store_true")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        submitted = Path(tmp) / "submitted"
        subs = make_class(submitted, args.size)

        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "autograder", "grade-class", str(submitted), "--out",
                        str(Path(tmp) / "out-class")], cwd=ROOT, check=True, capture_output=True)
        results["grade-class"] = time.perf_counter() - t0

        if not args.skip_baseline:
            t0 = time.perf_counter()
            for _, exercise, path in subs:
                subprocess.run([sys.executable, "-m", "autograder", "grade", exercise, "--submission",
                                str(path), "--format", "json"], cwd=ROOT, check=True, capture_output=True)
            results["grade, one after another (baseline)"] = time.perf_counter() - t0

        if not args.skip_dag:
            import os

            from course import engine, lab
            from course.paths import HOME_ENV, LabPaths

            os.environ[HOME_ENV] = str(Path(tmp) / "lab")
            paths = LabPaths.default()
            engine.start(paths, port=engine.free_port(28380), progress=lambda *_: None)
            try:
                dag_id = lab.deploy_dag("grade_class.py", ROOT / "autograder/airflow_dags/grade_class.py")
                t0 = time.perf_counter()
                conf = {"submitted": str(submitted), "out": str(Path(tmp) / "out-dag")}
                run = lab.run_dag(dag_id, conf=conf, timeout=3600)
                results["grade_class DAG on the lab"] = time.perf_counter() - t0
                if run["state"] != "success":
                    states = {(ti["task_id"], ti["map_index"]): ti["state"]
                              for ti in lab.client().task_instances(dag_id, run["dag_run_id"])}
                    raise SystemExit(f"The grade_class run ended {run['state']}: {states}. "
                                     f"The lab's logs: {paths.logs}")
            finally:
                engine.stop(paths, quiet=True)

    for name, seconds in results.items():
        print(f"{name:40}{per_minute(args.size, seconds)}")
    base = results.get("grade, one after another (baseline)")
    if base:
        for name, seconds in results.items():
            print(f"speed-up over the baseline, {name:28}{base / seconds:6.1f}x")
    rate = args.size / results["grade-class"] * 60
    print(f"target: grade-class >= 60 submissions/min -> {rate:.1f} {'met' if rate >= 60 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
