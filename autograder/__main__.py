"""Command line of the autograder.

    python -m autograder list
    python -m autograder grade EXERCISE [--submission PATH] [--format text|json] [--timeout SECONDS]
    python -m autograder grade-class SUBMITTED --out OUT [--jobs N] [--nbgrader-db GRADEBOOK]
    python -m autograder class-report OUT                 (rebuild OUT/class-report.html)
    python -m autograder serve SOCKET [--idle SECONDS]     (used by the grade_class DAG)

EXERCISE is an id such as ex02_parallel_regions, or a unique prefix of it (ex02). Several
exercises may be given (each is graded from its default file); with --format json each report
is then one line. The exit code is 0 whenever reports were produced, whatever their verdict.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path

from autograder.config import REPO_ROOT, GradeConfig
from autograder.exercises import all_exercises, find
from autograder.grade import default_submission, grade
from autograder.render import as_json, as_text
from autograder.runner import WarmServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the exercises")
    g = sub.add_parser("grade", help="grade one exercise")
    g.add_argument("exercise", nargs="+", help="exercise id, or a unique prefix of it (ex02)")
    g.add_argument("--submission", type=Path, help="the DAG file (default: exercises/<id>/dag.py)")
    g.add_argument("--format", choices=["text", "json"], default="text")
    g.add_argument("--timeout", type=float, help="seconds the test run may take (default 120)")
    g.add_argument("--no-sandbox", action="store_true", help="run the DAG with your own rights")
    gc = sub.add_parser("grade-class", help="grade every SUBMITTED/<student>/<exercise>/dag.py")
    gc.add_argument("submitted", type=Path)
    gc.add_argument("--out", type=Path, required=True, help="folder for grades, reports, feedback")
    gc.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: cores)")
    gc.add_argument("--timeout", type=float, help="seconds each test run may take (default 120)")
    gc.add_argument("--nbgrader-db", type=Path, help="nbgrader gradebook.db to merge notebook scores from")
    gc.add_argument("--no-sandbox", action="store_true",
                    help="grade without isolating submissions (only if you trust every one)")
    cr = sub.add_parser("class-report", help="rebuild OUT/class-report.html from the stored reports")
    cr.add_argument("out", type=Path, help="the folder grade-class wrote")
    sv = sub.add_parser("serve", help="grade submissions sent to a Unix socket (the grade_class DAG)")
    sv.add_argument("socket", type=Path)
    sv.add_argument("--idle", type=float, default=600.0, help="stop after this many idle seconds")
    args = parser.parse_args(argv)

    if args.command == "list":
        for ex in all_exercises().values():
            print(f"{ex.id:28}{ex.title}")
        return 0
    if args.command == "grade-class":
        return _grade_class(args)
    if args.command == "class-report":
        return _class_report(args.out)
    if args.command == "serve":
        from autograder.service import serve

        return serve(args.socket, args.idle)
    try:
        exercises = [find(name) for name in args.exercise]
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    if args.submission is not None:
        if len(exercises) > 1:
            print("error: --submission goes with one exercise; grade the others separately.",
                  file=sys.stderr)
            return 2
        if args.submission.is_dir():
            print(f"error: {args.submission} is a folder; give the DAG file, e.g. "
                  f"{args.submission / 'dag.py'}", file=sys.stderr)
            return 2
        if not args.submission.is_file():
            print(f"error: {args.submission} does not exist or is not a file.", file=sys.stderr)
            return 2
    for exercise in exercises if args.submission is None else []:
        path = default_submission(exercise)
        if not path.is_file():
            print(f"error: {path} is missing; restore the starter with "
                  f"`git checkout -- {path.relative_to(REPO_ROOT)}`.", file=sys.stderr)
            return 2
    config = GradeConfig.from_env(run_timeout=args.timeout, sandbox=False if args.no_sandbox else None)
    with ExitStack() as stack:
        # Several exercises: pay Airflow's start-up once, in a fork server, not once per exercise.
        server = stack.enter_context(WarmServer(config)) if len(exercises) > 1 else None
        for n, exercise in enumerate(exercises):
            report = grade(exercise, args.submission, config, server)
            if args.format == "json":
                print(as_json(report), flush=True)
            else:
                print(("\n" if n else "") + as_text(report, color=sys.stdout.isatty()), flush=True)
    return 0


def _grade_class(args: argparse.Namespace) -> int:
    from autograder.classroom import find_submissions, grade_class

    if not args.submitted.is_dir():
        print(f"error: {args.submitted} is not a folder of <student>/<exercise>/dag.py submissions.",
              file=sys.stderr)
        return 2
    if not find_submissions(args.submitted):
        print(f"error: no <student>/<exercise_id>/dag.py under {args.submitted}; exercise ids are "
              f"{', '.join(all_exercises())}.", file=sys.stderr)
        return 2
    if args.nbgrader_db is not None and not args.nbgrader_db.is_file():
        print(f"error: {args.nbgrader_db} does not exist.", file=sys.stderr)
        return 2
    rows = grade_class(args.submitted, args.out, jobs=args.jobs,
                       config=GradeConfig.from_env(run_timeout=args.timeout,
                                                   sandbox=False if args.no_sandbox else None),
                       nbgrader_db=args.nbgrader_db)
    passed = sum(r["status"] == "pass" for r in rows)
    print(f"{passed}/{len(rows)} submissions passed. Grades: {args.out / 'grades.csv'}; "
          f"gradebook: {args.out / 'gradebook.csv'}; feedback: {args.out / 'feedback'}/; "
          f"class report: {args.out / 'class-report.html'}")
    return 0


def _class_report(out: Path) -> int:
    from autograder.class_report import render_table, write_class_report

    if not any((out / "reports").glob("*/*.json")):
        print(f"error: no reports under {out / 'reports'}; run `python -m autograder grade-class "
              f"SUBMITTED --out {out}` first.", file=sys.stderr)
        return 2
    path, summaries = write_class_report(out)
    print(render_table(summaries))
    print(f"\nClass report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
