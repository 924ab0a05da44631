"""What does the sandbox cost a warm grader, per exercise?

For each exercise's reference solution, in one run, warm (one WarmServer per setup, a warm-up
submission first, then rounds that take turns between the setups, so that a change in the
machine's load during the run touches all three alike):
  * sandboxed: the grader as it is (the file imported, and its tasks run, in the sandbox);
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
sandbox = sys.argv[2] == "1"
kwargs = {} if sandbox else {"sandbox": False}
try:
    config = GradeConfig.from_env(**kwargs)
except TypeError:  # a grader without the option
    config = GradeConfig.from_env()
with WarmServer(config) as server:
    print("ready", flush=True)
    for line in sys.stdin:  # one exercise id a line: grade its solution, print the seconds
        exercise = find(line.strip())
        started = time.monotonic()
        report = grade(exercise, Path(sys.argv[1]) / "solutions" / exercise.id / "dag.py", config, server)
        elapsed = time.monotonic() - started
        assert report.status == "pass", [c.message for c in report.checks if c.status != "pass"]
        print(json.dumps(elapsed), flush=True)
"""


def _baseline_rev() -> str:
    added = subprocess.run(["git", "log", "--diff-filter=A", "--format=%H", "--",
                            "autograder/sandbox/__init__.py"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    if not added:
        raise SystemExit("No commit adds autograder/sandbox yet: pass --baseline REV.")
    return f"{added[-1]}^"


class _Timer:
    """One setup's warm grader, kept running between rounds."""

    def __init__(self, tree: Path, sandbox: bool) -> None:
        self._proc = subprocess.Popen([sys.executable, "-c", TIMER, str(tree), "1" if sandbox else "0"],
                                      cwd=tree, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self._proc.stdout.readline().strip() != "ready":
            raise SystemExit(f"The grader in {tree} did not start.")

    def grade(self, exercise: str) -> float:
        self._proc.stdin.write(exercise + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise SystemExit(f"Grading {exercise} failed (see above).")
        return json.loads(line)

    def close(self) -> None:
        self._proc.stdin.close()
        self._proc.wait(60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", help="git revision of the grader to compare with")
    parser.add_argument("--exercises", nargs="+", default=["ex02", "ex05", "ex01"])
    args = parser.parse_args()
    rev = args.baseline or _baseline_rev()
    times: dict[str, dict[str, list[float]]] = {"baseline": {}, "no sandbox": {}, "sandboxed": {}}
    with tempfile.TemporaryDirectory(prefix="grader-baseline-") as folder:
        tree = Path(folder) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=ROOT,
                       capture_output=True, check=True)
        timers: dict[str, _Timer] = {}
        try:
            print(f"baseline {rev}, the grader without sandbox, the grader: warming up ...", flush=True)
            timers = {"baseline": _Timer(tree, True), "no sandbox": _Timer(ROOT, False),
                      "sandboxed": _Timer(ROOT, True)}
            for timer in timers.values():
                timer.grade(args.exercises[0])  # the first grade of a warm grader is not typical
            for round_ in range(args.rounds):
                print(f"round {round_ + 1} of {args.rounds} ...", flush=True)
                for ex in args.exercises:
                    for name, timer in timers.items():
                        times[name].setdefault(ex, []).append(timer.grade(ex))
        finally:
            for timer in timers.values():
                timer.close()
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                           capture_output=True)
    base, bare, boxed = times["baseline"], times["no sandbox"], times["sandboxed"]
    print(f"\n{'exercise':10}{'baseline':>10}{'no sandbox':>12}{'sandboxed':>11}"
          f"{'/ baseline':>12}{'/ no sandbox':>14}")
    for ex in args.exercises:
        b, n, s = (statistics.median(t[ex]) for t in (base, bare, boxed))
        print(f"{ex:10}{b:9.2f}s{n:11.2f}s{s:10.2f}s{s / b:11.2f}x{s / n:13.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
