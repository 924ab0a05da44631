"""How much does grading cost on top of just running the DAG?

For each exercise's reference solution, alternating in one run:
  * baseline ("bare dag.test"): a fresh `python` that imports the DAG file from a prepared
    AIRFLOW_HOME (migrated database, the file and its data in the dags folder, connections set)
    and calls `dag.test()` once;
  * `python -m autograder grade EXERCISE --submission solutions/<id>/dag.py`, the command a
    learner runs (it runs the DAG as often as the exercise asks: twice for ex01);
  * `make grade`: `python -m autograder grade <every exercise>` on the files in exercises/,
    which forks every submission from one warm Airflow process; compared with ONE bare run.
Prints median seconds and the ratios grade / bare.

    .venv/bin/python benchmarks/grade_speed.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from autograder.config import GradeConfig  # noqa: E402
from autograder.exercises import all_exercises  # noqa: E402
from autograder.runner import child_env, template_db  # noqa: E402
from autograder.world import MailSink, conn_env  # noqa: E402

BARE = """
import importlib.util, sys, pendulum
spec = importlib.util.spec_from_file_location("bench_dag", sys.argv[1])
module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
dag = next(v for v in vars(module).values() if type(v).__name__ == "DAG")
run = dag.test(logical_date=pendulum.datetime(2024, 1, 2, 3, tz="UTC"))
assert str(run.state) == "success", run.state
"""


def bare_once(exercise, sink: MailSink) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        dags = home / "dags"
        dags.mkdir(parents=True)
        shutil.copy(template_db(GradeConfig()), home / "airflow.db")
        shutil.copy(ROOT / "solutions" / exercise.id / "dag.py", dags / "dag.py")
        if exercise.grading_data.exists():
            shutil.copytree(exercise.grading_data, dags / "data")
        env = child_env(home, dags, dict([
            conn_env("warehouse", {"conn_type": "sqlite", "host": str(Path(tmp) / "wh.db")}),
            conn_env("smtp_default", sink.connection())]))
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", BARE, str(dags / "dag.py")], env=env, check=True,
                       capture_output=True, cwd=home)
        return time.perf_counter() - t0


def grade_once(ids: list[str], submission: bool) -> float:
    argv = [sys.executable, "-m", "autograder", "grade", *ids, "--format", "json"]
    if submission:
        argv += ["--submission", str(ROOT / "solutions" / ids[0] / "dag.py")]
    t0 = time.perf_counter()
    out = subprocess.run(argv, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    elapsed = time.perf_counter() - t0
    if submission:
        status = json.loads(out)["status"]
        assert status == "pass", f"the reference solution of {ids[0]} graded {status}"
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    exercises = list(all_exercises().values())
    template_db(GradeConfig())  # made once, outside the timings
    times: dict[str, list[float]] = {}
    with MailSink() as sink:
        for _ in range(args.rounds):
            for ex in exercises:
                times.setdefault(f"bare {ex.id}", []).append(bare_once(ex, sink))
                times.setdefault(f"grade {ex.id}", []).append(grade_once([ex.id], True))
            times.setdefault("make grade (all exercises)", []).append(
                grade_once([ex.id for ex in exercises], False))
    median = {k: statistics.median(v) for k, v in times.items()}
    for name, value in median.items():
        print(f"{name:44}{value:7.2f} s  (median of {len(times[name])})")
    for ex in exercises:
        ratio = median[f"grade {ex.id}"] / median[f"bare {ex.id}"]
        print(f"ratio grade/bare {ex.id:28}{ratio:6.2f}x   (target <= 1.5x, next <= 1.1x)")
    one_bare = statistics.median([median[f"bare {ex.id}"] for ex in exercises])
    ratio = median["make grade (all exercises)"] / one_bare
    print(f"ratio make grade ({len(exercises)} exercises) / one bare dag.test  {ratio:6.2f}x   "
          "(target <= 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
