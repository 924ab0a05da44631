"""The one module that runs learner code.

``collect()`` prepares a sandbox (its own Airflow home copied from a pre-migrated template, the
grader's hidden data, a fresh warehouse, a live SMTP sink), then runs this same module as a child
process: ``python -m autograder.runner CHILD_SPEC``. The child imports the learner's DAG file,
describes the DAG and runs ``dag.test()``. It runs in a process group of its own under resource
limits and a wall-clock limit per phase; on time-out the whole group is killed.

The verdict never rests on what the learner's process prints: task states and XComs are read
from the sandbox's metadata database, rows from the warehouse, mail from the sink. The child
only adds what a database cannot tell: the DAG's shape and the exceptions, with their lines.
"""

from __future__ import annotations

import fcntl
import json
import os
import resource
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from autograder.config import REPO_ROOT, GradeConfig
from autograder.facts import DagInfo, ErrorInfo, Facts, RunInfo
from autograder.world import MailSink, conn_env, warehouse_for

# The logical date of the graded run, and the reference for schedule comparisons.
RUN_DATE = "2024-01-02T03:00:00+00:00"
SCHEDULE_REFERENCE = "2023-10-01T00:00:00+00:00"
RUN_TIMES = 12
OUTPUT_TAIL = 6000


def airflow_version() -> str:
    from importlib.metadata import version

    return version("apache-airflow-core")


def child_env(home: Path, dags: Path, extra: dict[str, str]) -> dict[str, str]:
    """A clean environment for Airflow in ``home``: nothing inherited from the learner's lab."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "0",
        "AIRFLOW__EMAIL__FROM_EMAIL": "airflow@course.local",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
        "NO_COLOR": "1",
    })
    env.update(extra)
    return env


def template_db(config: GradeConfig) -> Path:
    """A migrated metadata database, made once per Airflow version and copied per submission."""
    folder = config.cache_dir / f"airflow-{airflow_version()}"
    db = folder / "airflow.db"
    if db.exists():
        return db
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel graders: one migrates, the others wait
        if db.exists():
            return db
        home = Path(tempfile.mkdtemp(dir=folder))
        env = child_env(home, home / "dags", {})
        print("Preparing Airflow's metadata database once (about 10 s) ...", file=sys.stderr)
        done = subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
                              env=env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"`airflow db migrate` failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        os.replace(home / "airflow.db", db)
        shutil.rmtree(home, ignore_errors=True)
    return db


def _limits(config: GradeConfig):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (config.cpu_seconds, config.cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_AS, (config.memory_bytes, config.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (config.file_bytes, config.file_bytes))
    return apply


def syntax_facts(facts: Facts) -> None:
    try:
        compile(facts.source or "", facts.filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        facts.syntax_error = ErrorInfo(type=type(exc).__name__, message=exc.msg or "",
                                       line=exc.lineno, code=(exc.text or "").rstrip("\n"))


def airflow2_idioms(path: Path) -> list[dict]:
    """ruff's Airflow 3 migration rules (AIR3xx) on the file: the lesson's Airflow 2 idioms."""
    ruff = Path(sys.executable).parent / "ruff"
    done = subprocess.run([str(ruff if ruff.exists() else "ruff"), "check", "--no-cache", "--preview",
                           "--isolated", "--select", "AIR3", "--output-format", "json", str(path)],
                          capture_output=True, text=True, timeout=60)
    try:
        found = json.loads(done.stdout or "[]")
    except ValueError:
        return []
    return [{"code": f["code"], "line": f["location"]["row"], "message": f["message"]} for f in found]


def collect(exercise: Any, submission: Path, config: GradeConfig) -> Facts:
    """Everything the checks need to know about one submission."""
    facts = Facts(exercise=exercise, submission=submission, filename=submission.name)
    try:
        facts.source = submission.read_text(encoding="utf-8")
    except FileNotFoundError:
        facts.read_error = f"{submission} does not exist"
        return facts
    except (OSError, UnicodeDecodeError) as exc:
        facts.read_error = f"{submission} cannot be read: {exc}"
        return facts
    syntax_facts(facts)
    facts.airflow2_idioms = airflow2_idioms(submission)
    facts.expected = exercise.expected_from(exercise.hidden_data)
    if facts.syntax_error:
        return facts

    with ExitStack() as stack:
        sandbox = Path(tempfile.mkdtemp(prefix=f"grade-{exercise.id}-"))
        if not config.keep_sandbox:
            stack.callback(shutil.rmtree, sandbox, True)
        home, dags = sandbox / "home", sandbox / "home" / "dags"
        dags.mkdir(parents=True)
        shutil.copy(template_db(config), home / "airflow.db")
        shutil.copy(submission, dags / submission.name)
        if exercise.hidden_data.exists():
            shutil.copytree(exercise.hidden_data, dags / "data")
        sink = stack.enter_context(MailSink())
        warehouse = stack.enter_context(warehouse_for(config.warehouse_url, sandbox))
        env = child_env(home, dags, dict([conn_env("warehouse", warehouse.connection()),
                                          conn_env("smtp_default", sink.connection())]))
        spec = {"dag_file": str(dags / submission.name), "dag_id": exercise.dag_id,
                "schedule": exercise.schedule, "runs": exercise.runs}
        events, ended = _run_child(spec, env, home, config, facts)
        _read_events(facts, events, ended)
        if facts.dag is not None and ended["phase"].startswith("run"):
            runs = _runs_from_db(home / "airflow.db", exercise.dag_id, events, ended)
            facts.run = runs[0] if runs else RunInfo(
                state=None, task_states={}, xcoms={}, failures={}, timed_out=ended["timed_out"],
                crash=None if ended["timed_out"] else _crash_text(ended))
            facts.rerun = runs[1] if len(runs) > 1 else None
            facts.run_tampered = sorted({n for e in events if e["event"] == "tampered"
                                         for n in e["names"]})
            if exercise.warehouse_table:
                try:
                    facts.warehouse_rows = warehouse.rows(exercise.warehouse_table)
                except LookupError as exc:
                    facts.warehouse_error = str(exc)
            facts.mails = sink.mails
        facts.output_tail = _tail(home / "output.log")
    return facts


def _run_child(spec: dict, env: dict[str, str], home: Path, config: GradeConfig,
               facts: Facts) -> tuple[list[dict], dict]:
    """Run the child; return its events and how it ended (phase, timed_out, exit code)."""
    read_fd, write_fd = os.pipe()
    spec = {**spec, "fd": write_fd}
    spec_file = home / "spec.json"
    spec_file.write_text(json.dumps(spec))
    with open(home / "output.log", "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "autograder.runner", str(spec_file)],
                                env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, pass_fds=(write_fd,),
                                start_new_session=True, preexec_fn=_limits(config))
    os.close(write_fd)
    budget = {"boot": config.boot_timeout, "import": config.import_timeout}
    phase, deadline = "boot", time.monotonic() + config.boot_timeout
    events: list[dict] = []
    buffer = b""
    timed_out = None
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = phase
                break
            ready, _, _ = select.select([pipe], [], [], min(left, 1.0))
            if not ready:
                continue
            chunk = pipe.read(65536)
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                events.append(event)
                if event.get("event") == "phase":
                    phase = event["phase"]
                    deadline = time.monotonic() + budget.get(phase, config.run_timeout)
    ended = {"phase": phase, "timed_out": timed_out}
    if timed_out:
        _kill_group(proc.pid)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        proc.wait()
    _kill_group(proc.pid)  # anything the learner's code left running in the background
    ended["returncode"] = proc.returncode
    return events, ended


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _crash_text(ended: dict) -> str:
    code = ended.get("returncode")
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        why = {"SIGXCPU": "it used more CPU time than allowed", "SIGKILL": "it was killed",
               "SIGXFSZ": "it wrote a file larger than allowed"}.get(name, f"signal {name}")
        return f"the process running your DAG was stopped: {why}"
    return (f"the process running your DAG exited with code {code} before it finished "
            "(does your code call sys.exit() or os._exit()?)")


def _read_events(facts: Facts, events: list[dict], ended: dict) -> None:
    by_kind: dict[str, dict] = {}
    for event in events:
        by_kind.setdefault(event["event"], event)
    imported = by_kind.get("imported")
    if imported is None:
        if ended["timed_out"] in ("boot", "import"):
            facts.import_timed_out = True
        else:
            facts.import_crash = _crash_text(ended)
        return
    if not imported["ok"]:
        facts.import_error = ErrorInfo.from_dict(imported["error"])
        return
    facts.dag_ids = imported["dag_ids"]
    if imported.get("dag"):
        facts.dag = DagInfo.from_dict(imported["dag"])


def _runs_from_db(db: Path, dag_id: str, events: list[dict], ended: dict) -> list[RunInfo]:
    """Task states and XComs of each run, as Airflow recorded them, oldest run first."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        runs = conn.execute("SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id",
                            (dag_id,)).fetchall()
        found = []
        for index, (run_id, state) in enumerate(runs):
            states = dict(conn.execute(
                "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
                (dag_id, run_id)).fetchall())
            by_key: dict[str, dict[str, Any]] = {}
            for task_id, key, value in conn.execute(
                    "SELECT task_id, key, value FROM xcom WHERE dag_id = ? AND run_id = ? "
                    "AND map_index = -1", (dag_id, run_id)):
                try:
                    by_key.setdefault(task_id, {})[key] = _plain(json.loads(value))
                except (TypeError, ValueError):
                    by_key.setdefault(task_id, {})[key] = value
            xcoms = {t: keys["return_value"] for t, keys in by_key.items() if "return_value" in keys}
            mine = [e for e in events if e.get("run") == index]
            ran = next((e for e in mine if e["event"] == "ran"), None)
            last = index == len(runs) - 1
            timed_out = ended["timed_out"] if last else None
            found.append(RunInfo(
                state=state, task_states={k: v or "none" for k, v in states.items()}, xcoms=xcoms,
                xcom_keys=by_key,
                failures={e["task_id"]: ErrorInfo.from_dict(e["error"]) for e in mine
                          if e["event"] == "task_failed"},
                timed_out=timed_out,
                running_tasks=tuple(sorted(t for t, s in states.items() if s == "running")),
                crash=None if ran or timed_out else _crash_text(ended),
                error=ErrorInfo.from_dict(ran.get("error")) if ran else None))
    return found


def _plain(value: Any) -> Any:
    """Undo Airflow's serde wrapping of tuples, sets and the like."""
    if isinstance(value, dict):
        if "__data__" in value and ("__classname__" in value or "__type" in value):
            return _plain(value["__data__"])
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-OUTPUT_TAIL:]
    except OSError:
        return ""


def task_log(output: str, task_id: str, lines: int = 25) -> str:
    """The part of the run's output that belongs to ``task_id`` (last ``lines`` lines)."""
    text = output.splitlines()
    start = next((i for i, line in enumerate(text)
                  if "[DAG TEST] start task" in line and f"task_id={task_id} " in line + " "), None)
    if start is None:
        return ""
    end = next((i for i in range(start, len(text))
                if "[DAG TEST] end task" in text[i] and f"task_id={task_id} " in text[i] + " "),
               len(text) - 1)
    return "\n".join(text[start:end + 1][-lines:])


# --- the child process ---------------------------------------------------------------------

def _error(exc: BaseException, dag_file: str) -> dict:
    """Describe an exception by the deepest frame in the learner's file."""
    if isinstance(exc, SyntaxError) and exc.filename == dag_file:
        return {"type": type(exc).__name__, "message": exc.msg or "", "line": exc.lineno,
                "code": (exc.text or "").rstrip("\n")}
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == dag_file]
    message = str(exc)
    if isinstance(exc, SystemExit):
        message = f"sys.exit({exc.code!r}) was called"
    return {"type": type(exc).__name__, "message": message[:2000],
            "line": frames[-1].lineno if frames else None,
            "code": frames[-1].line if frames else None,
            "traceback": "".join(traceback.format_exception(exc))[-4000:]}


def _describe_dag(dag: Any, schedule: str) -> dict:
    import pendulum

    from course.schedules import describe, next_run_times

    reference = pendulum.parse(SCHEDULE_REFERENCE)
    tasks = {}
    for task in dag.tasks:
        delay = getattr(task, "retry_delay", None)
        tasks[task.task_id] = {
            "operator": type(task).__name__,
            "retries": getattr(task, "retries", None),
            "retry_delay_s": delay.total_seconds() if hasattr(delay, "total_seconds") else None,
            "owner": getattr(task, "owner", None),
            "downstream": sorted(task.downstream_task_ids),
        }
    try:
        runs = [t.isoformat() for t in next_run_times(dag.timetable, RUN_TIMES, after=reference)]
        text = describe(dag.timetable)
    except Exception as exc:  # an odd timetable: the schedule check will say what it is
        runs, text = [], f"(could not compute run times: {exc})"
    expected = [t.isoformat() for t in next_run_times(schedule, RUN_TIMES, after=reference)]
    return {"dag_id": dag.dag_id, "tasks": tasks, "schedule": repr(dag.timetable), "schedule_text": text,
            "run_times": runs, "expected_run_times": expected,
            "start_date": dag.start_date.isoformat() if dag.start_date else None,
            "catchup": bool(dag.catchup)}


GUARDED = ("airflow.sdk.definitions.dag:DAG", "airflow.sdk.bases.operator:BaseOperator",
           "airflow.models.dagrun:DagRun", "airflow.models.taskinstance:TaskInstance",
           "airflow.sdk.execution_time.task_runner", "airflow.models.xcom:XComModel",
           "airflow.sdk.execution_time.xcom:XCom", "sqlite3", "smtplib:SMTP")


def _snapshot() -> dict[str, int]:
    """Identity of every attribute of the Airflow parts a submission could patch to fake a pass."""
    import importlib

    seen = {}
    for target in GUARDED:
        module_name, _, attr = target.partition(":")
        obj = importlib.import_module(module_name)
        if attr:
            obj = getattr(obj, attr)
        for name, value in vars(obj).items():
            if callable(value) or isinstance(value, classmethod | staticmethod | property):
                seen[f"{target.split(':')[-1].split('.')[-1]}.{name}"] = id(value)
    return seen


def _changed(before: dict[str, int]) -> list[str]:
    now = _snapshot()
    return sorted(name for name, ident in before.items() if now.get(name) != ident)


def child_main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    channel = os.fdopen(spec["fd"], "w", buffering=1)

    def send(**event: Any) -> None:
        channel.write(json.dumps(event, default=str) + "\n")
        channel.flush()

    dag_file = spec["dag_file"]
    import importlib.util

    import pendulum
    from airflow.sdk import DAG
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    real_test = DAG.test  # before the learner's file can replace it
    before = _snapshot()
    send(event="phase", phase="import")
    module_name = "submission"
    DagContext.current_autoregister_module_name = module_name
    try:
        loader = importlib.util.spec_from_file_location(module_name, dag_file)
        module = importlib.util.module_from_spec(loader)
        sys.modules[module_name] = module
        loader.loader.exec_module(module)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt included: report, never crash
        send(event="imported", ok=False, error=_error(exc, dag_file))
        os._exit(0)
    tampered = _changed(before)
    if tampered:
        message = f"the file replaces part of Airflow itself ({', '.join(tampered)})"
        send(event="imported", ok=False, error={"type": "Tampering", "message": message})
        os._exit(0)
    found = {id(o): o for o in vars(module).values() if isinstance(o, DAG)}
    found.update({id(d): d for d, _ in DagContext.autoregistered_dags})
    dags = {d.dag_id: d for d in found.values()}
    dag = dags.get(spec["dag_id"]) or (next(iter(dags.values())) if len(dags) == 1 else None)
    described = _describe_dag(dag, spec["schedule"]) if dag is not None else None
    send(event="imported", ok=True, dag_ids=sorted(dags), dag=described)
    if dag is None or not spec.get("runs"):
        os._exit(0)

    from airflow.sdk.execution_time import task_runner

    run_index = 0
    run_task = task_runner._execute_task

    def execute_and_report(*args: Any, **kwargs: Any) -> Any:
        # The task runner calls this module-level function for every task: the one place that
        # sees each learner exception with its traceback, whatever the operator.
        try:
            return run_task(*args, **kwargs)
        except BaseException as exc:
            ti = kwargs.get("ti") or (args[1] if len(args) > 1 else None)
            send(event="task_failed", task_id=getattr(ti, "task_id", "?"), run=run_index,
                 error=_error(exc, dag_file))
            raise

    task_runner._execute_task = execute_and_report
    before = _snapshot()  # our own wrapper is not the learner's doing
    for task in dag.tasks:
        task.retries = 0  # a failing task reports at once instead of waiting for retry_delay
    for run_index in range(spec["runs"]):
        # A second run on the next day shows whether re-running duplicates the work.
        send(event="phase", phase=f"run{run_index}")
        try:
            run = real_test(dag, logical_date=pendulum.parse(RUN_DATE).add(days=run_index))
            send(event="ran", run=run_index, state=str(getattr(run, "state", None)))
        except BaseException as exc:
            send(event="ran", run=run_index, state="error", error=_error(exc, dag_file))
        tampered = _changed(before)
        if tampered:
            send(event="tampered", run=run_index, names=tampered)
            break
    # Skip interpreter teardown: Airflow's in-process API client blocks for seconds in finalizers.
    os._exit(0)


if __name__ == "__main__":
    child_main(sys.argv[1])
