"""Command line of the autograder.

    python -m autograder list
    python -m autograder checklist [--write] [EXERCISE...]  (the README checklists, from the specs)
    python -m autograder grade EXERCISE [--submission PATH] [--format text|json] [--timeout SECONDS]
                                        [--watch] [--cold]
    python -m autograder grade-class SUBMITTED --out OUT [--jobs N] [--nbgrader-db GRADEBOOK]
    python -m autograder class-report OUT                 (rebuild OUT/class-report.html)
    python -m autograder serve SOCKET [--idle SECONDS] [--keep] [--owner PID]  (the graders)

EXERCISE is an id such as ex02_parallel_regions, or a unique prefix of it (ex02). Several
exercises may be given (each is graded from its default file); with --format json each report
is then one line. The exit code is 0 whenever reports were produced, whatever their verdict.

`grade` asks the lab's warm grader first (about 2 s; `make lab` and `make airflow-start` run one)
and grades here when none answers (Airflow's start-up each time, about 20 s): the report is the
same. --cold always grades here. --watch grades again on every save of the file; Ctrl-C stops.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import sys
import time
from contextlib import ExitStack
from pathlib import Path

# Only what a grade answered by the lab's grader needs: Airflow and the runner load on a cold run.
from autograder.config import REPO_ROOT, GradeConfig, default_submission, display_path
from autograder.exercises import all_exercises, find, resolve
from autograder.model import Report
from autograder.render import as_json, as_text

SOCKET_ENV = "AUTOGRADER_SOCKET"


def _checklist(args: argparse.Namespace) -> int:
    from autograder import checklist

    exercises = [find(name) for name in args.exercise] or list(all_exercises().values())
    for ex in exercises:
        if not args.write:
            print(checklist.render(ex))
        elif checklist.write(ex):
            print(f"{checklist.readme(ex).relative_to(REPO_ROOT)}: checklist written")
        else:
            print(f"{checklist.readme(ex).relative_to(REPO_ROOT)}: already as the spec says")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the exercises")
    cl = sub.add_parser("checklist", help="print (or --write into each README) the checklist the spec gives")
    cl.add_argument("exercise", nargs="*", help="exercise ids or prefixes (default: all)")
    cl.add_argument("--write", action="store_true", help="write it into exercises/<id>/README.md")
    g = sub.add_parser("grade", help="grade one exercise")
    g.add_argument("exercise", nargs="+", help="exercise id, or a unique prefix of it (ex02)")
    g.add_argument("--submission", type=Path, help="the DAG file (default: exercises/<id>/dag.py)")
    g.add_argument("--format", choices=["text", "json"], default="text")
    g.add_argument("--timeout", type=float, help="seconds the test run may take (default 120)")
    g.add_argument("--no-sandbox", action="store_true", help="run the DAG with your own rights")
    g.add_argument("--watch", action="store_true",
                   help="grade again on every save of the file, until Ctrl-C")
    g.add_argument("--cold", action="store_true",
                   help="grade here, without the lab's warm grader (same report, slower)")
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
    sv.add_argument("--owner", type=int, default=None,
                    help="stop when the process with this id ends (a Celery worker's grader)")
    sv.add_argument("--keep", action="store_true",
                    help="run it again when it dies or, after an idle stop, when a grade asks (the lab)")
    args = parser.parse_args(argv)

    if args.command == "list":
        for ex in all_exercises().values():
            print(f"{ex.id:28}{ex.title}")
        return 0
    if args.command == "checklist":
        return _checklist(args)
    if args.command == "grade-class":
        return _grade_class(args)
    if args.command == "class-report":
        return _class_report(args.out)
    if args.command == "serve":
        from autograder.service import keep, serve

        return keep(args.socket, args.idle) if args.keep else serve(args.socket, args.idle, args.owner)
    try:
        exercises = [resolve(name) for name in args.exercise]  # ids: the exercises load if needed
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
    if args.watch and len(exercises) > 1:
        print("error: --watch goes with one exercise: `python -m autograder grade ex02 --watch`.",
              file=sys.stderr)
        return 2
    config = GradeConfig.from_env(run_timeout=args.timeout, sandbox=False if args.no_sandbox else None)
    from autograder.world import warehouse_problem

    problem = warehouse_problem(config.warehouse_url)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    # The lab's grader runs with the sandbox on: a run without it is made here.
    sock = None if args.cold or not config.sandbox else grader_socket()
    # Several exercises, or one graded again and again: without the lab's grader, one fork server
    # here pays Airflow's start-up once.
    several = len(exercises) > 1 or args.watch
    with Grader(config, sock, several=several, text=args.format == "text") as grader:
        if args.watch:
            return _watch(exercises[0], args.submission or default_submission(exercises[0]), grader,
                          args.format)
        for n, exercise in enumerate(exercises):
            report = grader.grade(exercise, args.submission)
            if args.format == "json":
                print(as_json(report), flush=True)
            else:
                print(("\n" if n else "") + as_text(report, color=sys.stdout.isatty()), flush=True)
    return 0


def grader_socket() -> Path:
    """Where the lab's warm grader listens: ``$AUTOGRADER_SOCKET``, else in the lab's home."""
    if os.environ.get(SOCKET_ENV):
        return Path(os.environ[SOCKET_ENV])
    from course.paths import LabPaths

    return LabPaths.default().grader_socket


class Grader:
    """Grades through the lab's warm grader when it answers, else here: the same report.

    Here, several exercises share one fork server (Airflow's start-up paid once)."""

    def __init__(self, config: GradeConfig, sock: Path | None, several: bool = False,
                 text: bool = True) -> None:
        self.config, self.sock, self.several, self.text = config, sock, several, text
        self._stack = ExitStack()
        self._server = None

    def grade(self, exercise: str, submission: Path | None) -> Report:
        """The report on ``submission`` (default: the exercise's file) for the exercise ``exercise``."""
        path = submission or default_submission(exercise)
        if self.sock is not None and self._service_up():
            from autograder.service import grade_remotely

            report = grade_remotely(self.sock, exercise, path, self.config.run_timeout,
                                    shown_as=display_path(path), task_logs=self.text,
                                    warehouse_url=self.config.warehouse_url)
            if report is not None:
                return report
        from autograder.grade import grade

        # Prefect and Dagster exercises run in their own environment: no Airflow to warm up.
        if self.several and self._server is None and find(exercise).engine == "airflow":
            from autograder.runner import WarmServer

            self._server = self._stack.enter_context(WarmServer(self.config))
        return grade(find(exercise), submission, self.config, self._server)

    def _service_up(self) -> bool:
        from autograder.service import answers, wake_file

        if self.sock.exists() and answers(self.sock):
            return True
        wake = wake_file(self.sock)
        if self.sock.parent.is_dir() and _keeper_alive(self.sock):
            # The lab's grader is warming up, or stopped when idle: this wakes it in the second case.
            wake.touch()
            print("The lab's grader is not ready yet (warming up, or waking after a long pause): "
                  "grading here this time, which takes longer.", file=sys.stderr)
        return False

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def _keeper_alive(sock: Path) -> bool:
    """The lab's keeper of the grader runs (it wrote its process id beside the socket)."""
    try:
        os.kill(int(sock.with_name(sock.name + ".pid").read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def _fingerprint(path: Path) -> tuple[int, int, str] | None:
    """What changes when the file is saved: modification time, size and content hash."""
    try:
        info = path.stat()
        return info.st_mtime_ns, info.st_size, hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _watch(exercise: str, path: Path, grader: Grader, fmt: str) -> int:
    """Grade ``path`` now and again after every save that changes it, until Ctrl-C."""
    tty = sys.stdout.isatty() and fmt == "text"
    # Ctrl-C stops watching, even where SIGINT came ignored (a job started in the background).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    graded: str | None = None  # the content hash last graded
    seen: tuple[int, int, str] | None = None
    try:
        while True:
            now = _fingerprint(path)
            if now is not None and now != seen:
                time.sleep(0.2)
                if _fingerprint(path) != now:
                    continue  # still being written (an editor truncates, then writes): look again
                seen = now
                if now[2] != graded:  # saved with other content (not just touched)
                    graded = now[2]
                    report = grader.grade(exercise, path)
                    if fmt == "json":
                        print(as_json(report), flush=True)
                    else:
                        if tty:
                            print("\033[H\033[2J", end="")  # a fresh screen for each report
                        print(as_text(report, color=tty))
                        print(f"\nWatching {display_path(path)}: it is graded again when you save it. "
                              f"Ctrl-C stops. (graded at {time.strftime('%H:%M:%S')})", flush=True)
            time.sleep(0.3)
    except KeyboardInterrupt:
        if fmt == "text":
            print("\nStopped watching.", flush=True)
        return 0


def _grade_class(args: argparse.Namespace) -> int:
    from autograder.classroom import find_submissions, grade_class
    from autograder.world import warehouse_problem

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
    config = GradeConfig.from_env(run_timeout=args.timeout,
                                  sandbox=False if args.no_sandbox else None)
    problem = warehouse_problem(config.warehouse_url)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    rows = grade_class(args.submitted, args.out, jobs=args.jobs, config=config,
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
