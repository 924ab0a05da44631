"""Talk to the embedded Airflow lab from a notebook: deploy DAGs, run them, read what happened.

    from course import lab
    lab.start()                                  # idempotent; a no-op when the lab is up
    dag_id = lab.deploy_dag("hello.py", source)  # waits until Airflow has parsed it
    run = lab.run_dag(dag_id)                    # unpause, trigger, wait for the result
    lab.task_states(dag_id, run["dag_run_id"])
    print(lab.task_log(dag_id, run["dag_run_id"], "say_hello"))
    lab.wait_for_runs(dag_id)                    # the runs the scheduler made by itself
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from course import engine
from course.paths import LabPaths

if TYPE_CHECKING:
    import pandas

FINISHED = {"success", "failed"}


class DagImportError(RuntimeError):
    """Airflow could not import a DAG file; the message has the file, line and error."""


class LabTimeout(TimeoutError):
    """A wait ran out; the message says what it was waiting for."""


class Client:
    """A small client for the REST API v2 of the lab (token handling included)."""

    def __init__(self, paths: LabPaths | None = None, timeout: float = 60.0) -> None:
        self.paths = paths or LabPaths.default()
        state = engine.read_state(self.paths)
        if state is None:
            raise RuntimeError("The Airflow lab is not running. Start it with `lab.start()` "
                               "in a notebook or `make airflow-start` in a terminal.")
        self.url = state.url
        self._http = httpx.Client(base_url=self.url, timeout=timeout)
        self._token: str | None = None

    def close(self) -> None:
        self._http.close()

    def token(self) -> str:
        if self._token is None:
            reply = self._http.post("/auth/token", json={"username": "admin",
                                                         "password": admin_password(self.paths)})
            reply.raise_for_status()
            self._token = reply.json()["access_token"]
        return self._token

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call ``/api/v2{path}``; a clear error names the call and Airflow's answer."""
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        try:
            reply = self._http.request(method, f"/api/v2{path}", headers=headers, **kwargs)
            if reply.status_code == 401:  # expired token: one fresh try
                self._token = None
                headers["Authorization"] = f"Bearer {self.token()}"
                reply = self._http.request(method, f"/api/v2{path}", headers=headers, **kwargs)
        except httpx.TimeoutException as error:
            raise LabTimeout(f"{method} /api/v2{path}: the lab's api-server at {self.url} did not answer "
                             f"within {self._http.timeout.read:.0f} s. Is the machine busy? "
                             "`make airflow-status` shows whether the lab is healthy; then run the cell "
                             "again.") from error
        if reply.is_error:
            raise RuntimeError(f"{method} /api/v2{path} -> {reply.status_code}: {reply.text[:500]}")
        return reply

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None).json()

    # --- DAGs -----------------------------------------------------------------------------
    def dags(self) -> list[dict]:
        return self.get("/dags", limit=1000)["dags"]

    def dag(self, dag_id: str) -> dict:
        return self.get(f"/dags/{dag_id}")

    def tasks(self, dag_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/tasks")["tasks"]

    def import_errors(self) -> list[dict]:
        return self.get("/importErrors", limit=1000)["import_errors"]

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    # --- runs -----------------------------------------------------------------------------
    def trigger(self, dag_id: str, conf: dict | None = None,
                logical_date: datetime | None = None, run_id: str | None = None) -> dict:
        """Start a run now; Airflow 3 wants an explicit, timezone-aware logical date."""
        when = logical_date or datetime.now(timezone.utc)
        if when.tzinfo is None:
            raise ValueError("logical_date must be timezone-aware, e.g. "
                             "pendulum.datetime(2023, 10, 1, tz='UTC')")
        body = {"logical_date": when.isoformat(), "conf": conf or {}}
        if run_id is not None:
            body["dag_run_id"] = run_id
        return self.request("POST", f"/dags/{dag_id}/dagRuns", json=body).json()

    def runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns", limit=1000, order_by="logical_date")["dag_runs"]

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]

    def wait(self, dag_id: str, run_id: str, timeout: float = 120.0) -> dict:
        """Wait until the run succeeds or fails; raise LabTimeout naming what is still running."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(dag_id, run_id)
            if run["state"] in FINISHED:
                return run
            if time.monotonic() > deadline:
                states = {ti["task_id"]: ti["state"] for ti in self.task_instances(dag_id, run_id)}
                raise LabTimeout(f"Run {run_id} of {dag_id} is still {run['state']} after "
                                 f"{timeout:.0f} s; task states: {states}. Is the DAG paused, or "
                                 "is a task sleeping? Look at the run in the Airflow UI.")
            time.sleep(0.5)

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int | None = None,
                 map_index: int = -1) -> str:
        """The task's log as plain text lines ``LEVEL - event``."""
        if try_number is None:
            tis = [ti for ti in self.task_instances(dag_id, run_id) if ti["task_id"] == task_id]
            try_number = max([ti.get("try_number") or 1 for ti in tis] or [1])
        body = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/"
                        f"{try_number}", map_index=map_index, full_content="true")
        return log_to_text(body.get("content"))

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value",
             map_index: int = -1) -> Any:
        """A task's XCom; ``map_index`` picks one instance of a mapped task (0, 1, ...)."""
        body = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/"
                        f"{key}", deserialize="true", stringify="false", map_index=map_index)
        return body.get("value")


def log_to_text(content: Any) -> str:
    """Flatten Airflow 3's structured log records into readable lines."""
    if isinstance(content, str):
        return content
    lines = []
    for record in content or []:
        if isinstance(record, str):
            lines.append(record)
            continue
        event = record.get("event", "")
        if event.startswith(("::group::", "::endgroup::")) or "sources" in record:
            continue  # CI-style fold markers and the list of log sources: noise in a notebook
        level = (record.get("level") or "").upper()
        when = (record.get("timestamp") or "")[11:19]
        for detail in record.get("error_detail") or []:
            event += "\n" + _traceback_text(detail)
        lines.append(" ".join(part for part in (when, level, "-" if level else "", event) if part))
    return "\n".join(lines)


def _traceback_text(detail: dict) -> str:
    """An exception from a structured log as a short traceback of the DAG file's own frames."""
    frames = [f for f in detail.get("frames", []) if "site-packages" not in f.get("filename", "")]
    text = ["Traceback (your code):"] if frames else []
    text += [f'  File "{f["filename"]}", line {f["lineno"]}, in {f["name"]}' for f in frames]
    text.append(f"{detail.get('exc_type', 'Exception')}: {detail.get('exc_value', '')}")
    return "\n".join(text)


def admin_password(paths: LabPaths | None = None) -> str:
    """The admin password that `airflow standalone` generated for this lab."""
    return engine.admin_password(paths or LabPaths.default())


# --- module-level helpers for notebooks ---------------------------------------------------

_client: Client | None = None


def start(timeout: float = engine.START_TIMEOUT) -> engine.LabStatus:
    """Start the embedded Airflow (a no-op when it already runs) and print how to reach it."""
    status = engine.start(LabPaths.default(), timeout=timeout)
    print(status.report())
    return status


def stop() -> None:
    global _client
    engine.stop(LabPaths.default())
    _client = None


def client() -> Client:
    """A client for the running lab, re-created when the lab was restarted on another port."""
    global _client
    state = engine.read_state(LabPaths.default())
    if _client is None or state is None or _client.url != state.url:
        _client = Client()
    return _client


def deploy_dag(filename: str, source: str | Path | None = None, timeout: float = 60.0) -> str:
    """Write a DAG file into the lesson folder and wait until Airflow has parsed it.

    ``source`` is Python code, or the path of a file to copy; without it ``filename`` is a path
    to copy. Returns the id of the DAG defined in the file (the first, if there are several).
    Raises DagImportError with Airflow's error, file and line when the file does not import.
    """
    paths = LabPaths.default()
    if source is None:
        source = Path(filename)
        filename = source.name
    if isinstance(source, Path):
        source = source.read_text()
    if not filename.endswith(".py"):
        filename += ".py"
    target = paths.dags / Path(filename).name
    paths.dags.mkdir(parents=True, exist_ok=True)
    unchanged = target.exists() and target.read_text() == source
    if not unchanged:
        target.write_text(source)
    c = client()
    written = target.stat().st_mtime
    deadline = time.monotonic() + timeout
    while True:
        errors = [e for e in c.import_errors() if Path(e["filename"]).name == target.name
                  and _epoch(e["timestamp"]) >= written - 1]
        if errors:
            raise DagImportError(describe_import_error(errors[0]["stack_trace"], target))
        mine = [d for d in c.dags() if Path(d.get("fileloc") or "").resolve() == target
                and d.get("last_parsed_time") and _epoch(d["last_parsed_time"]) >= written - 1]
        if mine:
            return mine[0]["dag_id"]
        if time.monotonic() > deadline:
            raise LabTimeout(f"Airflow has not parsed {target} within {timeout:.0f} s. Does the "
                             "file define a DAG at module level? Check `python -m course airflow "
                             "logs dag_processor`.")
        time.sleep(1.0)


def describe_import_error(stack_trace: str, target: Path) -> str:
    """The error of Airflow's traceback plus the line of the learner's file it points at.

    Only a frame in the learner's own file gives a line number: Airflow-internal lines would point
    at the wrong place.
    """
    lines = [line for line in stack_trace.strip().splitlines() if line.strip()]
    error = next((i for i in range(len(lines) - 1, -1, -1)
                  if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Warning)\b", lines[i])), None)
    summary = " ".join(line.strip() for line in lines[error:]) if error is not None else (
        lines[-1] if lines else "unknown error")
    where = re.findall(rf'File "[^"]*{re.escape(target.name)}", line (\d+)', stack_trace)
    location = f"{target.name}, line {where[-1]}" if where else target.name
    return f"{summary} ({location}). Fix the file and deploy it again.\n\n{stack_trace}"


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def run_dag(dag_id: str, conf: dict | None = None, timeout: float = 120.0,
            logical_date: datetime | None = None, run_id: str | None = None) -> dict:
    """Unpause the DAG, trigger a run and wait for its result; returns the finished run."""
    c = client()
    c.set_paused(dag_id, False)
    run = c.trigger(dag_id, conf=conf, logical_date=logical_date, run_id=run_id)
    return c.wait(dag_id, run["dag_run_id"], timeout=timeout)


def wait_for_runs(dag_id: str, run_type: str = "scheduled", logical_dates: Iterable[str] | None = None,
                  count: int = 1, timeout: float = 90.0) -> list[dict]:
    """Wait until the DAG has finished runs the scheduler made; returns them, oldest first.

    Waits for the runs of ``run_type`` whose logical dates start with each of ``logical_dates``
    ("2023-10-01" or a full time stamp), or else for ``count`` of them.
    """
    wanted = None if logical_dates is None else sorted(set(logical_dates))
    deadline = time.monotonic() + timeout
    while True:
        runs = [r for r in client().runs(dag_id) if r["run_type"] == run_type]
        if wanted is not None:
            runs = [r for r in runs if any((r["logical_date"] or "").startswith(d) for d in wanted)]
        finished = [r for r in runs if r["state"] in FINISHED]
        if len(finished) >= (count if wanted is None else len(wanted)):
            return sorted(finished, key=lambda r: r["logical_date"] or r["run_after"])
        if time.monotonic() > deadline:
            target = f"the dates {', '.join(wanted)}" if wanted is not None else f"{count} runs"
            raise LabTimeout(f"{dag_id}: waited {timeout:.0f} s for finished {run_type} runs of "
                             f"{target}; found {len(finished)} finished, states "
                             f"{[r['state'] for r in runs]}. Is the DAG paused? See its Runs tab.")
        time.sleep(1.0)



def wait_for_catchup(dag_id: str, timeout: float = 120.0) -> list[dict]:
    """Wait until the scheduler has made and finished every run of the DAG due by now.

    That is: the DAG's next run is not due yet (or there is none, past its ``end_date``) and no
    scheduled run is still going. Returns the scheduled runs, oldest first.
    """
    c = client()
    deadline = time.monotonic() + timeout
    while True:
        upcoming = c.dag(dag_id).get("next_dagrun_run_after")
        runs = [r for r in c.runs(dag_id) if r["run_type"] == "scheduled"]
        caught_up = upcoming is None or _epoch(upcoming) > time.time()
        if caught_up and all(r["state"] in FINISHED for r in runs):
            return sorted(runs, key=lambda r: r["logical_date"] or r["run_after"])
        if time.monotonic() > deadline:
            raise LabTimeout(f"{dag_id}: the scheduler has not caught up after {timeout:.0f} s: next run "
                             f"due {upcoming}, runs so far {[(r['logical_date'], r['state']) for r in runs]}. "
                             "Is the DAG paused? See its Runs tab.")
        time.sleep(1.0)

def wait_for_mail(containing: str, timeout: float = 60.0):
    """The latest mail the lab caught whose body contains ``containing``, once it has arrived."""
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in mail() if containing in m.body]
        if found:
            return found[-1]
        if time.monotonic() > deadline:
            raise LabTimeout(f"no mail containing {containing!r} arrived within {timeout:.0f} s; "
                             "`python -m course mail` lists what the lab caught")
        time.sleep(1.0)


def process_table() -> pandas.DataFrame:
    """The lab's Airflow processes: `airflow standalone` first, then every process it started.

    One row per process: ``pid``, ``parent`` (its parent's pid), ``command`` (as `ps` would name
    it, e.g. "airflow scheduler") and ``memory_MB``. A process that ends while being read is left out.
    """
    import pandas
    import psutil

    state = engine.read_state(LabPaths.default())
    if state is None:
        raise RuntimeError("The Airflow lab is not running. Start it with `lab.start()`.")
    standalone = psutil.Process(state.airflow_pgid)
    rows = []
    for proc in [standalone, *standalone.children(recursive=True)]:
        try:
            with proc.oneshot():
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                command = process_title(proc.cmdline())
                if command:
                    rows.append({"pid": proc.pid, "parent": proc.ppid(), "command": command,
                                 "memory_MB": round(proc.memory_info().rss / 2**20)})
        except psutil.Error:  # a short-lived process (a parse, a task) ended while we looked
            continue
    return pandas.DataFrame(rows, columns=["pid", "parent", "command", "memory_MB"])


def process_title(cmdline: list[str]) -> str:
    """A process's command as a reader knows it: "airflow scheduler", not ".../python .../airflow scheduler"."""
    words = " ".join(cmdline).split()  # a process that renamed itself has one long "word"
    if "multiprocessing.resource_tracker" in " ".join(words):
        return "python resource tracker"
    if len(words) > 1 and words[1].endswith("airflow"):
        words = ["airflow", *words[2:]]
    return " ".join(words)


def task_states(dag_id: str, run_id: str) -> dict[str, str]:
    return {ti["task_id"]: ti["state"] for ti in client().task_instances(dag_id, run_id)}


def task_log(dag_id: str, run_id: str, task_id: str, try_number: int | None = None) -> str:
    return client().task_log(dag_id, run_id, task_id, try_number)


def xcom(dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
    return client().xcom(dag_id, run_id, task_id, key, map_index)


def import_errors() -> list[dict]:
    return client().import_errors()


def mail(limit: int | None = None):
    """Messages the lab's SMTP sink received, oldest first."""
    from course.mail import read_mail

    return read_mail(LabPaths.default(), limit)


def run_dags(dag_ids: list[str], timeout: float = 120.0) -> dict[str, dict]:
    """Unpause and trigger several DAGs at once, then wait for all; their finished runs by dag_id."""
    c = client()
    started = {}
    for dag_id in dag_ids:
        c.set_paused(dag_id, False)
        started[dag_id] = c.trigger(dag_id)["dag_run_id"]
    deadline = time.monotonic() + timeout
    return {dag_id: c.wait(dag_id, run_id, timeout=max(1.0, deadline - time.monotonic()))
            for dag_id, run_id in started.items()}


def task_instances(dag_id: str, run_id: str) -> pandas.DataFrame:
    """One row per task instance of a run, mapped instances with their ``map_index``, in start order."""
    import pandas

    columns = ["task_id", "map_index", "state", "try_number", "start_date", "end_date"]
    rows = [{key: ti.get(key) for key in columns} for ti in client().task_instances(dag_id, run_id)]
    table = pandas.DataFrame(rows, columns=columns)
    return table.sort_values(["start_date", "task_id", "map_index"], na_position="last",
                             ignore_index=True)


def asset_events(asset: str | None = None, source_run_id: str | None = None) -> pandas.DataFrame:
    """The lab's asset events, oldest first: which task updated which asset, and the runs it started.

    ``asset`` keeps the events of one asset (by name), ``source_run_id`` those of one producer run.
    """
    import pandas

    params: dict[str, Any] = {"limit": 1000, "order_by": "timestamp"}
    if source_run_id is not None:
        params["source_run_id"] = source_run_id
    events = client().get("/assets/events", **params)["asset_events"]
    rows = [{"asset": event["name"], "source": f"{event['source_dag_id']}.{event['source_task_id']}",
             "source_run_id": event["source_run_id"], "extra": event["extra"],
             "timestamp": event["timestamp"],
             "runs_created": [run["dag_id"] for run in event["created_dagruns"]]}
            for event in events if asset is None or event["name"] == asset]
    return pandas.DataFrame(rows, columns=["asset", "source", "source_run_id", "extra", "timestamp",
                                           "runs_created"])


def waiting_assets(dag_id: str) -> list[str]:
    """The assets whose updates are queued for a DAG, waiting for the rest of its asset schedule."""
    c = client()
    names = {asset["id"]: asset["name"] for asset in c.get("/assets", limit=1000)["assets"]}
    queued = c.get(f"/dags/{dag_id}/assets/queuedEvents")["queued_events"]
    return sorted(names[event["asset_id"]] for event in queued)


def trigger_dag(dag_id: str, conf: dict | None = None) -> str:
    """Unpause the DAG and start a run without waiting for it; returns its run id."""
    c = client()
    c.set_paused(dag_id, False)
    return c.trigger(dag_id, conf=conf)["dag_run_id"]


def wait_for_task_state(dag_id: str, run_id: str, task_id: str, states: Iterable[str],
                        timeout: float = 60.0) -> dict:
    """Wait until a task of a run is in one of ``states``; returns its task instance (REST API form)."""
    wanted = set(states)
    deadline = time.monotonic() + timeout
    found: list[dict] = []
    while True:
        try:
            found = [ti for ti in client().task_instances(dag_id, run_id) if ti["task_id"] == task_id]
        except httpx.TimeoutException:  # a busy api-server: ask again until the deadline
            pass
        if found and found[0]["state"] in wanted:
            return found[0]
        if time.monotonic() > deadline:
            state = found[0]["state"] if found else "not created yet"
            raise LabTimeout(f"{dag_id}.{task_id} in run {run_id} is {state} after {timeout:.0f} s, "
                             f"not {' or '.join(sorted(wanted))}. Look at the run in the Airflow UI.")
        time.sleep(0.5)


def wait_for_deferral(dag_id: str, run_id: str, task_id: str, timeout: float = 60.0) -> dict:
    """Wait until a task is deferred and a triggerer runs its trigger; what waits, and where.

    Returns ``state``, ``trigger`` (the trigger's class) and ``triggerer`` (the job of the lab's
    triggerer process that runs it: id, hostname, state, start).
    """
    c = client()
    deadline = time.monotonic() + timeout
    while True:
        ti = wait_for_task_state(dag_id, run_id, task_id, {"deferred"},
                                 timeout=max(1.0, deadline - time.monotonic()))
        triggerer_id = (ti.get("trigger") or {}).get("triggerer_id")
        if triggerer_id is not None:
            jobs = c.get("/jobs", job_type="TriggererJob", limit=100).get("jobs", [])
            job = next((j for j in jobs if j["id"] == triggerer_id), {"id": triggerer_id})
            return {"state": ti["state"], "trigger": ti["trigger"]["classpath"],
                    "triggerer": {key: job.get(key) for key in ("id", "job_type", "hostname", "state",
                                                               "start_date")}}
        if time.monotonic() > deadline:
            raise LabTimeout(f"{dag_id}.{task_id} is deferred but no triggerer took its trigger within "
                             f"{timeout:.0f} s: is the triggerer running? `python -m course airflow status`")
        time.sleep(0.5)
