"""Grade a whole class on Airflow itself: mapped tasks of a few submissions each.

Trigger it with a run configuration naming the nbgrader-style folder of submissions and the
output folder, e.g. `{"submitted": "/srv/class/submitted", "out": "/srv/class/graded"}`. It writes
exactly what `python -m autograder grade-class` writes (grades.csv, gradebook.csv, one JSON report
and one feedback file per submission) and, like it, skips submissions already graded unchanged.
Each mapped task grades a few submissions (about a twelfth of the class, at most 8; the run
configuration's "per_task" sets the number), named in the UI by their students.

A setup task starts a grading service (`python -m autograder serve`): one warm grader that the
mapped tasks send their submissions to, so that each submission costs a fork instead of Airflow's
start-up; a teardown task stops it, whatever happened in between. Every submission is still
graded in a sandboxed child process of its own. A mapped task that cannot reach the service (it
runs on another machine, or the service failed to start) grades its submission itself.

On the course's embedded lab it runs with the LocalExecutor. It also runs on Airflow's
CeleryExecutor (tested with `python -m course cluster start --workers 2`: Redis as broker,
PostgreSQL as metadata database). There, a mapped task that cannot reach the setup task's service
(another machine, or a worker with a grader folder of its own, `COURSE_GRADER_DIR`) grades through
its host's warm grader, which `cluster start` starts beside each worker (else the first such task on
the host starts it) and which stops when its worker ends or after five idle minutes. Workers need
the course environment, the submitted files on shared storage and write access to the output folder.
A worker that dies mid-run loses nothing: its tasks are retried on another worker, which skips the
submissions graded before the worker died, and each report is written atomically, so grades.csv has
one row per submission. The KubernetesExecutor is untested.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, setup, task, teardown

# With "per_task" 0, a class is split into about this many grading tasks of at most MAX_PER_TASK
# submissions: few enough that Airflow's per-task start-up is paid rarely, enough to keep every
# worker busy to the end.
TASKS_PER_CLASS = 12
MAX_PER_TASK = 8


@dag(
    dag_id="grade_class",
    schedule=None,
    start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={
        "submitted": Param("", type="string", description="SUBMITTED/<student>/<exercise>/dag.py"),
        "out": Param("", type="string", description="folder for grades, reports and feedback"),
        "timeout": Param(120, type="number", description="seconds each test run may take"),
        "per_task": Param(0, type="integer", minimum=0,
                          description="submissions graded per mapped task; 0 chooses"),
        "no_sandbox": Param(False, type="boolean",
                            description="grade without isolating submissions (trusted ones only)"),
    },
    tags=["course", "grading"],
)
def grade_class():
    @setup
    def start_grading_service() -> str | None:
        """A warm grader for the mapped tasks; its Unix socket, or None to grade cold."""
        import os
        import tempfile
        from pathlib import Path

        from autograder import service

        if os.environ.get("COURSE_GRADER_DIR"):
            print("This worker has a grader of its own (COURSE_GRADER_DIR): each worker's tasks "
                  "grade through their worker's grader.")
            return None
        sock = Path(tempfile.mkdtemp(prefix="grading-")) / "service.sock"
        try:
            service.start(sock)
        except (RuntimeError, TimeoutError) as exc:
            print(f"{exc} The mapped tasks grade without it (slower, same results).")
            return None
        return str(sock)

    @teardown
    def stop_grading_service(sock: str | None) -> None:
        from pathlib import Path

        from autograder import service

        if sock and not service.stop(Path(sock)):
            print(f"No grading service answered on {sock}: it had stopped already.")

    @task
    def list_submissions(params: dict) -> list[dict]:
        """The submissions whose graded report is missing or out of date."""
        from pathlib import Path

        from autograder.classroom import find_submissions, pending

        submitted, out = Path(params["submitted"]), Path(params["out"])
        if not submitted.is_dir():
            raise ValueError(f"submitted={submitted} is not a folder: trigger the DAG with "
                             '{"submitted": "/path/to/submitted", "out": "/path/to/out"}')
        from autograder.sandbox import isolate

        if not params.get("no_sandbox") and (why := isolate.available()):
            raise RuntimeError(f"Cannot grade a class safely: {why}. Run the lab as root on Linux, "
                               'or trigger with {"no_sandbox": true} if you trust every submission.')
        todo, _ = pending(find_submissions(submitted), out)
        todo = [{"student": sub.student, "exercise": sub.exercise.id, "path": str(sub.path),
                 "hash": digest} for sub, digest in todo]
        # A few submissions per task: Airflow's start-up of a task costs more than a warm grade.
        size = int(params.get("per_task") or 0) or min(MAX_PER_TASK, -(-len(todo) // TASKS_PER_CLASS))
        return [todo[i:i + size] for i in range(0, len(todo), size)]

    # Retried when its worker dies mid-grade: reports are written atomically and a retry skips
    # the submissions graded before the worker died, so grades.csv has one row per submission.
    @task(map_index_template="{{ task.op_kwargs['batch'] | map(attribute='student') | join(', ') }}",
          retries=2, retry_delay=pendulum.duration(seconds=2))
    def grade_submission(batch: list[dict], service: str | None, params: dict) -> list[dict]:
        """Grade a few submissions, each in its own sandbox, and store their reports and feedback."""
        import tempfile
        from pathlib import Path

        from autograder.classroom import (Refused, Submission, refused_report, snapshot, store_report,
                                          stored_report)
        from autograder.config import GradeConfig
        from autograder.exercises import find
        from autograder.grade import grade
        from autograder.service import answers, grade_remotely, host_grader

        out, timeout = Path(params["out"]), float(params["timeout"])
        sock = Path(service) if service and answers(Path(service)) else None
        done = []
        for submission in batch:
            exercise, path = find(submission["exercise"]), Path(submission["path"])
            sub = Submission(submission["student"], exercise, path)
            before = stored_report(out, sub.student, exercise.id)
            if before.get("content_hash") == submission["hash"]:  # graded by an earlier try of this task
                done.append({"student": sub.student, "exercise": exercise.id, "status": before["status"],
                             "score": before["score"], "warm": False})
                continue
            report, warm = None, False
            try:
                data = snapshot(sub)
            except Refused as exc:
                report = refused_report(sub, str(exc))
            if report is None:
                with tempfile.TemporaryDirectory(prefix="grade-class-") as folder:
                    copy = Path(folder) / "dag.py"  # the bytes graded, in a folder only the grader sees
                    copy.write_bytes(data)
                    sock = sock or host_grader()
                    report = grade_remotely(sock, exercise.id, copy, timeout) if sock else None
                    warm = report is not None
                    if report is None:
                        report = grade(exercise, copy, GradeConfig.from_env(
                            run_timeout=timeout, sandbox=False if params.get("no_sandbox") else None))
                report.submission = f"{sub.key}/dag.py"
            digest = None if submission["hash"].startswith("refused:") else submission["hash"]
            store_report(out, sub.student, exercise, report, digest)
            done.append({"student": sub.student, "exercise": exercise.id, "status": report.status,
                         "score": report.score, "warm": warm})
        return done

    @task(trigger_rule="all_done")
    def write_grades(graded: list[dict], params: dict) -> dict:
        """grades.csv, gradebook.csv and class-report.html over every stored report, old and new."""
        from pathlib import Path

        from autograder.class_report import write_class_report
        from autograder.classroom import find_submissions, write_tables

        rows = write_tables(Path(params["out"]), find_submissions(Path(params["submitted"])))
        write_class_report(Path(params["out"]))
        graded = [row for batch in graded or [] for row in batch]
        return {"submissions": len(rows), "passed": sum(r["status"] == "pass" for r in rows),
                "graded_now": len(graded), "graded_warm": sum(bool(g.get("warm")) for g in graded)}

    grading_service = start_grading_service()
    graded = grade_submission.partial(service=grading_service).expand(batch=list_submissions())
    # The tables need no grader: on two workers they are written while the service stops.
    write_grades(graded)
    graded >> stop_grading_service(grading_service)


grade_class()
