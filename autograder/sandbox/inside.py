"""Code that runs inside a sandbox, after ``isolate.enter``: it imports and runs learner code.

Nothing here is trusted by the grader: what these functions send is validated by
``protocol`` and used for structure (the serialized DAG, as Airflow's dag-processor sends it) or
for messages (the learner's exception and line). Task states, XComs, rows and mail are never
taken from here.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any


def error(exc: BaseException, dag_file: str) -> dict:
    """Describe an exception by the deepest frame in the learner's file."""
    if isinstance(exc, SyntaxError) and exc.filename == dag_file:
        return {"type": type(exc).__name__, "message": exc.msg or "", "line": exc.lineno,
                "code": (exc.text or "").rstrip("\n")}
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == dag_file]
    kind = type(exc).__name__
    try:
        message = str(exc)
    except Exception:  # a learner's __str__ that raises
        message = f"<{kind} whose message cannot be shown>"
    detail = getattr(getattr(exc, "error", None), "detail", None)
    if kind == "AirflowRuntimeError" and isinstance(detail, dict) and detail.get("exception_type"):
        # The supervisor's side failed on the task's behalf (storing an XCom, say): its error.
        kind, message = str(detail["exception_type"]), str(detail.get("message", ""))
    elif kind == "AirflowRuntimeError" and isinstance(detail, dict) and detail.get("message"):
        message = str(detail["message"])
    if isinstance(exc, SystemExit):
        message = f"sys.exit({exc.code!r}) was called"
    return {"type": kind, "message": message[:2000],
            "line": frames[-1].lineno if frames else None,
            "code": frames[-1].line if frames else None,
            "traceback": "".join(traceback.format_exception(exc))[-4000:]}


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def parse_main(dag_file: str, dag_id: str, out: int) -> None:
    """Import the learner's file as Airflow's dag-processor does and send the DAG serialized."""
    import importlib.util

    from airflow.sdk import DAG
    from airflow.sdk.definitions._internal.contextmanager import DagContext
    from airflow.serialization.serialized_objects import DagSerialization

    module_name = "submission"
    DagContext.current_autoregister_module_name = module_name
    sys.path.insert(0, os.path.dirname(dag_file))
    try:
        loader = importlib.util.spec_from_file_location(module_name, dag_file)
        module = importlib.util.module_from_spec(loader)
        sys.modules[module_name] = module
        loader.loader.exec_module(module)
        found = {id(o): o for o in vars(module).values() if isinstance(o, DAG)}
        found.update({id(d): d for d, _ in DagContext.autoregistered_dags})
        dags = {d.dag_id: d for d in found.values()}  # one per id, as Airflow keeps them
        dag = dags.get(dag_id) or (next(iter(dags.values())) if len(dags) == 1 else None)
        # Every DAG's id, a repeated one as often as it occurs: the grader tells the learner.
        result: dict[str, Any] = {"ok": True, "dag_ids": sorted(d.dag_id for d in found.values()),
                                  "dag_id": None, "serialized": None}
        if dag is not None:
            result.update(dag_id=dag.dag_id, serialized=DagSerialization.to_dict(dag))
    except BaseException as exc:  # SystemExit and KeyboardInterrupt included: report, never crash
        result = {"ok": False, "error": error(exc, dag_file)}
    _write_all(out, json.dumps(result, default=str).encode())
    os._exit(0)


def report_task_failures(dag_file: str, out: int) -> None:
    """Wrap the task runner's steps so that a learner exception is described with its line.

    The task runner calls these module-level functions for every task, whatever the operator:
    the places that see each learner exception with its traceback.
    """
    from airflow.sdk.execution_time import task_runner

    def reporting(step: Any, stage: str = "") -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return step(*args, **kwargs)
            except BaseException as exc:
                described = error(exc, dag_file)
                if stage:
                    described["message"] = f"{described['message']} ({stage})"
                try:
                    _write_all(out, (json.dumps({"error": described}, default=str) + "\n").encode())
                except OSError:
                    pass
                raise

        return wrapper

    task_runner._execute_task = reporting(task_runner._execute_task)
    task_runner._prepare = reporting(task_runner._prepare,
                                     "while rendering the task's templates, before it ran")
    task_runner._push_xcom_if_needed = reporting(
        task_runner._push_xcom_if_needed, "while storing the return value as an XCom, after the task ran")
