"""Submissions per minute of the grade_class DAG on Airflow's CeleryExecutor, in one run:

  * 1 Celery worker of concurrency 1, then 2 workers of concurrency 1 (`python -m course cluster`:
    Redis broker, PostgreSQL metadata database; each worker grades through its own warm grader);
  * `python -m autograder grade-class --jobs 2` on the same submissions, for comparison.

Each DAG figure is one run's wall time from the trigger to the run's end on a fresh cluster (the
workers' graders start during it). The class is benchmarks/class_grading.py's mix. Targets:
2 workers >= 1.7x one worker, and >= 0.8x grade-class --jobs 2.

    COURSE_POSTGRES_URL=postgresql://USER:PASSWORD@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/celery_grading.py [--size 40]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from class_grading import make_class  # noqa: E402

from course import cluster  # noqa: E402


def dag_run(home: Path, workers: int, submitted: Path, out: Path, postgres_url: str) -> float:
    """Seconds the grade_class DAG takes on a fresh cluster of ``workers`` workers."""
    state = cluster.start(home, workers=workers, postgres_url=postgres_url, progress=lambda *_: None)
    try:
        client = cluster.Client(state)
        client.set_paused("grade_class", False)
        t0 = time.perf_counter()
        run = client.trigger("grade_class", conf={"submitted": str(submitted), "out": str(out)})
        run = client.wait("grade_class", run["dag_run_id"], timeout=3600)
        seconds = time.perf_counter() - t0
        summary = client.xcom("grade_class", run["dag_run_id"], "write_grades")
        assert run["state"] == "success", run
        print(f"  {workers} worker(s): {summary}", file=sys.stderr)
        return seconds
    finally:
        cluster.stop(home, quiet=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=40)
    parser.add_argument("--postgres-url", default=os.environ.get(cluster.POSTGRES_ENV)
                        or os.environ.get("COURSE_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    load = os.getloadavg()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        submitted = Path(tmp) / "submitted"
        make_class(submitted, args.size)
        for workers in (1, 2):
            results[f"DAG, CeleryExecutor, {workers} worker(s) x1"] = dag_run(
                Path(tmp) / f"cluster{workers}", workers, submitted, Path(tmp) / f"out{workers}",
                args.postgres_url)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "autograder", "grade-class", str(submitted), "--out",
                        str(Path(tmp) / "out-class"), "--jobs", "2"], cwd=ROOT, check=True,
                       capture_output=True)
        results["grade-class --jobs 2"] = time.perf_counter() - t0

    rate = {name: args.size / seconds * 60 for name, seconds in results.items()}
    print(f"{args.size} submissions, {os.cpu_count()} cores, load average before: "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, after: "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"| {'way':36} | submissions/min | seconds |")
    print(f"|{'-' * 38}|-----------------|---------|")
    for name, seconds in results.items():
        print(f"| {name:36} | {rate[name]:15.1f} | {seconds:7.0f} |")
    one, two = rate["DAG, CeleryExecutor, 1 worker(s) x1"], rate["DAG, CeleryExecutor, 2 worker(s) x1"]
    local = rate["grade-class --jobs 2"]
    print(f"2 workers / 1 worker = {two / one:.2f}x "
          f"(target >= 1.7x: {'met' if two >= 1.7 * one else 'NOT met'})")
    print(f"2 workers / grade-class --jobs 2 = {two / local:.2f}x "
          f"(target >= 0.8x: {'met' if two >= 0.8 * local else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
