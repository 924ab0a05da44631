"""What does the sandbox cost a warm grader, per exercise?

For each exercise's reference solution, in one run, warm (one WarmServer per setup, a warm-up
submission first, then alternating rounds):
  * sandboxed: the grader as it is (parse and every task in their own sandboxes);
  * no sandbox: the same pipeline with ``--no-sandbox`` (same processes, no namespaces);
  * baseline: the grader of the commit before the sandbox (``--baseline REV``, default the parent
    of the commit that added ``autograder/sandbox``), checked out in a temporary worktree and run
    with the same interpreter: learner code imported and ``dag.test()`` run in one forked child.
Prints median seconds per exercise and the ratios sandboxed / baseline and sandboxed / no sandbox.

    .venv/bin/python benchmarks/sandbox_cost.py [--rounds 3] [--exercises ex02 ex05]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TIMER = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from autograder.config import GradeConfig
from autograder.exercises import find
from autograder.grade import grade
from autograder.runner import WarmServer
rounds, sandbox, exercises = int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4:]
kwargs = {} if sandbox else {"sandbox": False}
try:
    config = GradeConfig.from_env(**kwargs)
except TypeError:  # a grader without the option
    config = GradeConfig.from_env()
times = {ex: [] for ex in exercises}
with WarmServer(config) as server:
    grade(find(exercises[0]), Path(sys.argv[1]) / "solutions" / find(exercises[0]).id / "dag.py",
          config, server)  # warm-up
    for _ in range(rounds):
        for ex in exercises:
            exercise = find(ex)
            started = time.monotonic()
            report = grade(exercise, Path(sys.argv[1]) / "solutions" / exercise.id / "dag.py", config, server)
            times[ex].append(time.monotonic() - started)
            assert report.status == "pass", (ex, [c.message for c in report.checks if c.status != "pass"])
print(json.dumps(times))
"""


def _baseline_rev() -> str:
    added = subprocess.run(["git", "log", "--diff-filter=A", "--format=%H", "--",
                            "autograder/sandbox/__init__.py"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    if not added:
        raise SystemExit("No commit adds autograder/sandbox yet: pass --baseline REV.")
    return f"{added[-1]}^"


def _measure(tree: Path, rounds: int, sandbox: bool, exercises: list[str]) -> dict[str, list[float]]:
    done = subprocess.run([sys.executable, "-c", TIMER, str(tree), str(rounds), "1" if sandbox else "0",
                           *exercises], cwd=tree, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"Timing in {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", help="git revision of the grader to compare with")
    parser.add_argument("--exercises", nargs="+", default=["ex02", "ex05", "ex01"])
    args = parser.parse_args()
    rev = args.baseline or _baseline_rev()
    with tempfile.TemporaryDirectory(prefix="grader-baseline-") as folder:
        tree = Path(folder) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=ROOT,
                       capture_output=True, check=True)
        try:
            print(f"baseline {rev}: warming up and timing ...", flush=True)
            base = _measure(tree, args.rounds, True, args.exercises)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                           capture_output=True)
    print("sandboxed and without sandbox ...", flush=True)
    boxed = _measure(ROOT, args.rounds, True, args.exercises)
    bare = _measure(ROOT, args.rounds, False, args.exercises)
    print(f"\n{'exercise':10}{'baseline':>10}{'no sandbox':>12}{'sandboxed':>11}"
          f"{'/ baseline':>12}{'/ no sandbox':>14}")
    for ex in args.exercises:
        b, n, s = (statistics.median(t[ex]) for t in (base, bare, boxed))
        print(f"{ex:10}{b:9.2f}s{n:11.2f}s{s:10.2f}s{s / b:11.2f}x{s / n:13.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
