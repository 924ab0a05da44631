"""Command line of the autograder.

    python -m autograder list
    python -m autograder grade EXERCISE [--submission PATH] [--format text|json] [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.config import GradeConfig
from autograder.exercises import all_exercises, find
from autograder.grade import grade
from autograder.render import as_json, as_text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the exercises")
    g = sub.add_parser("grade", help="grade one exercise")
    g.add_argument("exercise", help="exercise id, or a unique prefix of it (ex02)")
    g.add_argument("--submission", type=Path, help="the DAG file (default: exercises/<id>/dag.py)")
    g.add_argument("--format", choices=["text", "json"], default="text")
    g.add_argument("--timeout", type=float, help="seconds the test run may take (default 120)")
    args = parser.parse_args(argv)

    if args.command == "list":
        for ex in all_exercises().values():
            print(f"{ex.id:28}{ex.title}")
        return 0
    try:
        exercise = find(args.exercise)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    if args.submission is not None and args.submission.is_dir():
        print(f"error: {args.submission} is a folder; give the DAG file, e.g. "
              f"{args.submission / 'dag.py'}", file=sys.stderr)
        return 2
    config = GradeConfig.from_env(run_timeout=args.timeout)
    report = grade(exercise, args.submission, config)
    if args.format == "json":
        print(as_json(report))
    else:
        print(as_text(report, color=sys.stdout.isatty()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
