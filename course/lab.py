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
import sys
import time
from datetime import datetime, timezone
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from course import engine
from course.paths import LabPaths

if TYPE_CHECKING:
    import pandas

T = TypeVar("T")
FINISHED = {"success", "failed"}
ASSET_EVENTS_TIMEOUT = 30.0  # seconds: see asset_events
BACKFILL_TIMEOUT = 60.0  # seconds: see backfill


class DagImportError(RuntimeError):
    """Airflow could not import a DAG file; the message has the file, line and error."""


class LabTimeout(TimeoutError):
    """A wait ran out; the message says what it was waiting for."""


class ApiError(RuntimeError):
    """The api-server answered a call with an error; ``status`` is its HTTP status code."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def ask_again_while(status: int, call: Callable[[], T], timeout: float, why: str) -> T:
    """``call()``, asked again every half second while the api-server answers ``status``.

    After ``timeout`` seconds of that answer, a LabTimeout whose message is ``why``: the cause and
    what to do next. Any other error is raised at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except ApiError as error:
            if error.status != status:
                raise
            if time.monotonic() > deadline:
                raise LabTimeout(f"Airflow's api-server answered {status} for {timeout:.0f} s: "
                                 f"{why}") from error
        time.sleep(0.5)


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
            raise ApiError(f"{method} /api/v2{path} -> {reply.status_code}: {reply.text[:500]}",
                           reply.status_code)
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

    def wait(self, dag_id: str, run_id: str, timeout: float = 120.0, poll: float = 0.5) -> dict:
        """Wait until the run succeeds or fails; raise LabTimeout naming what is still running.

        ``poll`` is the seconds between two looks: each costs the api-server a request.
        """
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
            time.sleep(poll)

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
    edited = target.exists() and not unchanged  # a deployed file changed: wait for a parse of the edit
    if not unchanged:
        target.write_text(source)
    c = client()
    written = target.stat().st_mtime
    # A new file: a parse up to 1 s older than the write (coarse mtimes) is the file's first. An
    # edit: a parse that ended after the write may have read the file before it, so wait for the
    # parse after that one, which began after the write. Either parse ends in the DAG stored or in
    # an import error; the newer of the two is the file's state.
    since = written - 1
    deadline = time.monotonic() + timeout
    while True:
        errors = [(_epoch(e["timestamp"]), e) for e in c.import_errors()
                  if Path(e["filename"]).name == target.name and _epoch(e["timestamp"]) > since]
        mine = [(_epoch(d["last_parsed_time"]), d) for d in c.dags()
                if Path(d.get("fileloc") or "").resolve() == target
                and d.get("last_parsed_time") and _epoch(d["last_parsed_time"]) > since]
        newest_error = max(errors, key=lambda seen: seen[0], default=None)
        newest_dag = max(mine, key=lambda seen: seen[0], default=None)
        if (newest_error or newest_dag) and edited:
            since, edited = max(seen[0] for seen in (newest_error, newest_dag) if seen), False
        elif newest_error and (newest_dag is None or newest_error[0] >= newest_dag[0]):
            raise DagImportError(describe_import_error(newest_error[1]["stack_trace"], target))
        elif newest_dag:
            return newest_dag[1]["dag_id"]
        if time.monotonic() > deadline:
            raise LabTimeout(f"Airflow has not parsed {target} within {timeout:.0f} s. Does the "
                             "file define a DAG at module level? Check `python -m course airflow "
                             "logs dag_processor`.")
        time.sleep(0.5)


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
        time.sleep(0.5)



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
            so_far = [(r["logical_date"], r["state"]) for r in runs]
            raise LabTimeout(f"{dag_id}: the scheduler has not caught up after {timeout:.0f} s: next run "
                             f"due {upcoming}, runs so far {so_far}. "
                             "Is the DAG paused? See its Runs tab.")
        time.sleep(0.5)

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
        time.sleep(0.5)


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
    """A process's command as a reader knows it: "airflow scheduler", not ".../python .../airflow ..."."""
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
    # Airflow 3.3 answers 500 while a run an event created is queued, its start_date still empty
    # (apache/airflow#71360): such a run starts within seconds, so ask again until it has.
    events = ask_again_while(
        500, lambda: client().get("/assets/events", **params)["asset_events"], ASSET_EVENTS_TIMEOUT,
        "GET /assets/events cannot list an asset event while a run the event created waits in the "
        "queue (apache/airflow#71360). Is the scheduler running (`make airflow-status`)? Once that "
        "run has started, run the cell again.")
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


# --- the airflow command, backfills and re-runs -------------------------------------------

def airflow(command: str, project: str | Path | None = None, timeout: float = 180.0):
    """Run ``airflow <command>`` as typed in a terminal; print its output, return the finished process.

    Against the lab, or with ``project`` as a CI job of that DAG project would (see ci_env).
    Airflow's own log lines (``... [info     ] ...``) are not printed; the exit code is.
    """
    import shlex
    import subprocess

    paths = LabPaths.default()
    env = engine.airflow_env(paths) if project is None else ci_env(Path(project))
    cwd = paths.home if project is None else Path(project)
    argv = [str(engine.airflow_bin()), *shlex.split(command)]
    print(f"$ airflow {command}")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        raise LabTimeout(f"`airflow {command}` did not finish within {timeout:.0f} s.") from exc
    shown = [line for line in (done.stdout + done.stderr).splitlines() if not _LOG_LINE.match(line)]
    print("\n".join(shown).rstrip())
    print(f"(exit code {done.returncode})")
    return done


_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z? \[\s*\w+\s*\]")


def backfills(dag_id: str) -> list[dict]:
    """The DAG's backfills, oldest first, as the REST API lists them."""
    return client().get("/backfills", dag_id=dag_id, limit=1000)["backfills"]


def backfill(dag_id: str, from_date: str, to_date: str, reprocess_behavior: str = "none",
             max_active_runs: int | None = None) -> dict:
    """Create a backfill as the UI's Run Backfill button does (``POST /api/v2/backfills``).

    Dates are days (``"2023-10-02"``, midnight UTC) or timestamps, both ends included. The same as
    ``airflow backfill create --dag-id DAG --from-date FROM --to-date TO``.
    """
    body = {"dag_id": dag_id, "from_date": _midnight(from_date), "to_date": _midnight(to_date),
            "reprocess_behavior": reprocess_behavior}
    if max_active_runs is not None:
        body["max_active_runs"] = max_active_runs
    c = client()
    # On the lab's SQLite file, creating a backfill can clash with the scheduler's own writes:
    # Airflow then rolls it back and answers 503 ("not supported on SQLite under concurrent
    # access"). With the DAG paused meanwhile, the scheduler leaves the new runs alone, so asking
    # again is safe. PostgreSQL, as in production, needs none of this.
    paused = c.dag(dag_id)["is_paused"]
    c.set_paused(dag_id, True)
    try:
        return ask_again_while(
            503, lambda: c.request("POST", "/backfills", json=body).json(), BACKFILL_TIMEOUT,
            f"POST /backfills for {dag_id}: the lab's SQLite database stayed busy with the scheduler's "
            "own writes. Run the cell again; if it happens again, `make airflow-status` shows whether "
            "the scheduler is stuck.")
    finally:
        c.set_paused(dag_id, paused)


def backfill_dry_run(dag_id: str, from_date: str, to_date: str,
                     reprocess_behavior: str = "none") -> list[str]:
    """The logical dates a backfill would create runs for, as Airflow computes them; creates nothing."""
    body = {"dag_id": dag_id, "from_date": _midnight(from_date), "to_date": _midnight(to_date),
            "reprocess_behavior": reprocess_behavior}
    reply = client().request("POST", "/backfills/dry_run", json=body).json()
    return [entry["logical_date"] for entry in reply["backfills"]]


def _midnight(day: str) -> str:
    """'2023-10-02' -> '2023-10-02T00:00:00Z'; a full timestamp is kept as it is."""
    return day if "T" in day else f"{day}T00:00:00Z"


def wait_for_backfill(dag_id: str, timeout: float = 120.0) -> list[dict]:
    """Wait until every run of the DAG's latest backfill has finished; its runs, oldest first."""
    c = client()
    made = backfills(dag_id)
    if not made:
        raise RuntimeError(f"{dag_id} has no backfill. Create one with `airflow backfill create "
                           f"--dag-id {dag_id} --from-date ... --to-date ...`.")
    latest = made[-1]
    deadline = time.monotonic() + timeout
    while True:
        runs = [r for r in c.runs(dag_id) if r["run_type"] == "backfill"
                and latest["from_date"] <= r["logical_date"] <= latest["to_date"]]
        waiting = [r for r in runs if r["state"] not in FINISHED]
        if runs and not waiting:
            return runs
        if waiting and c.dag(dag_id)["is_paused"]:
            raise RuntimeError(f"{dag_id} is paused, so its backfill runs wait in 'queued' "
                               f"({len(waiting)} of them). Unpause it: "
                               f"lab.client().set_paused({dag_id!r}, False).")
        if time.monotonic() > deadline:
            raise LabTimeout(f"The backfill of {dag_id} still has {len(waiting)} of {len(runs)} runs "
                             f"unfinished after {timeout:.0f} s: "
                             f"{sorted({r['state'] for r in waiting})}. Look at its Backfills tab in the UI.")
        time.sleep(0.5)


def rerun(dag_id: str, from_date: str, to_date: str, timeout: float = 120.0) -> list[dict]:
    """Clear every task of the runs whose logical date is in [from_date, to_date], as the UI's
    Clear button does, and wait until they have all run again; the runs, oldest first."""
    c = client()
    body = {"dry_run": False, "only_failed": False, "reset_dag_runs": True,
            "start_date": _midnight(from_date), "end_date": _midnight(to_date)}
    cleared = c.request("POST", f"/dags/{dag_id}/clearTaskInstances", json=body).json()
    run_ids = sorted({ti["dag_run_id"] for ti in cleared["task_instances"]})
    if not run_ids:
        raise RuntimeError(f"{dag_id} has no runs with a logical date from {from_date} to {to_date}.")
    deadline = time.monotonic() + timeout
    while True:
        runs = [c.run(dag_id, run_id) for run_id in run_ids]
        waiting = [r["dag_run_id"] for r in runs if r["state"] not in FINISHED]
        if not waiting:
            return sorted(runs, key=lambda r: r["logical_date"] or "")
        if time.monotonic() > deadline:
            raise LabTimeout(f"{len(waiting)} cleared runs of {dag_id} are still unfinished after "
                             f"{timeout:.0f} s: {waiting}. Is the DAG paused?")
        time.sleep(0.5)


def dag_versions(dag_id: str) -> list[dict]:
    """The versions Airflow recorded of a DAG, oldest first (``GET /dags/{dag_id}/dagVersions``)."""
    return client().get(f"/dags/{dag_id}/dagVersions", order_by="version_number")["dag_versions"]


def warehouse(sql: str, params: tuple = ()):
    """Rows of a query on the lab's warehouse (the SQLite file of the `warehouse` connection), read-only."""
    import sqlite3

    import pandas

    path = LabPaths.default().warehouse
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return pandas.read_sql_query(sql, db, params=params)


def start_over(dag_id: str, tables: list[str] = ()) -> None:
    """Forget a lesson DAG's runs, versions and backfills, and drop its warehouse tables.

    A notebook calls it before deploying its DAG, so that running the notebook again from the top
    gives the same results. The DAG file stays; Airflow parses it again within a few seconds.
    """
    import sqlite3

    _delete_if_there(f"/dags/{dag_id}")
    path = LabPaths.default().warehouse
    with sqlite3.connect(path) as db:
        for table in tables:
            if not re.fullmatch(r"\w+", table):
                raise ValueError(f"{table!r} is not a table name")
            db.execute(f"DROP TABLE IF EXISTS {table}")


# --- testing DAGs as a CI job does: away from the lab ---------------------------------------

class TestRun:
    """What one pytest run reported: each test's outcome by name, and what pytest printed."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, outcomes: dict[str, str], output: str) -> None:
        self.outcomes = outcomes
        self.output = output

    @property
    def failed(self) -> set[str]:
        return {name for name, outcome in self.outcomes.items() if outcome in ("failed", "error")}

    @property
    def passed(self) -> set[str]:
        return {name for name, outcome in self.outcomes.items() if outcome == "passed"}

    def __repr__(self) -> str:
        return f"TestRun(passed={sorted(self.passed)}, failed={sorted(self.failed)})"


def ci_env(project: Path) -> dict[str, str]:
    """The environment of a CI job for a DAG project: Airflow with a throwaway metadata database
    in ``project/.airflow-ci`` (a copy of a migrated one), DAGs from ``project/dags``, no lab."""
    import shutil

    from autograder.config import GradeConfig
    from autograder.runner import child_env, template_db

    project = Path(project).resolve()
    home = project / ".airflow-ci"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    shutil.copy(template_db(GradeConfig.from_env()), home / "airflow.db")
    return child_env(home, project / "dags", {})


def pytest(project: str | Path, *args: str, timeout: float = 300.0) -> TestRun:
    """Run ``pytest`` in a DAG project as a CI job would (see ci_env); print its report.

    Returns each test's outcome by name (``test_x``, or ``test_x[param]``).
    """
    import subprocess
    import xml.etree.ElementTree as ElementTree

    project = Path(project).resolve()
    report = project / ".airflow-ci-report.xml"
    # Quiet as a CI log: no captured logs of passing and failing tests, no warnings summary.
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:warnings",
            "--color=no", "--show-capture=no", f"--junitxml={report}", *args]
    print(f"$ pytest {' '.join(args)}".rstrip())
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=project,
                              env=ci_env(project))
    except subprocess.TimeoutExpired as exc:
        raise LabTimeout(f"pytest in {project} did not finish within {timeout:.0f} s.") from exc
    output = done.stdout + done.stderr
    print(output.rstrip())
    if not report.exists():
        raise RuntimeError(f"pytest wrote no report (exit code {done.returncode}): is {project} a "
                           "folder with tests in it?")
    outcomes = {}
    for case in ElementTree.parse(report).iter("testcase"):
        kinds = {child.tag for child in case}
        outcome = ("failed" if "failure" in kinds else "error" if "error" in kinds
                   else "skipped" if "skipped" in kinds else "passed")
        outcomes[case.get("name")] = outcome
    report.unlink()
    return TestRun(outcomes, output)


# --- Variables and Connections ----------------------------------------------------------------

def set_variable(key: str, value: str, description: str | None = None) -> dict:
    """Create or replace a Variable in the lab's metadata database, as the UI's Admin > Variables does."""
    c = client()
    _delete_if_there(f"/variables/{key}")
    return c.request("POST", "/variables", json={"key": key, "value": value,
                                                 "description": description}).json()


def set_connection(conn_id: str, conn_type: str, **fields: Any) -> dict:
    """Create or replace a Connection in the lab's metadata database (UI: Admin > Connections).

    ``fields`` are the REST API's: host, port, login, password, schema, extra (a JSON string).
    """
    c = client()
    _delete_if_there(f"/connections/{conn_id}")
    return c.request("POST", "/connections", json={"connection_id": conn_id, "conn_type": conn_type,
                                                   **fields}).json()


def _delete_if_there(path: str) -> None:
    try:
        client().request("DELETE", path)
    except ApiError as exc:
        if exc.status != 404:
            raise
