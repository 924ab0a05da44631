"""What runs inside the sandbox, as the throwaway uid: import the learner's file, describe what it
declares, run it once on the grading data, and say so on one pipe as JSON lines.

Everything said here is the learner's process speaking: the caller uses it for structure (what
the file declares, which its own code decides anyway) and for messages, never as proof that the
run produced its results (see ``autograder.orchestrators``).
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import re
import sys
import traceback
from pathlib import Path
from typing import Any

MODULE = "learner_pipeline"


def error_info(exc: BaseException, path: str) -> dict:
    """The exception, located at the deepest line of the learner's file it went through."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == path]
    if isinstance(exc, SyntaxError) and exc.filename == path:
        line, code = exc.lineno, exc.text or ""
    elif frames:
        line, code = frames[-1].lineno, frames[-1].line or ""
    else:
        line, code = None, None
    return {"type": type(exc).__name__, "message": str(exc)[:2000], "line": line,
            # the learner's function, not the comprehension inside it
            "function": next((f.name for f in reversed(frames) if not f.name.startswith("<")), None),
            "code": (code or "")[:300] or None,
            "traceback": "".join(traceback.format_exception(exc))[-4000:]}


class Channel:
    def __init__(self, fd: int) -> None:
        self.out = os.fdopen(fd, "wb", buffering=0)

    def say(self, event: str, **data: Any) -> None:
        self.out.write(json.dumps({"event": event, **data}, default=repr).encode() + b"\n")


def load(path: str) -> Any:
    sys.path.insert(0, str(Path(path).parent))
    spec = importlib.util.spec_from_file_location(MODULE, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE] = module
    spec.loader.exec_module(module)
    return module


# --- Prefect ---------------------------------------------------------------------------------

def prefect_structure(module: Any) -> dict:
    from prefect import Flow, Task

    flows, tasks, schedules = {}, {}, []
    for attr, value in vars(module).items():
        if isinstance(value, Flow):
            try:
                required = [p.name for p in inspect.signature(value.fn).parameters.values()
                            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            except (TypeError, ValueError):
                required = []
            flows[attr] = {"name": value.name, "fn": getattr(value.fn, "__name__", attr),
                           "required": required}
        elif isinstance(value, Task):
            delay = value.retry_delay_seconds
            tasks[attr] = {"name": value.name, "fn": getattr(value.fn, "__name__", attr),
                           "retries": value.retries,
                           "retry_delay_seconds": list(delay) if isinstance(delay, (list, tuple))
                           else delay}
        elif type(value).__name__ in ("RunnerDeployment", "Cron", "CronSchedule", "Schedule"):
            schedules.append(repr(value)[:500])
    return {"flows": flows, "tasks": tasks, "schedules": schedules}


def prefect_run(module: Any, flow_attr: str, path: str, api_url: str | None) -> dict:
    from prefect import Task
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    for value in vars(module).values():
        if isinstance(value, Task):  # a failing task reports at once, as in Airflow's grading
            value.retries, value.retry_delay_seconds = 0, 0
    updates = {PREFECT_HOME: os.environ["PREFECT_HOME"]}
    if api_url:
        updates[PREFECT_API_URL] = api_url
    with temporary_settings(updates=updates):
        state = getattr(module, flow_attr)(return_state=True)
        outcome = {"state": state.type.value if state.type else None, "name": state.name,
                   "message": (state.message or "")[:2000]}
        if state.is_failed() or state.is_crashed():
            try:
                state.result(raise_on_failure=True)
            except BaseException as exc:  # the learner's exception, for the message
                outcome["error"] = error_info(exc, path)
    return outcome


# --- Dagster ---------------------------------------------------------------------------------

def dagster_structure(module: Any) -> dict:
    import dagster as dg

    found = [(attr, v) for attr, v in vars(module).items() if isinstance(v, dg.Definitions)]
    if not found:
        return {"defs": None}
    attr, defs = next(((a, v) for a, v in found if a == "defs"), found[0])
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in graph.get_all_asset_keys() if hasattr(graph, "get_all_asset_keys") else graph.all_asset_keys:
        node = graph.get(key)
        if not node.is_materializable:
            continue
        op = getattr(node.assets_def, "op", None) if node.assets_def.is_executable else None
        policy = getattr(op, "retry_policy", None)
        assets[key.to_user_string()] = {
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "retry": None if policy is None else {
                "max_retries": policy.max_retries,
                "delay": None if policy.delay is None else float(policy.delay)}}
    checks = sorted([k.asset_key.to_user_string(), k.name] for k in graph.asset_check_keys)
    schedules = []
    for schedule in defs.resolve_all_schedule_defs() if hasattr(defs, "resolve_all_schedule_defs") \
            else (defs.schedules or []):
        try:
            job = defs.resolve_job_def(schedule.job_name)
            selected = sorted(k.to_user_string() for k in job.asset_layer.executable_asset_keys)
        except Exception:  # a schedule of an op job, say
            selected = []
        cron = schedule.cron_schedule
        schedules.append({"name": schedule.name, "cron": cron if isinstance(cron, str) else list(cron),
                          "timezone": schedule.execution_timezone, "job": schedule.job_name,
                          "assets": selected})
    return {"defs": attr, "assets": assets, "checks": checks, "schedules": schedules}


def _dagster_error(error: Any, path: str) -> dict:
    """The learner's own exception behind Dagster's wrapper, at its line of the learner's file."""
    while getattr(error, "cause", None) is not None and \
            (error.cls_name or "").startswith("Dagster"):
        error = error.cause
    stack = "".join(error.stack or [])
    lines = re.findall(rf'File "{re.escape(path)}", line (\d+), in [^\n]*\n([^\n]*)', stack)
    message = (error.message or "").strip()
    prefix = f"{error.cls_name}: "
    return {"type": error.cls_name or "Error",
            "message": (message[len(prefix):] if message.startswith(prefix) else message)[:2000],
            "line": int(lines[-1][0]) if lines else None,
            "code": lines[-1][1].strip()[:300] if lines else None,
            "traceback": stack[-4000:]}


def dagster_run(module: Any, defs_attr: str, path: str) -> dict:
    import dagster as dg

    defs = getattr(module, defs_attr)
    assets = list(defs.assets or [])
    for asset in assets:  # a failing asset reports at once, as in Airflow's grading
        op = getattr(asset, "op", None)
        if op is not None and getattr(op, "_retry_policy", None) is not None:
            op._retry_policy = None
    result = dg.materialize([*assets, *(defs.asset_checks or [])],
                            instance=dg.DagsterInstance.ephemeral(),
                            resources=dict(defs.resources or {}), raise_on_error=False)
    failures, checks, done = {}, {}, []
    for event in result.all_events:
        kind = event.event_type_value
        if kind == "STEP_FAILURE":
            failures[event.step_key] = _dagster_error(event.event_specific_data.error, path)
        elif kind == "ASSET_MATERIALIZATION":
            done.append(event.asset_key.to_user_string())
        elif kind == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            checks[f"{data.asset_key.to_user_string()}:{data.check_name}"] = data.passed
    return {"state": "COMPLETED" if result.success else "FAILED", "failures": failures,
            "materialized": done, "checks": checks}


def main(engine: str, path: str, fd: int, api_url: str | None) -> None:
    channel = Channel(fd)
    channel.say("phase", phase="import")
    try:
        module = load(path)
        structure = prefect_structure(module) if engine == "prefect" else dagster_structure(module)
    except BaseException as exc:  # the learner's file failed to import: the message says where
        channel.say("imported", ok=False, error=error_info(exc, path))
        return
    channel.say("imported", ok=True, structure=structure)
    target = (next(iter(structure["flows"]), None) if engine == "prefect" else structure["defs"])
    if engine == "prefect":  # the exercise's flow by its function's name, else the only one
        target = next((a for a, f in structure["flows"].items() if f["fn"] == "daily_regions"),
                      target if len(structure["flows"]) == 1 else None)
    if target is None:
        return
    channel.say("phase", phase="run")
    try:
        ran = prefect_run(module, target, path, api_url) if engine == "prefect" \
            else dagster_run(module, target, path)
    except BaseException as exc:
        ran = {"state": "FAILED", "error": error_info(exc, path)}
    channel.say("ran", **ran)
