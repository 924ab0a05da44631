"""What grading a Prefect or Dagster exercise costs, next to a bare run of the same file.

For the reference solutions of exercises 11 (Prefect) and 12 (Dagster), alternating in one run:
  * bare: a fresh `.venv-orchestrators/bin/python` in a folder holding the file and its sample
    data that runs the pipeline once, as the exercise's README says: `import dag;
    dag.daily_regions()` (Prefect starts its temporary server, in a PREFECT_HOME that a first,
    untimed run has already set up) or `python dag.py` (Dagster materialises every asset);
  * graded: `python -m autograder grade EXERCISE --submission solutions/<id>/dag.py --cold`, the
    command a learner runs: a fresh client, a fresh engine in `.venv-orchestrators`, the sandbox,
    the checks, the report.
Prints the median seconds of each and the ratio graded / bare (must stay at most 1.5).

    .venv/bin/python benchmarks/orchestrator_grading.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv-orchestrators" / "bin" / "python"
EXERCISES = {"ex11_prefect_regions": ["-c", "import dag; dag.daily_regions()"],
             "ex12_dagster_regions": ["dag.py"]}
LIMIT = 1.5


def bare_env(folder: Path) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": str(folder), "LANG": "C.UTF-8",
            "WAREHOUSE_DB": str(folder / "warehouse.db"), "PREFECT_HOME": str(folder / "prefect"),
            "DAGSTER_HOME": str(folder / "dagster"), "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DAGSTER_DISABLE_TELEMETRY": "1",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"}


def bare_once(exercise: str, folder: Path) -> float:
    started = time.monotonic()
    done = subprocess.run([str(PYTHON), *EXERCISES[exercise]], cwd=folder, env=bare_env(folder),
                          capture_output=True, text=True, timeout=600)
    took = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"bare run of {exercise} failed:\n{done.stderr[-3000:]}")
    return took


def graded_once(exercise: str) -> float:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", exercise, "--submission",
                           str(ROOT / "solutions" / exercise / "dag.py"), "--cold", "--format", "json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    took = time.monotonic() - started
    report = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    if report.get("status") != "pass":
        raise SystemExit(f"grading {exercise}'s solution did not pass:\n{done.stdout[-3000:]}"
                         f"{done.stderr[-3000:]}")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {args.rounds} rounds each, "
          "alternating", flush=True)
    ratios = {}
    with tempfile.TemporaryDirectory() as tmp:
        for exercise in EXERCISES:
            folder = Path(tmp) / exercise
            folder.mkdir()
            shutil.copy(ROOT / "solutions" / exercise / "dag.py", folder / "dag.py")
            shutil.copytree(ROOT / "exercises" / exercise / "data", folder / "data")
            bare_once(exercise, folder)  # untimed: Prefect's database, Python's caches
            graded_once(exercise)        # untimed: the grader's Prefect template
            bare, graded = [], []
            for _ in range(args.rounds):
                bare.append(bare_once(exercise, folder))
                graded.append(graded_once(exercise))
            b, g = statistics.median(bare), statistics.median(graded)
            ratios[exercise] = g / b
            print(f"{exercise:24} bare run {b:6.1f} s   graded {g:6.1f} s   graded / bare {g / b:4.2f}"
                  f"   (bare {', '.join(f'{x:.1f}' for x in bare)}; graded "
                  f"{', '.join(f'{x:.1f}' for x in graded)})", flush=True)
    worst = max(ratios.values())
    print(f"worst ratio {worst:.2f} (limit {LIMIT}): {'OK' if worst <= LIMIT else 'TOO SLOW'}")
    return 0 if worst <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
