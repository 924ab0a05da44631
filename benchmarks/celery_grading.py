"""Submissions per minute of the grade_class DAG on Airflow's CeleryExecutor, in one run:

  * 1 Celery worker of concurrency 1, then 2 workers of concurrency 1 (`python -m course cluster`:
    Redis broker, PostgreSQL metadata database; each worker grades through its own warm grader);
  * `python -m autograder grade-class --jobs 2` on the same submissions, for comparison;
  * `grade-class --jobs 1` once;
  * the workers' graders without Airflow: the class through one warm grader, then half of it
    through each of two warm graders at once. Their ratio is the most a second worker can gain on
    this machine, since each worker does nothing but wait for its grader.

Each DAG figure is one run's time from the trigger to the end Airflow records for the run, on a
fresh cluster (the workers' warm graders start with the cluster, before it). The run's state is
asked every two seconds: a watcher polling faster would take the api-server's CPU from the graders.
The class is benchmarks/class_grading.py's mix. `grade-class --jobs 2` runs before, between and
after the two cluster runs, and each cluster run is compared with the two grade-class runs around
it, so that a machine whose load changes during the benchmark compares like with like. Targets: 2
workers >= 1.7x one worker, and >= 0.8x grade-class --jobs 2.

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
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from class_grading import make_class  # noqa: E402

from autograder import service  # noqa: E402
from course import cluster  # noqa: E402


def dag_run(home: Path, workers: int, submitted: Path, out: Path, postgres_url: str) -> float:
    """Seconds the grade_class DAG takes on a fresh cluster of ``workers`` workers."""
    state = cluster.start(home, workers=workers, postgres_url=postgres_url, progress=lambda *_: None)
    try:
        client = cluster.Client(state)
        client.set_paused("grade_class", False)
        t0 = time.time()
        run = client.trigger("grade_class", conf={"submitted": str(submitted), "out": str(out)})
        run = client.wait("grade_class", run["dag_run_id"], timeout=3600, poll=2)
        seconds = datetime.fromisoformat(run["end_date"].replace("Z", "+00:00")).timestamp() - t0
        summary = client.xcom("grade_class", run["dag_run_id"], "write_grades")
        assert run["state"] == "success", run
        print(f"  {workers} worker(s): {summary}", file=sys.stderr)
        return seconds
    finally:
        cluster.stop(home, quiet=True)


def grade_class_run(submitted: Path, out: Path, jobs: int = 2) -> float:
    """Seconds `grade-class --jobs N` takes on the same class (a fresh output folder)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "autograder", "grade-class", str(submitted), "--out",
                    str(out), "--jobs", str(jobs)], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - t0


def warm_graders(folder: Path, subs: list[tuple[str, str, Path]]) -> tuple[float, float]:
    """Seconds to grade ``subs`` through one warm grader, then half through each of two at once."""
    socks = []
    for n in (1, 2):
        (folder / f"grader{n}").mkdir(mode=0o700, parents=True)
        socks.append(folder / f"grader{n}" / "grader.sock")
        service.start(socks[-1])

    def grade_all(sock: Path, part: list[tuple[str, str, Path]]) -> None:
        for _, exercise, path in part:
            if service.grade_remotely(sock, exercise, path, timeout=120) is None:
                raise RuntimeError(f"the warm grader on {sock} did not grade {path}")

    try:
        for sock in socks:  # each grader's first submissions warm it, as a worker's do
            grade_all(sock, subs[:4])
        t0 = time.perf_counter()
        grade_all(socks[0], subs)
        one = time.perf_counter() - t0
        t0 = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(grade_all, socks, [subs[0::2], subs[1::2]]))
        return one, time.perf_counter() - t0
    finally:
        for sock in socks:
            service.stop(sock)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=40)
    parser.add_argument("--postgres-url", default=os.environ.get(cluster.POSTGRES_ENV)
                        or os.environ.get("COURSE_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    load = os.getloadavg()
    cluster_s: dict[int, float] = {}
    baseline_s: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        submitted = Path(tmp) / "submitted"
        subs = make_class(submitted, args.size)
        Path(tmp).chmod(0o700)
        one_grader_s, two_graders_s = warm_graders(Path(tmp) / "graders", subs)
        # grade-class runs before, between and after the two cluster runs: each cluster run is
        # compared with the grade-class runs on either side of it, under the same load.
        one_job_s = grade_class_run(submitted, Path(tmp) / "out-one-job", jobs=1)
        baseline_s.append(grade_class_run(submitted, Path(tmp) / "out-class0"))
        for workers in (1, 2):
            cluster_s[workers] = dag_run(Path(tmp) / f"cluster{workers}", workers, submitted,
                                         Path(tmp) / f"out{workers}", args.postgres_url)
            baseline_s.append(grade_class_run(submitted, Path(tmp) / f"out-class{workers}"))

    def rate(seconds: float) -> float:
        return args.size / seconds * 60

    around = {w: rate(2 / (1 / baseline_s[w - 1] + 1 / baseline_s[w])) for w in (1, 2)}
    print(f"{args.size} submissions, {os.cpu_count()} cores, load average before: "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, after: "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"| {'way':36} | submissions/min | seconds | vs grade-class around it |")
    print(f"|{'-' * 38}|-----------------|---------|--------------------------|")
    print(f"| {'grade-class --jobs 1':36} | {rate(one_job_s):15.1f} | {one_job_s:7.0f} | {'':24} |")
    for name, seconds in (("one warm grader, no Airflow", one_grader_s),
                          ("two warm graders at once, no Airflow", two_graders_s)):
        print(f"| {name:36} | {rate(seconds):15.1f} | {seconds:7.0f} | {'':24} |")
    for n, seconds in enumerate(baseline_s):
        print(f"| {f'grade-class --jobs 2 (run {n + 1})':36} | {rate(seconds):15.1f} | {seconds:7.0f} |"
              f" {'':24} |")
    for w, seconds in cluster_s.items():
        print(f"| {f'DAG, CeleryExecutor, {w} worker(s) x1':36} | {rate(seconds):15.1f} | "
              f"{seconds:7.0f} | {rate(seconds) / around[w]:23.2f}x |")
    one, two = rate(cluster_s[1]), rate(cluster_s[2])
    two_local = two / around[2]
    scaled = two_local / (one / around[1])
    print(f"2 workers / 1 worker = {two / one:.2f}x as measured, {scaled:.2f}x with each run taken "
          f"against the grade-class runs around it (target >= 1.7x: {'met' if scaled >= 1.7 else 'NOT met'})")
    print(f"Without Airflow, two warm graders grade {one_grader_s / two_graders_s:.2f}x as fast as one "
          f"({rate(two_graders_s):.1f} against {rate(one_grader_s):.1f}/min): the most a second worker "
          f"can gain on this machine; grade-class --jobs 2 / --jobs 1 = {one_job_s / baseline_s[0]:.2f}x")
    print(f"2 workers / grade-class --jobs 2 around it = {two_local:.2f}x "
          f"(target >= 0.8x: {'met' if two_local >= 0.8 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
