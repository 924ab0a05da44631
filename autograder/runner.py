"""The one module that starts the processes that run learner code.

``collect()`` prepares a submission's sandbox folders (a home with a metadata database copied
from a pre-migrated template, a read-only copy of the submission and of the grading data, a
writable warehouse folder), a live SMTP sink and a warehouse, then starts the trusted grading
process for it: forked from a ``WarmServer`` (fast) or as ``python -m autograder.runner SPEC``.
That process runs the learner's code in sandboxes (``autograder.sandbox``, whose docstring states
the trust boundary) and is killed with its process group at its deadline.

The verdict never rests on what learner code prints or sends: task states and XComs are read
from the grading process's metadata database, rows from the warehouse, mail from the sink.
"""

from __future__ import annotations

import ast
import fcntl
import gc
import json
import os
import re
import resource
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import secrets
import time
import tokenize
import traceback
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from autograder import migration
# RUN_DATE and co. live in config, so that the exercises' checks read them without this module.
from autograder.config import REPO_ROOT, RUN_DATE, RUN_TIMES, SCHEDULE_REFERENCE, GradeConfig  # noqa: F401
from autograder.facts import DagInfo, ErrorInfo, Facts, RunInfo
from autograder.sandbox import isolate
from autograder.world import MailSink, conn_env, warehouse_for

OUTPUT_TAIL = 1 << 20


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


def _set_limits(cpu_seconds: int, memory_bytes: int, file_bytes: int) -> None:
    """Resource limits of a child that runs learner code (CPU time, address space, file size)."""
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))


def _limits(config: GradeConfig):
    return lambda: _set_limits(config.cpu_seconds, config.memory_bytes, config.file_bytes)


# What Python's parser raises for an expression nested thousands deep ("- - - ... 1"), instead
# of a SyntaxError.
TOO_DEEP = (MemoryError, RecursionError)
TOO_DEEP_MESSAGE = "an expression is nested too deeply for Python's parser"


def syntax_facts(facts: Facts) -> None:
    try:
        compile(facts.source or "", facts.filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        facts.syntax_error = ErrorInfo(type=type(exc).__name__, message=exc.msg or "",
                                       line=exc.lineno, code=(exc.text or "").rstrip("\n"))
    except TOO_DEEP:
        facts.syntax_error = ErrorInfo(type="SyntaxError", message=TOO_DEEP_MESSAGE)


def airflow2_idioms(path: Path, source: str | None = None) -> list[dict]:
    """ruff's Airflow 2 -> 3 rules (``migration.RULES``) on the file, each finding as one sentence,
    and the course's notes on imports ruff does not flag.

    ruff flags a name where it is used; a probe that uses every name the file imports from
    ``airflow`` finds the imports too, used or not (an unused one still fails the import).
    """
    findings = _ruff(path.read_bytes(), path.name)
    imports = _airflow_imports(source)
    if imports:
        probe = "".join(f"from {module} import {name}\n{name}\n" for module, name, _ in imports)
        for finding in _ruff(probe.encode(), path.name):
            finding["line"] = imports[(finding["line"] - 1) // 2][2]
            findings.append(finding)
    for module, name, line in imports:
        note = migration.course_note(f"{module}.{name}")
        if note and not any(f["line"] == line for f in findings):
            findings.append({"code": "course", "line": line, "name": f"{module}.{name}", "message": note})
    seen, unique = set(), []
    for finding in sorted(findings, key=lambda f: f["line"]):
        if finding["message"] not in seen:  # an import and its uses: shown once, at the import
            seen.add(finding["message"])
            unique.append(finding)
    return unique


def _ruff(source: bytes, filename: str) -> list[dict]:
    ruff = Path(sys.executable).parent / "ruff"
    done = subprocess.run([str(ruff if ruff.exists() else "ruff"), "check", "--no-cache", "--preview",
                           "--isolated", "--select", ",".join(migration.RULES), "--output-format",
                           "json", "--stdin-filename", filename, "-"],
                          input=source, capture_output=True, timeout=60)
    try:
        found = json.loads(done.stdout or b"[]")
    except ValueError:
        return []
    return [{"code": f["code"], "line": f["location"]["row"],
             "name": next(iter(re.findall(r"`([^`]+)`", f["message"])), ""),
             "message": migration.sentence(f["code"], f["message"], (f.get("fix") or {}).get("message"))}
            for f in found]


# CPython 3.11 builds the Python objects of an AST with a recursion counter shared by all threads:
# two grading threads parsing at once can fail with "AST constructor recursion depth mismatch".
_AST_LOCK = threading.Lock()


def _airflow_imports(source: str | None) -> list[tuple[str, str, int]]:
    """(module, name, line) of each ``from airflow... import name`` in the file."""
    try:
        with _AST_LOCK:
            tree = ast.parse(source or "")
    except (SyntaxError, ValueError, *TOO_DEEP):
        return []
    return [(node.module, alias.name, node.lineno) for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 0
            and (node.module or "").split(".")[0] == "airflow"
            for alias in node.names if alias.name != "*"]


def read_source(path: Path) -> str:
    """The file's text as Python reads it: a UTF-8 BOM or a PEP 263 coding line is honoured."""
    with tokenize.open(path) as f:
        return f.read()


def collect(exercise: Any, submission: Path, config: GradeConfig,
            server: WarmServer | None = None) -> Facts:
    """Everything the checks need to know about one submission.

    With a WarmServer the grading process is forked from an interpreter that has Airflow loaded
    and warmed up (fast); without one it is a fresh interpreter (slow start, nothing shared).
    """
    facts = Facts(exercise=exercise, submission=submission, filename=submission.name)
    try:
        raw = submission.read_bytes()
        facts.source = read_source(submission)
    except FileNotFoundError:
        facts.read_error = f"{submission.name} does not exist"
        return facts
    except (OSError, UnicodeDecodeError, SyntaxError) as exc:
        facts.read_error = f"{submission.name} cannot be read as Python source: {exc}"
        return facts
    syntax_facts(facts)
    # ruff runs (twice) while the DAG is graded: the grader waits for the run anyway.
    idioms = _in_background(airflow2_idioms, submission, facts.source)
    try:
        _collect_run(facts, exercise, submission, raw, config, server)
    finally:
        facts.airflow2_idioms = idioms()
    return facts


def _in_background(func: Any, *args: Any) -> Any:
    """Start ``func(*args)`` in a thread; the returned function waits for its result (or raises
    what it raised)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, func(*args)))
        except BaseException as exc:  # handed to the caller
            outcome.append((False, exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def wait() -> Any:
        thread.join()
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    return wait


def _collect_run(facts: Facts, exercise: Any, submission: Path, raw: bytes, config: GradeConfig,
                 server: WarmServer | None) -> None:
    """The facts of running the submission: its parse, its runs, their rows and mail."""
    if exercise.grading_data.exists():
        facts.expected = exercise.expected_from(exercise.grading_data)
    facts.not_isolated = isolate.available() if config.sandbox else \
        "the sandbox was switched off (--no-sandbox)"
    if facts.syntax_error:
        return

    with ExitStack() as stack:
        sandbox = Path(tempfile.mkdtemp(prefix=f"grade-{exercise.id}-", dir=scratch_dir()))  # 0700
        if not config.keep_sandbox:
            stack.callback(shutil.rmtree, sandbox, True)
        home, dags = sandbox / "home", sandbox / "dags"
        learner, store, root = sandbox / "learner", sandbox / "warehouse", sandbox / "root"
        for folder in (home, dags, learner, store, root):
            folder.mkdir()
        shutil.copy(template_db(config), home / "airflow.db")
        (dags / submission.name).write_bytes(raw)  # the bytes graded, whatever happens to the file
        if exercise.grading_data.exists():
            shutil.copytree(exercise.grading_data, dags / "data", symlinks=False)
        isolated = facts.not_isolated is None
        uid = 100_000 + secrets.randbelow(1 << 30)  # throwaway: no file or process has it
        if isolated:
            for folder in (learner, store):
                os.chown(folder, uid, uid)
        sink = stack.enter_context(MailSink())
        warehouse = stack.enter_context(warehouse_for(config.warehouse_url, store))
        if isolated and warehouse.kind == "SQLite":
            warehouse.path.touch()
            os.chown(warehouse.path, uid, uid)
        conns = {"warehouse": warehouse.connection(), "smtp_default": sink.connection(),
                 "fs_default": FS_DEFAULT}
        forward = [(sink.port, "127.0.0.1", sink.port)]
        if warehouse.kind == "PostgreSQL":
            db = conns["warehouse"]
            forward.append((db["port"], db["host"], db["port"]))
            if isolated:
                conns["warehouse"] = {**conns["warehouse"], "host": "127.0.0.1"}
        env = child_env(home, dags, dict(conn_env(k, v) for k, v in conns.items()))
        (home / "tasks").mkdir()
        runs = max(1, exercise.runs) + len(exercise.also_dags) * exercise.asset_runs
        spec = {"dag_file": str(dags / submission.name), "dag_id": exercise.dag_id,
                "task_logs": str(home / "tasks"),
                "schedule": exercise.schedule, "runs": exercise.runs,
                "run_date": exercise.run_date.isoformat(), "forward": forward,
                "import_timeout": config.import_timeout,
                "deadline": config.boot_timeout + config.import_timeout
                + config.run_timeout * runs + 30,
                "box": sandbox_box(root, uid, dags, learner, store, conns, config, isolated),
                "also": list(exercise.also_dags), "asset_runs": exercise.asset_runs,
                "arrival": _arrival_spec(exercise, dags / "data", home),
                "all_runs": runs}
        # The run the exercise calls its first, and the second, by the order they were run in.
        order = spec["arrival"]["order"] if spec["arrival"] else [0, 1]
        events, ended = _run_child(spec, env, home, config, server)
        _read_events(facts, events, ended)
        if facts.dag is not None and ended["phase"].startswith("run"):
            by_dag = _runs_from_db(home / "airflow.db", {facts.dag.dag_id, *facts.others}, events,
                                   ended)
            runs = [r for r in by_dag.get(facts.dag.dag_id, []) if r.run_type != "asset_triggered"]
            facts.triggered = {d: [r for r in found if r.run_type == "asset_triggered"]
                               for d, found in by_dag.items()}
            ran = next((e for e in events if e["event"] == "ran"), None)
            graded = dict(zip(order, runs, strict=False))  # fewer runs: the others never came
            # No run in the database: the run failed before creating one (a cycle, say).
            facts.run = graded.get(0) or RunInfo(
                state=None, task_states={}, xcoms={}, failures={}, timed_out=ended["timed_out"],
                crash=None if ended["timed_out"] or ran else _crash_text(ended),
                error=ErrorInfo.from_dict(ran.get("error")) if ran else None)
            facts.rerun = graded.get(1)
            if exercise.warehouse_table:
                try:
                    facts.warehouse_rows = warehouse.rows(exercise.warehouse_table)
                except LookupError as exc:
                    facts.warehouse_error = str(exc)
            facts.mails = sink.mails
        facts.output_tail = _task_logs(home / "tasks", order.index(0)) or _tail(home / "output.log")
        facts.dags_folder = f"{dags}/"


# FileSensor's default connection: a path relative to nothing, so that its filepath is the path.
FS_DEFAULT = {"conn_type": "fs", "extra": {"path": ""}}


def _arrival_spec(exercise: Any, data: Path, home: Path) -> dict | None:
    """Where the exercise's arriving file comes from, where it appears and when."""
    arrival = exercise.arrival
    if arrival is None:
        return None
    # Runs in a random order (``order[i]``: which of ``arrival.after`` run i gets), so that a DAG
    # cannot tell from its run's place, date or a note left by the run before whether the file
    # will come: only by looking for it.
    order = list(range(len(arrival.after)))
    secrets.SystemRandom().shuffle(order)
    return {"source": str(exercise.arrivals / arrival.source), "target": str(data / arrival.target),
            "staging": str(home), "after": [arrival.after[i] for i in order], "order": order}


def scratch_dir() -> str | None:
    """Where a submission's folders go: memory (``/dev/shm``) where the machine has it, since the
    throwaway metadata database commits after every task step and needs no disk; else the temp dir."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None


def sandbox_box(root: Path, uid: int, dags: Path, learner: Path, store: Path, conns: dict,
                config: GradeConfig, isolated: bool) -> dict:
    """What the sandboxed processes of one submission see: the interpreter and venv read-only,
    the submission and its data read-only, a home and the warehouse folder writable."""
    interpreter = {sys.base_prefix, sys.prefix}
    binds = [(p, p, False) for p in sorted(interpreter)]
    binds += [(str(dags), str(dags), False), (str(learner), str(learner), True),
              (str(store), str(store), True)]
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(learner), "USER": "learner", "LOGNAME": "learner", "LANG": "C.UTF-8",
        "AIRFLOW_HOME": str(learner / "airflow"), "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__EMAIL__FROM_EMAIL": "airflow@course.local",
        "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1",
        **dict(conn_env(k, v) for k, v in conns.items()),
    }
    return {"root": str(root), "uid": uid, "binds": binds, "env": env, "cwd": str(learner),
            "isolated": isolated,
            "limits": {"cpu_seconds": config.cpu_seconds, "memory_bytes": config.memory_bytes,
                       "file_bytes": config.file_bytes}}


class _Cold:
    """A fresh interpreter per submission: slow to start (imports Airflow), nothing shared."""

    def __init__(self, spec_file: Path, env: dict[str, str], home: Path, config: GradeConfig):
        with open(home / "output.log", "ab") as out:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "autograder.runner", str(spec_file)], env=env, cwd=home,
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=_limits(config))
        self.pid = self._proc.pid

    def poll(self) -> int | None:
        return self._proc.poll()

    def wait(self, timeout: float) -> int | None:
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None


def _run_child(spec: dict, env: dict[str, str], home: Path, config: GradeConfig,
               server: WarmServer | None) -> tuple[list[dict], dict]:
    """Run the child; return its events and how it ended (phase, timed_out, exit code)."""
    events_file = home / "events.jsonl"
    events_file.touch()
    spec_file = home / "spec.json"
    spec_file.write_text(json.dumps({**spec, "events": str(events_file)}))
    child = (server.spawn(spec_file, env, home, config) if server is not None
             else _Cold(spec_file, env, home, config))
    budget = {"boot": config.boot_timeout, "import": config.import_timeout}
    phase, deadline = "boot", time.monotonic() + config.boot_timeout
    # However the phases go, the whole grading ends by then.
    overall = time.monotonic() + config.boot_timeout + config.import_timeout \
        + config.run_timeout * max(1, spec.get("all_runs", spec.get("runs", 1)))
    events: list[dict] = []
    timed_out = None
    offset = 0

    def read_new() -> None:
        nonlocal offset, phase, deadline
        with open(events_file, "rb") as f:
            f.seek(offset)
            data = f.read()
        complete = data[:data.rfind(b"\n") + 1]
        offset += len(complete)
        for line in complete.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict) or not isinstance(event.get("event"), str):
                continue
            events.append(event)
            if event.get("event") == "phase":
                phase = event["phase"]
                deadline = time.monotonic() + budget.get(phase, config.run_timeout)

    while True:
        exited = child.poll() is not None
        read_new()
        if exited:
            break
        if time.monotonic() > min(deadline, overall):
            timed_out = phase
            _kill_group(child.pid)
            break
        child.wait(0.05)  # returns as soon as the child ends
    returncode = child.wait(10)
    _kill_group(child.pid)  # anything the learner's code left running in the background
    if returncode is None:
        returncode = child.wait(10)
    return events, {"phase": phase, "timed_out": timed_out, "returncode": returncode}


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _crash_text(ended: dict) -> str:
    return ended_early(ended.get("returncode"), "the process running your DAG")


def ended_early(code: int | None, process: str) -> str:
    """Why ``process`` ended before it finished, from its exit code (negative: a signal)."""
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        why = {"SIGXCPU": "it used more CPU time than allowed", "SIGKILL": "it was killed",
               "SIGXFSZ": "it wrote a file larger than allowed"}.get(name, f"signal {name}")
        return f"{process} was stopped: {why}"
    return (f"{process} exited with code {code} before it finished "
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
        schedule = by_kind.get("schedule", {})
        timing = {k: schedule[k] for k in ("schedule_text", "run_times", "expected_run_times")
                  if k in schedule}
        facts.dag = DagInfo.from_dict({**imported["dag"], **timing})
    facts.others = {i: DagInfo.from_dict(d) for i, d in (imported.get("others") or {}).items()}


def _runs_from_db(db: Path, dag_ids: set[str], events: list[dict], ended: dict,
                  ) -> dict[str, list[RunInfo]]:
    """Task states and XComs of each run of ``dag_ids``, as Airflow recorded them, oldest run
    first. A run's index in the events is its place among its DAG's manual runs, or, for a run an
    asset event triggered, ``flows.TRIGGERED_RUN`` plus its place among those."""
    from autograder.flows import TRIGGERED_RUN

    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        marks = ",".join("?" * len(dag_ids))
        runs = conn.execute(f"SELECT id, dag_id, run_id, state, run_type FROM dag_run "
                            f"WHERE dag_id IN ({marks}) ORDER BY id", sorted(dag_ids)).fetchall()
        found: dict[str, list[RunInfo]] = {}
        counted: dict[str, int] = {}
        triggered = 0
        for position, (key, dag_id, run_id, state, run_type) in enumerate(runs):
            if run_type == "asset_triggered":
                index, triggered = TRIGGERED_RUN + triggered, triggered + 1
            else:
                index = counted.get(dag_id, 0)
                counted[dag_id] = index + 1
            rows = conn.execute(
                "SELECT task_id, state, id, start_date, end_date FROM task_instance "
                "WHERE dag_id = ? AND run_id = ?", (dag_id, run_id)).fetchall()
            states = {task_id: state for task_id, state, *_ in rows}
            by_key: dict[str, dict[str, Any]] = {}
            for task_id, key_name, value in conn.execute(
                    "SELECT task_id, key, value FROM xcom WHERE dag_id = ? AND run_id = ? "
                    "AND map_index = -1", (dag_id, run_id)):
                try:
                    by_key.setdefault(task_id, {})[key_name] = _plain(json.loads(value))
                except (TypeError, ValueError):
                    by_key.setdefault(task_id, {})[key_name] = value
            xcoms = {t: keys["return_value"] for t, keys in by_key.items() if "return_value" in keys}
            mine = [e for e in events if e.get("run") == index]
            ran = next((e for e in mine if e["event"] == "ran"), None)
            last = position == len(runs) - 1
            timed_out = ended["timed_out"] if last else None
            durations, reschedules = _task_times(conn, rows)
            found.setdefault(dag_id, []).append(RunInfo(
                state=state, task_states={k: v or "none" for k, v in states.items()}, xcoms=xcoms,
                xcom_keys=by_key,
                failures={e["task_id"]: ErrorInfo.from_dict(e["error"]) for e in mine
                          if e["event"] == "task_failed"},
                timed_out=timed_out,
                running_tasks=tuple(sorted(t for t, s in states.items() if s == "running")),
                crash=None if ran or timed_out else _crash_text(ended),
                error=ErrorInfo.from_dict(ran.get("error")) if ran else None,
                run_type=run_type or "", consumed=_consumed(conn, key),
                asset_events=_asset_events(conn, dag_id, run_id),
                durations=durations, reschedules=reschedules))
    return found


def _consumed(conn: sqlite3.Connection, run_key: int) -> tuple[dict[str, Any], ...]:
    """The asset events a run was created from, as the scheduler linked them."""
    return tuple({"uri": uri, "dag_id": dag_id, "task_id": task_id, "run_id": run_id}
                 for uri, dag_id, task_id, run_id in conn.execute(
                     "SELECT asset.uri, e.source_dag_id, e.source_task_id, e.source_run_id "
                     "FROM dagrun_asset_event AS link JOIN asset_event AS e ON e.id = link.event_id "
                     "JOIN asset ON asset.id = e.asset_id WHERE link.dag_run_id = ? ORDER BY e.id",
                     (run_key,)))


def _asset_events(conn: sqlite3.Connection, dag_id: str, run_id: str) -> dict[str, tuple[str, ...]]:
    """The URIs of the assets each task of a run updated, as the Execution API recorded them."""
    found: dict[str, list[str]] = {}
    for task_id, uri in conn.execute(
            "SELECT e.source_task_id, asset.uri FROM asset_event AS e JOIN asset ON asset.id = "
            "e.asset_id WHERE e.source_dag_id = ? AND e.source_run_id = ? ORDER BY e.id",
            (dag_id, run_id)):
        found.setdefault(task_id, []).append(uri)
    return {t: tuple(uris) for t, uris in found.items()}


def _task_times(conn: sqlite3.Connection, rows: list[tuple]) -> tuple[dict[str, float], dict[str, int]]:
    """Seconds from each task's first start (its first reschedule, for a sensor) to its end, and
    how many times each task was rescheduled."""
    durations, reschedules = {}, {}
    for task_id, _state, ti_id, start, end in rows:
        first, count = conn.execute("SELECT MIN(start_date), COUNT(*) FROM task_reschedule "
                                    "WHERE ti_id = ?", (ti_id,)).fetchone()
        reschedules[task_id] = count
        begin = min(filter(None, (first, start)), default=None)
        if begin and end:
            durations[task_id] = round((_stamp(end) - _stamp(begin)).total_seconds(), 2)
    return durations, reschedules


def _stamp(text: str) -> datetime:
    when = datetime.fromisoformat(str(text).replace(" ", "T"))
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _plain(value: Any) -> Any:
    """Undo Airflow's serde wrapping of tuples, sets and the like."""
    if isinstance(value, dict):
        if "__data__" in value and ("__classname__" in value or "__type" in value):
            return _plain(value["__data__"])
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _tail(path: Path, size: int = OUTPUT_TAIL) -> str:
    """The last ``size`` bytes of a log, however long it grew."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - size))
            return f.read(size).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _task_logs(folder: Path, first: int = 0, per_task: int = 64 << 10) -> str:
    """The task logs of run ``first`` (the one the exercise calls its first) in the order the tasks
    ran, each framed as ``dag.test()`` does, then those of the runs its asset events triggered
    (``flows.TRIGGERED_RUN`` on)."""
    from autograder.flows import TRIGGERED_RUN

    def run_of(path: Path) -> int:
        head = path.name.split("-", 1)[0]
        return int(head) if head.isdigit() else -1

    triggered = sorted((p for p in folder.glob("*-*.log") if run_of(p) >= TRIGGERED_RUN),
                       key=lambda p: (run_of(p), p.name))
    parts = []
    for path in [*sorted(folder.glob(f"{first}-*.log")), *triggered]:
        task_id = path.stem.split("-", 2)[2]
        parts += [f"[DAG TEST] starting task_id={task_id} map_index=-1", _tail(path, per_task),
                  f"[DAG TEST] end task task_id={task_id} map_index=-1"]
    return "\n".join(parts)


def task_log(output: str, task_id: str, lines: int = 25, dags_folder: str = "") -> str:
    """What ``task_id`` logged during the first run (its last ``lines`` lines), without the
    bookkeeping lines of Airflow's own in-process API."""
    text = output.splitlines()
    start = next((i for i, line in enumerate(text)
                  if f"[DAG TEST] starting task_id={task_id} " in line), None)
    if start is None:
        return ""
    end = next((i for i in range(start, len(text))
                if f"[DAG TEST] end task task_id={task_id} " in text[i]), len(text) - 1)
    mine, in_airflow_frame = [], False
    for line in text[start + 1:end]:
        if line.startswith('  File "'):
            # Traceback frames inside Airflow say nothing a learner can act on: keep theirs.
            in_airflow_frame = "site-packages" in line or str(Path(__file__).parent) in line
            line = line.replace(dags_folder, "") if dags_folder else line
        elif not line.startswith("    "):
            in_airflow_frame = False
        noise = ("[airflow.api_fastapi" in line or "[DAG TEST]" in line or "::group::" in line
                 or "::endgroup::" in line or "StarletteDeprecationWarning" in line)
        if not in_airflow_frame and not noise:
            mine.append(line)
    return "\n".join(mine[-lines:])


class WarmServer:
    """A fork server: one interpreter imports Airflow and runs a warm-up ``dag.test()`` once, then
    forks a child per submission. Each child gets its own session, limits, Airflow home, database
    and execution-API transport, exactly like a cold child, without paying the start-up again.
    """

    def __init__(self, config: GradeConfig) -> None:
        self.config = config
        self._home = Path(tempfile.mkdtemp(prefix="grade-warm-"))
        home, dags = self._home / "home", self._home / "home" / "dags"
        dags.mkdir(parents=True)
        shutil.copy(template_db(config), home / "airflow.db")
        self._log = open(home / "server.log", "ab")  # noqa: SIM115 - lives as long as the server
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "autograder.runner", "--serve"], env=child_env(home, dags, {}),
            cwd=home, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            start_new_session=True)
        self._lock = threading.Lock()
        self._exits: dict[int, int] = {}
        self._replies: dict[int, int] = {}
        self._changed = threading.Condition()
        self._next_id = 0
        ready = self._proc.stdout.readline()  # the warm-up, bounded by the boot time-out below
        if json.loads(ready or b"{}").get("ready") is not True:
            self.close()
            raise RuntimeError(f"The grading server did not start. Its log: {home / 'server.log'}")
        threading.Thread(target=self._listen, daemon=True).start()

    def _listen(self) -> None:
        for line in self._proc.stdout:
            try:
                message = json.loads(line)
                if not isinstance(message, dict):
                    continue
            except ValueError:
                continue
            with self._changed:
                if "exit" in message:
                    self._exits[message["pid"]] = message["exit"]
                else:
                    self._replies[message["id"]] = message["pid"]
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def spawn(self, spec_file: Path, env: dict[str, str], home: Path, config: GradeConfig) -> _Forked:
        with self._lock:
            self._next_id += 1
            request = {"id": self._next_id, "spec": str(spec_file), "env": env, "home": str(home),
                       "limits": [config.cpu_seconds, config.memory_bytes, config.file_bytes]}
            self._proc.stdin.write((json.dumps(request) + "\n").encode())
            self._proc.stdin.flush()
        with self._changed:
            if not self._changed.wait_for(lambda: request["id"] in self._replies, timeout=30):
                raise RuntimeError("The grading server did not fork a child within 30 s.")
            return _Forked(self, self._replies.pop(request["id"]))

    def exit_code(self, pid: int, timeout: float) -> int | None:
        with self._changed:
            self._changed.wait_for(lambda: pid in self._exits or self._proc.poll() is not None,
                                   timeout=timeout)
            return self._exits.get(pid)

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        _kill_group(self._proc.pid)
        self._log.close()
        shutil.rmtree(self._home, ignore_errors=True)

    def __enter__(self) -> WarmServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Forked:
    def __init__(self, server: WarmServer, pid: int) -> None:
        self._server, self.pid = server, pid

    def poll(self) -> int | None:
        return self._server.exit_code(self.pid, 0)

    def wait(self, timeout: float) -> int | None:
        return self._server.exit_code(self.pid, timeout)


WARM_UP_DAG = """
import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, task

with DAG(dag_id="warm_up", schedule="@daily", start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
         catchup=False) as dag:
    @task
    def first():
        return [{"x": 1}]

    @task
    def second(rows):
        return len(rows)

    second(first()) >> BashOperator(task_id="shell", bash_command="echo warm")
"""


def serve() -> None:
    """The fork server's loop: warm up, then fork one child per request read from stdin."""
    import importlib.util

    import pendulum

    # Replies go to the real stdout; everything Airflow or a child prints goes to the log.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    # What learner DAGs commonly import: loaded once here, shared by every child.
    for name in ("airflow.providers.standard.operators.python", "airflow.providers.standard.operators.bash",
                 "airflow.providers.smtp.operators.smtp", "airflow.providers.common.sql.hooks.sql",
                 "airflow.providers.sqlite.hooks.sqlite", "airflow.providers.postgres.hooks.postgres",
                 "airflow.timetables.trigger", "airflow.timetables.interval", "pandas", "course.schedules",
                 "airflow.sdk.execution_time.task_runner", "airflow.dag_processing.dagbag",
                 "airflow.dag_processing.collection", "autograder.sandbox.supervise"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    from autograder.sandbox.supervise import memoize_dependants

    memoize_dependants()
    dags = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    (dags / "warm_up.py").write_text(WARM_UP_DAG)
    spec = importlib.util.spec_from_file_location("warm_up", dags / "warm_up.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.dag.test(logical_date=pendulum.datetime(2024, 1, 1, tz="UTC"))
    from autograder.exercises import all_exercises
    from autograder.sandbox.supervise import timing

    for exercise in all_exercises().values():
        timing(exercise.schedule)
    gc.freeze()  # what the forks inherit stays shared: see supervise.main
    out.write(b'{"ready": true}\n')
    out.flush()

    def report_exits() -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            out.write(json.dumps({"pid": pid, "exit": os.waitstatus_to_exitcode(status)}).encode()
                      + b"\n")
            out.flush()

    stdin = sys.stdin.buffer
    while True:
        ready, _, _ = select.select([stdin], [], [], 0.05)
        report_exits()
        if not ready:
            continue
        line = stdin.readline()
        if not line:
            break
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _forked_child(request)  # never returns
        out.write(json.dumps({"id": request["id"], "pid": pid}).encode() + b"\n")
        out.flush()
    while True:  # stdin closed: wait for the children still running, then leave
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        out.write(json.dumps({"pid": pid, "exit": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
        out.flush()
    os._exit(0)


_kept_alive: list[Any] = []


def _forked_child(request: dict) -> None:
    """In a child of the fork server: become a sandboxed grading child, then run the submission."""
    try:
        os.setsid()
        isolate.prctl(isolate.PR_SET_PDEATHSIG, signal.SIGKILL)  # ends if the server ends
        _set_limits(*request["limits"])
        out = os.open(Path(request["home"]) / "output.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(out, 1)
        os.dup2(out, 2)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.chdir(request["home"])
        os.environ.clear()
        os.environ.update(request["env"])
        isolate.close_fds({0, 1, 2})  # the server's pipes are not the submission's business
        _point_airflow_at_this_home()
        from autograder.sandbox import supervise

        supervise.main(request["spec"])
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(70)


def _point_airflow_at_this_home() -> None:
    """Re-read the settings that Airflow computed at import time from the new environment."""
    from airflow import settings
    from airflow.sdk.execution_time import supervisor

    old_engine = settings.engine
    settings.configure_vars()
    if old_engine is not None:
        old_engine.dispose(close=False)  # the parent's connections are not ours to close
    settings.engine = None
    settings.Session = None
    settings.configure_orm()
    if getattr(old_engine, "_compiled_cache", None) is not None and \
            old_engine.dialect.name == settings.engine.dialect.name:
        # The statements compiled during the warm-up, kept by dialect: the same SQL for the same
        # kind of database, so this engine uses the warm one's dialect and its compiled cache.
        settings.engine.dialect = old_engine.dialect
        settings.engine._compiled_cache = old_engine._compiled_cache
    # dag.test() serves the execution API in-process on an event-loop thread, which did not survive
    # the fork: make a fresh transport, reusing the already built app. The old server object is
    # kept alive, because its finalizer would block waiting for that dead thread.
    from airflow.api_fastapi.execution_api.app import InProcessExecutionAPI

    old = supervisor.in_process_api_server()
    _kept_alive.append(old)
    fresh = InProcessExecutionAPI(app=old.app)
    supervisor.in_process_api_server = lambda: fresh


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        serve()
    else:
        from autograder.sandbox import supervise

        supervise.main(sys.argv[1])
