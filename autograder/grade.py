"""Grade one submission: collect the facts, run the exercise's checks, build the report."""

from __future__ import annotations

import re
import time
from pathlib import Path

from autograder.checks import evaluate
from autograder.common import run_order
from autograder.config import GradeConfig, default_submission, display_path
from autograder.exercises import Exercise
from autograder.model import Report
from autograder.text import plain
from autograder.runner import WarmServer, collect, task_log


MAX_LOGS = 2  # more failed tasks than that usually share one cause


def grade(exercise: Exercise, submission: Path | None = None,
          config: GradeConfig | None = None, server: WarmServer | None = None,
          shown_as: str | None = None) -> Report:
    """Grade one submission; pass a WarmServer to grade many quickly. ``shown_as`` names the
    file in the report when what is graded is a copy."""
    config = config or GradeConfig.from_env()
    if exercise.engine != "airflow":  # Prefect or Dagster: their own environment, the same report
        from autograder.orchestrators.client import grade as grade_elsewhere

        return grade_elsewhere(exercise, submission, config, shown_as)
    submission = submission or default_submission(exercise)
    started = time.monotonic()
    facts = collect(exercise, submission, config, server)
    facts.shown_as = shown_as or display_path(submission)
    results = evaluate(exercise.checks, facts)
    report = Report(exercise=exercise.id, submission=facts.shown_as,
                    checks=results)
    if facts.not_isolated:
        report.notes.append(f"Not isolated: {facts.not_isolated}. Your DAG ran with your own rights; "
                            "grades for a class are only made in the sandbox.")
    if not exercise.hidden_data.exists() and exercise.sample_data.exists():
        report.notes.append("Graded on your sample data in data/; your instructor grades on other "
                            "rows, so make sure your code reads the file rather than fixed values.")
    if facts.run is not None:
        shown: set[str] = set()
        # Upstream first, like the check's message: the first failing task's log comes first.
        order = run_order(facts)
        states = dict(facts.run.task_states)
        # Then the tasks of the runs its asset events triggered (a consumer DAG's).
        for runs in facts.triggered.values():
            for run in runs:
                states.update({t: s for t, s in run.task_states.items() if t not in states})
        for task_id in [*(t for t in order if t in states), *sorted(set(states) - set(order))]:
            state = states[task_id]
            log = task_log(facts.output_tail, task_id, dags_folder=facts.dags_folder) \
                if state == "failed" else ""
            same = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "", log)  # logs differ only in time
            if log and same not in shown and len(shown) < MAX_LOGS:
                report.task_logs[task_id] = plain(log, 20_000)
                shown.add(same)
    report.duration_s = time.monotonic() - started
    return report
