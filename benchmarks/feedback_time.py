"""How long does a learner wait for feedback, through the lab's warm grader and cold?

For every exercise's starter (exercises/<id>/dag.py) and reference solution
(solutions/<id>/dag.py), alternating in one run:
  * warm: `python -m autograder grade EXERCISE --submission FILE --format json` answered by a
    grading service, the one the lab keeps running (`python -m autograder serve`);
  * cold: the same command with `--cold` (what `make grade` does when no lab runs).
Each time is the whole command, the client's own start-up included. Prints the median seconds
of each, their ratio, and whether both gave the same report (JSON apart from duration_s; a check
whose message quotes the wall clock, as ex03's `date`, differs by nature).

    .venv/bin/python benchmarks/feedback_time.py [--rounds 3] [--cold-rounds 3] [--only ex02 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from autograder import service  # noqa: E402
from autograder.exercises import all_exercises  # noqa: E402

TARGET = 2.0  # seconds of warm feedback, median, per exercise


def timed_grade(exercise_id: str, path: Path, sock: Path | None) -> tuple[float, dict]:
    """Seconds the whole grade command took, and its report without the duration."""
    env = {**os.environ, "AUTOGRADER_SOCKET": str(sock or "/nonexistent/grader.sock")}
    argv = [sys.executable, "-m", "autograder", "grade", exercise_id, "--submission", str(path),
            "--format", "json", *([] if sock else ["--cold"])]
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
                          check=True)
    took = time.perf_counter() - t0
    if sock and done.stderr.strip():
        raise RuntimeError(f"the warm grade of {path} fell back to a cold one: {done.stderr.strip()}")
    report = json.loads(done.stdout)
    report.pop("duration_s")
    return took, report


def differences(warm: dict, cold: dict) -> set[str]:
    """What differs between two reports: the ids of the checks, or the report's own fields."""
    found = {k for k in warm.keys() | cold.keys() if k != "checks" and warm.get(k) != cold.get(k)}
    by_id = {c["id"]: c for c in cold["checks"]}
    found |= {c["id"] for c in warm["checks"] if by_id.get(c["id"]) != c}
    return found | (by_id.keys() - {c["id"] for c in warm["checks"]})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="warm grades per file")
    parser.add_argument("--cold-rounds", type=int, default=3, help="cold grades per file")
    parser.add_argument("--only", nargs="*", default=None, help="exercise id prefixes")
    args = parser.parse_args()
    exercises = [e for e in all_exercises()
                 if args.only is None or any(e.startswith(p) for p in args.only)]
    folder = Path(tempfile.mkdtemp(prefix="feedback-bench-"))  # 0700, as the service requires
    sock = folder / "grader.sock"
    t0 = time.perf_counter()
    service.start(sock)
    print(f"Warm grader ready in {time.perf_counter() - t0:.1f} s; {os.cpu_count()} cores. "
          f"Medians of {args.rounds} warm and {args.cold_rounds} cold grades per file.", flush=True)
    rows = []
    try:
        for exercise_id in exercises:
            for kind, base in (("starter", "exercises"), ("solution", "solutions")):
                path = ROOT / base / exercise_id / "dag.py"
                warm, cold, differ = [], [], set()
                for n in range(max(args.rounds, args.cold_rounds)):
                    if n < args.rounds:
                        took, warm_report = timed_grade(exercise_id, path, sock)
                        warm.append(took)
                    if n < args.cold_rounds:
                        took, cold_report = timed_grade(exercise_id, path, None)
                        cold.append(took)
                        differ |= differences(warm_report, cold_report)
                same = "yes" if not differ else "differs: " + ", ".join(sorted(differ))
                row = (exercise_id, kind, statistics.median(warm), statistics.median(cold), same,
                       warm_report["status"])
                rows.append(row)
                print(f"  {exercise_id} {kind}: warm {row[2]:.2f} s, cold {row[3]:.2f} s", flush=True)
    finally:
        service.stop(sock)
    print()
    print(f"| {'exercise':<24} | {'file':<8} | verdict | warm median s | cold median s | cold/warm "
          "| same report |")
    print(f"|{'-' * 26}|{'-' * 10}|---------|---------------|---------------|-----------|-------------|")
    for exercise_id, kind, warm, cold, same, status in rows:
        print(f"| {exercise_id:<24} | {kind:<8} | {status:<7} | {warm:13.2f} | {cold:13.2f} | "
              f"{cold / warm:8.1f}x | {same:<11} |")
    slowest = max(rows, key=lambda r: r[2])
    print(f"\nSlowest warm median: {slowest[2]:.2f} s ({slowest[0]} {slowest[1]}); target ≤ {TARGET:g} s: "
          f"{'met' if slowest[2] <= TARGET else 'NOT met'}. Reports identical warm and cold: "
          f"{'all' if all(r[4] == 'yes' for r in rows) else 'not all (see the last column)'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
