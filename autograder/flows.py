"""What the grading process does beyond one DAG's runs: the runs that asset events trigger, and a
file that arrives while a run waits for it.

Runs in the grading process (``autograder.sandbox.supervise``), never in a sandbox. Asset runs are
made by Airflow's own machinery: the asset events the producer's tasks recorded through the
Execution API queue the consumer (``AssetDagRunQueue``), and the scheduler's own function creates
its run from them; learner code can write none of these rows.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TRIGGERED_RUN = 100  # the run index of the first triggered run, in events and task logs
MAX_TRIGGERED = 3  # a file with many consumers gets this many of their runs, oldest first


def task_facts(task: Any) -> dict[str, Any]:
    """The asset and sensor facts of one deserialized task."""
    return {"outlets": sorted({str(a.uri) for a in getattr(task, "outlets", None) or ()
                               if getattr(a, "uri", None)}),
            "sensor": hasattr(task, "reschedule"),  # set for sensors only when deserialized
            "reschedule": bool(getattr(task, "reschedule", False))}


def dag_facts(dag: Any) -> dict[str, Any]:
    """The URIs of the assets an asset-triggered timetable waits for ([] for a time schedule), and
    whether any one of them is enough (``a | b``) rather than all (a list, ``a & b``)."""
    condition = getattr(dag.timetable, "asset_condition", None)
    if condition is None:
        return {"schedule_assets": [], "schedule_any": False}
    try:
        uris = sorted({str(asset.uri) for _, asset in condition.iter_assets()})
    except Exception:  # an asset alias, say: no URI to compare
        uris = []
    return {"schedule_assets": uris, "schedule_any": type(condition).__name__.endswith("AssetAny")}


def deserialize_others(parsed: dict, events: Any) -> dict[str, Any]:
    """The file's other DAGs the exercise grades, as the scheduler reads them."""
    from airflow.serialization.serialized_objects import DagSerialization

    found = {}
    for dag_id, data in (parsed.get("others") or {}).items():
        try:
            found[dag_id] = DagSerialization.from_dict(data)
        except Exception as exc:
            events.send(event="other_unreadable", dag_id=dag_id,
                        message=f"{type(exc).__name__}: {str(exc)[:500]}")
    return found


def unpause() -> None:
    """Switch every stored DAG on, as a learner does in the UI: Airflow queues no asset-triggered
    run for a paused DAG."""
    from sqlalchemy import update

    from airflow import settings
    from airflow.models.dag import DagModel

    session = settings.Session()
    session.execute(update(DagModel).values(is_paused=False))
    session.commit()


def run_triggered(others: dict[str, Any], spec: dict, launcher: Any, events: Any) -> None:
    """Create the runs that the asset events of the graded runs queued, with the scheduler's own
    function, and run each like the graded run."""
    from sqlalchemy import select

    from airflow import settings
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.sdk import timezone
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType

    from autograder.sandbox.supervise import run_dag

    if launcher is None:
        return
    session = settings.Session()
    for dag in others.values():
        for task in dag.tasks:
            task.retries = 0  # as in the graded run: a failing task reports at once
    query, triggered_date_by_dag = DagModel.dags_needing_dagruns(session)
    due = [m for m in query.all() if m.dag_id in triggered_date_by_dag and m.dag_id in others]
    if due:
        scheduler = SchedulerJobRunner(job=Job(), executors=[])
        # The scheduler reads the DAG from the serialized_dag table; these are the same DAGs,
        # deserialized once, with retries off.
        scheduler._get_current_dag = lambda dag_id, session: others.get(dag_id)  # type: ignore[method-assign]
        scheduler._create_dag_runs_asset_triggered(dag_models=due, session=session)
    session.commit()
    runs = session.scalars(select(DagRun).where(DagRun.run_type == DagRunType.ASSET_TRIGGERED)
                           .order_by(DagRun.id).limit(MAX_TRIGGERED)).all()
    for index, run in enumerate(runs, start=TRIGGERED_RUN):
        events.send(event="phase", phase=f"run{index}")
        run.dag = others[run.dag_id]
        run.state = DagRunState.RUNNING  # as the scheduler starts a queued run
        run.start_date = timezone.utcnow()
        session.commit()
        try:
            state = run_dag(others[run.dag_id], None, spec, launcher, events, index, run=run)
            events.send(event="ran", run=index, dag_id=run.dag_id, state=state)
        except Exception as exc:
            events.send(event="ran", run=index, dag_id=run.dag_id, state="error",
                        error={"type": type(exc).__name__, "message": str(exc)[:2000]})


@contextmanager
def arrival(spec: dict, run_index: int, dag: Any) -> Iterator[None]:
    """During run ``run_index``, the exercise's arriving file appears its seconds after the DAG's
    sensor began to wait (as the grader's database says), or after the run began when the DAG has
    no sensor; or it never appears. Afterwards it is gone, so that the next run waits again."""
    given = spec.get("arrival")
    if not given:
        yield
        return
    target = Path(given["target"])
    after = given["after"][run_index] if run_index < len(given["after"]) else None
    stop = threading.Event()
    thread = None
    if after is not None:
        sensors = [t.task_id for t in dag.tasks if hasattr(t, "reschedule")]
        thread = threading.Thread(target=_deliver, daemon=True, args=(
            Path(given["source"]), target, Path(given["staging"]), after, dag.dag_id, sensors, stop))
        thread.start()
    try:
        yield
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=10)
        target.unlink(missing_ok=True)



def _deliver(source: Path, target: Path, staging: Path, after: float, dag_id: str,
             sensors: list[str], stop: threading.Event) -> None:
    """Wait until one of ``sensors`` of the DAG's newest run waits, then ``after`` seconds more,
    then make the file arrive (unless ``stop`` is set first)."""
    from sqlalchemy import bindparam, text

    from airflow import settings

    query = text("SELECT COUNT(*) FROM task_instance WHERE dag_id = :dag AND state IN "
                 "('running', 'up_for_reschedule', 'deferred') AND task_id IN :tasks AND run_id = "
                 "(SELECT run_id FROM dag_run WHERE dag_id = :dag ORDER BY id DESC LIMIT 1)")
    query = query.bindparams(bindparam("tasks", expanding=True))
    while sensors and not stop.is_set():
        with settings.engine.connect() as conn:
            if conn.execute(query, {"dag": dag_id, "tasks": sensors}).scalar():
                break
        stop.wait(0.1)
    if not stop.wait(after):
        _arrive(source, target, staging)


def _arrive(source: Path, target: Path, staging: Path) -> None:
    """Copy ``source`` to ``target`` at once: written in ``staging`` (the grading process's own
    folder, on the same file system) and moved, so the waiting task sees no half-written file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = staging / f".{target.name}.arriving"
    shutil.copyfile(source, partial)
    os.chmod(partial, 0o644)
    os.replace(partial, target)
