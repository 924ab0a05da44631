"""Time-to-healthy and memory of the course lab against plain `airflow standalone`.

Two set-ups are measured in this one run, alternating: the course lab (`airflow standalone` with
the lab's settings, its SMTP sink, and the checks the lab waits for) and plain `airflow standalone`
with default settings; each in a fresh Airflow home (cold: includes the database migration) and
then restarted on the same home (warm: what a learner sees every day).
Memory is the proportional set size (PSS) summed over every process of the lab, read once all
components report healthy and have settled for a few seconds. Then, on the course lab, a two-task
DAG is deployed and run twice: the first run after a start against a later one (the lab asks for
Airflow's Execution API at its start, so that the first task does not wait while it is built).

    .venv/bin/python benchmarks/lab_startup.py [--settle 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from course import engine, lab  # noqa: E402
from course.paths import HOME_ENV, LabPaths  # noqa: E402

TARGET_SECONDS = 15.0
TARGET_BYTES = 1 << 30
LABELS = {"course": "course lab", "plain": "plain standalone"}


def pss_of_group(pgid: int) -> int:
    total = 0
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid:
                info = proc.memory_full_info()
                total += getattr(info, "pss", info.rss)
        except (psutil.Error, OSError):
            continue
    return total


TWO_TASKS = """
import pendulum
from airflow.sdk import dag, task


@dag(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2023, 1, 1, tz="UTC"))
def two_tasks():
    @task
    def first():
        return 1

    @task
    def second(x):
        return x + 1

    second(first())


two_tasks()
"""


def two_runs(home: Path) -> tuple[float, float]:
    """Seconds of the first run of a two-task DAG after the lab's start, and of a later run."""
    os.environ[HOME_ENV] = str(home)
    seconds = []
    for n in (1, 2):
        dag_id = lab.deploy_dag(f"two_tasks_{n}.py", TWO_TASKS.format(dag_id=f"two_tasks_{n}"))
        t0 = time.monotonic()
        run = lab.run_dag(dag_id)
        seconds.append(time.monotonic() - t0)
        if run["state"] != "success":
            sys.exit(f"The two-task DAG {dag_id} ended {run['state']}; see its log in the lab's UI.")
    return seconds[0], seconds[1]


def run_course_lab(home: Path, settle: float) -> tuple[float, int, tuple[float, float]]:
    paths = LabPaths.default(home)
    t0 = time.monotonic()
    engine.start(paths, progress=lambda *_: None)
    elapsed = time.monotonic() - t0
    time.sleep(settle)
    state = engine.read_state(paths)
    memory = pss_of_group(state.airflow_pgid) + pss_of_group(state.smtp_pgid)
    runs = two_runs(home)
    engine.stop(paths, quiet=True)
    return elapsed, memory, runs


def run_plain_standalone(home: Path, settle: float) -> tuple[float, int]:
    if not engine.port_is_free(8080):
        sys.exit("Port 8080 is taken: plain `airflow standalone` needs it. Stop the lab "
                 "(`make airflow-stop`) and run the benchmark again.")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(AIRFLOW_HOME=str(home), PATH=f"{engine.airflow_bin().parent}:{env['PATH']}")
    t0 = time.monotonic()
    with open(home / "standalone.log", "ab") as log:
        proc = subprocess.Popen([str(engine.airflow_bin()), "standalone"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while True:
            comps = engine.health(8080, timeout=1)
            if comps and set(comps.values()) == {"healthy"}:
                break
            if proc.poll() is not None or time.monotonic() - t0 > 300:
                sys.exit(f"plain standalone did not become healthy; see {home / 'standalone.log'}")
            time.sleep(0.5)
        elapsed = time.monotonic() - t0
        time.sleep(settle)
        return elapsed, pss_of_group(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        for leftover in engine.lab_processes(LabPaths.default(home)):
            try:
                leftover.kill()
            except psutil.Error:
                pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=5.0)
    args = parser.parse_args()
    results: dict[tuple[str, str], tuple[float, int]] = {}
    runs: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        homes = {name: Path(tmp) / name for name in LABELS}
        for home in homes.values():
            home.mkdir()
        for phase in ("cold", "warm"):
            secs, memory, runs[phase] = run_course_lab(homes["course"], args.settle)
            results["course", phase] = secs, memory
            results["plain", phase] = run_plain_standalone(homes["plain"], args.settle)
    print(f"{'':22}{'ready (s)':>10}{'memory (MB)':>13}")
    for (name, phase), (secs, mem) in results.items():
        print(f"{LABELS[name] + ' ' + phase:22}{secs:10.1f}{mem / 1e6:13.0f}")
    for phase in ("cold", "warm"):
        (cs, cm), (ps, pm) = results["course", phase], results["plain", phase]
        print(f"ratio course/plain ({phase}): time {cs / ps:.2f}x, memory {cm / pm:.2f}x")
    for phase, (first, later) in runs.items():
        print(f"course lab {phase}: a two-task DAG's first run after the start {first:.1f} s, a later "
              f"run {later:.1f} s: first/later {first / later:.2f}x")
    for phase in ("cold", "warm"):
        secs, mem = results["course", phase]
        print(f"targets ({phase}): ready <= {TARGET_SECONDS:.0f} s -> {secs:.1f} s "
              f"{'met' if secs <= TARGET_SECONDS else 'NOT met'}; memory <= 1 GiB -> "
              f"{mem / (1 << 30):.2f} GiB {'met' if mem <= TARGET_BYTES else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
