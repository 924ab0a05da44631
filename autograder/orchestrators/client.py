"""The grader's side of a Prefect or Dagster exercise (Airflow's ``.venv``, no Prefect, no Dagster).

``collect`` prepares the submission's folders (a read-only copy of the file and of the grading
data, a writable home and a warehouse the grader created), starts the engine in
``.venv-orchestrators`` with a deadline, then reads the warehouse itself. ``grade`` runs the
spec's checks over the facts and returns the same ``Report`` as every other exercise.
"""

from __future__ import annotations

import ast
import atexit
import json
import os
import select
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.checks import evaluate
from autograder.config import REPO_ROOT, GradeConfig, default_submission, display_path
from autograder.facts import ErrorInfo
from autograder.model import Report

ENV_DIR = REPO_ROOT / ".venv-orchestrators"
WAREHOUSE_ENV = "WAREHOUSE_DB"


@dataclass
class FlowFacts:
    """What the grader knows about one Prefect or Dagster submission (see the package docstring
    for which of these a verdict may rest on)."""

    exercise: Any
    submission: Path
    filename: str
    source: str | None = None
    read_error: str | None = None
    syntax_error: ErrorInfo | None = None
    tree: ast.Module | None = None
    import_error: ErrorInfo | None = None
    import_timed_out: bool = False
    import_crash: str | None = None
    meddled: bool = False             # its code wrote into the grader's channel
    structure: dict | None = None     # what the file declares, said by the sandbox
    run: dict | None = None           # how the run went, said by the sandbox: messages only
    run_timed_out: bool = False
    run_crash: str | None = None
    returncode: int | None = None
    warehouse_rows: list[dict] | None = None
    warehouse_error: str | None = None
    expected: dict[str, Any] = field(default_factory=dict)
    not_isolated: str | None = None
    grader_error: str | None = None
    shown_as: str = ""
    seconds: float = 0.0


def grade(exercise: Any, submission: Path | None = None, config: GradeConfig | None = None,
          shown_as: str | None = None) -> Report:
    """The report on one submission of a Prefect or Dagster exercise."""
    config = config or GradeConfig.from_env()
    submission = submission or default_submission(exercise)
    started = time.monotonic()
    facts = collect(exercise, submission, config)
    facts.shown_as = shown_as or display_path(submission)
    report = Report(exercise=exercise.id, submission=facts.shown_as,
                    checks=evaluate(exercise.checks, facts))
    if facts.not_isolated:
        report.notes.append(f"Not isolated: {facts.not_isolated}. Your code ran with your own rights; "
                            "grades for a class are only made in the sandbox.")
    if not exercise.hidden_data.exists() and exercise.sample_data.exists():
        report.notes.append("Graded on your sample data in data/; your instructor grades on other "
                            "rows, so make sure your code reads the file rather than fixed values.")
    if facts.grader_error:
        report.notes.append(f"The grader met a problem of its own: {facts.grader_error}. Grade again; "
                            "tell your instructor if it persists.")
    report.duration_s = time.monotonic() - started
    return report


def _sandbox_root() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None


def collect(exercise: Any, submission: Path, config: GradeConfig) -> FlowFacts:
    """Everything the checks need to know about one submission."""
    from autograder.sandbox import isolate

    facts = FlowFacts(exercise=exercise, submission=submission, filename=submission.name)
    try:
        raw = submission.read_bytes()
        with tokenize.open(submission) as f:  # a BOM or a coding line honoured, as Python does
            facts.source = f.read()
    except FileNotFoundError:
        facts.read_error = f"{submission.name} does not exist"
        return facts
    except (OSError, UnicodeDecodeError, SyntaxError) as exc:
        facts.read_error = f"{submission.name} cannot be read as Python source: {exc}"
        return facts
    try:
        facts.tree = ast.parse(facts.source, submission.name)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        facts.syntax_error = ErrorInfo(type=type(exc).__name__, message=getattr(exc, "msg", str(exc)),
                                       line=line, code=(getattr(exc, "text", "") or "").rstrip("\n"))
        return facts
    except (MemoryError, RecursionError):  # "- - - ... 1" thousands deep
        facts.syntax_error = ErrorInfo(type="SyntaxError",
                                       message="an expression is nested too deeply for Python's parser")
        return facts
    if exercise.grading_data.exists():
        facts.expected = exercise.expected_from(exercise.grading_data)
    facts.not_isolated = isolate.available() if config.sandbox else \
        "the sandbox was switched off (--no-sandbox)"
    python = ENV_DIR / "bin" / "python"
    if not python.exists():
        facts.grader_error = (f"{python} is missing: run `make setup` to build the Prefect and "
                              "Dagster environment")
        return facts
    sandbox = Path(tempfile.mkdtemp(prefix=f"grade-{exercise.id}-", dir=_sandbox_root()))
    try:
        home, dags, learner, store, root = (sandbox / n for n in
                                            ("home", "dags", "learner", "warehouse", "root"))
        for folder in (home, dags, learner, store, root):
            folder.mkdir()
        (dags / submission.name).write_bytes(raw)
        if exercise.grading_data.exists():
            shutil.copytree(exercise.grading_data, dags / "data", symlinks=False)
        isolated = facts.not_isolated is None
        uid = 100_000 + secrets.randbelow(1 << 30)
        warehouse = store / "warehouse.db"
        if isolated:
            warehouse.touch()
            for path in (learner, store, warehouse):
                os.chown(path, uid, uid)
        prefix = Path(os.path.realpath(ENV_DIR))
        base = _base_prefix(python)
        binds = [(p, p, False) for p in sorted({str(prefix), str(ENV_DIR), base}) if p]
        binds += [(str(dags), str(dags), False), (str(learner), str(learner), True),
                  (str(store), str(store), True)]
        env = {"PATH": f"{ENV_DIR / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": str(learner),
               "USER": "learner", "LOGNAME": "learner", "LANG": "C.UTF-8", "TZ": "UTC",
               "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
               "PREFECT_HOME": str(learner / "prefect"), "DAGSTER_HOME": str(learner / "dagster"),
               WAREHOUSE_ENV: str(warehouse)}
        spec = {"engine": exercise.engine, "home": str(home), "cache": str(config.cache_dir),
                "keep": config.keep_sandbox, "submission": str(dags / submission.name),
                "boot_timeout": config.boot_timeout, "import_timeout": config.import_timeout,
                "run_timeout": config.run_timeout,
                "box": {"root": str(root), "uid": uid, "binds": binds, "env": env, "cwd": str(learner),
                        "isolated": isolated,
                        "limits": {"cpu_seconds": config.cpu_seconds,
                                   "memory_bytes": config.memory_bytes,
                                   "file_bytes": config.file_bytes}}}
        (home / "spec.json").write_text(json.dumps(spec))
        result = _run_engine(python, home, config, exercise.engine)
        _read_result(facts, result)
        if exercise.warehouse_table and facts.structure is not None:
            try:
                facts.warehouse_rows = _rows(warehouse, exercise.warehouse_table)
            except LookupError as exc:
                facts.warehouse_error = str(exc)
    finally:
        if not config.keep_sandbox:
            shutil.rmtree(sandbox, ignore_errors=True)
            for server in sandbox.parent.glob(f"prefect-server-{sandbox.name}-*"):
                shutil.rmtree(server, ignore_errors=True)  # the engine's, if it was killed
    return facts


def _rows(db: Path, table: str) -> list[dict]:
    """Every row of ``table``, read by the grader once the sandbox has ended."""
    from autograder.world import sqlite_rows

    return sqlite_rows(db, table)


def _ended_early(code: int | None, process: str) -> str:
    """Why ``process`` ended before it finished, from its exit code (negative: a signal)."""
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        why = {"SIGXCPU": "it used more CPU time than allowed", "SIGKILL": "it was killed",
               "SIGXFSZ": "it wrote a file larger than allowed"}.get(name, f"signal {name}")
        return f"{process} was stopped: {why}"
    return (f"{process} exited with code {code} before it finished "
            "(does your code call sys.exit() or os._exit()?)")


def _base_prefix(python: Path) -> str:
    """The interpreter's own installation behind the venv (uv's managed Python, say)."""
    cfg = ENV_DIR / "pyvenv.cfg"
    try:
        for line in cfg.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home":
                return str(Path(os.path.realpath(value.strip())).parent)
    except OSError:
        pass
    return str(Path(os.path.realpath(python)).parent.parent)


def _engine_env(cache: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
            "PYTHONPATH": str(REPO_ROOT), "PYTHONDONTWRITEBYTECODE": "1", "AUTOGRADER_CACHE": str(cache)}


class EngineServer:
    """One warm ``engine --serve`` per grading process: Prefect and Dagster imported once, a child
    forked per submission. It ends when this process closes its stdin (or dies), or when idle."""

    def __init__(self, python: Path, timeout: float, cache: Path) -> None:
        self._proc = subprocess.Popen(
            [str(python), "-m", "autograder.orchestrators.engine", "--serve"], env=_engine_env(cache),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            start_new_session=True)
        self._lock = threading.Lock()
        self._replies: dict[int, int] = {}
        self._changed = threading.Condition()
        self._next = 0
        ready, _, _ = select.select([self._proc.stdout], [], [], timeout)
        line = self._proc.stdout.readline() if ready else b""
        try:
            ok = json.loads(line or b"{}").get("ready") is True
        except ValueError:
            ok = False
        if not ok:
            self.close()
            raise RuntimeError(f"the Prefect and Dagster grading process did not start within "
                               f"{timeout:.0f} s")
        threading.Thread(target=self._listen, daemon=True).start()

    def _listen(self) -> None:
        for line in self._proc.stdout:
            try:
                reply = json.loads(line)
            except ValueError:
                continue
            with self._changed:
                self._replies[reply["id"]] = reply["pid"]
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def alive(self) -> bool:
        return self._proc.poll() is None

    def spawn(self, spec_file: Path, engine: str, timeout: float) -> int:
        """Fork a grading child for ``spec_file``; its process id. The first submission of each
        library waits for its import (and Prefect's database template, the first time ever)."""
        with self._lock:
            self._next += 1
            ident = self._next
            request = {"id": ident, "spec": str(spec_file), "engine": engine}
            self._proc.stdin.write(json.dumps(request).encode() + b"\n")
            self._proc.stdin.flush()
        with self._changed:
            if not self._changed.wait_for(lambda: ident in self._replies or not self.alive(),
                                          timeout=timeout):
                raise RuntimeError(f"the Prefect and Dagster grading process did not load {engine} "
                                   f"within {timeout:.0f} s (is the machine very busy?)")
            if ident not in self._replies:
                raise RuntimeError("the Prefect and Dagster grading process ended")
            return self._replies.pop(ident)

    def close(self) -> None:
        """Let it go: with its stdin closed it ends by itself once its children are done."""
        try:
            self._proc.stdin.close()
        except OSError:
            pass


_shared: list[EngineServer] = []
_shared_lock = threading.Lock()


def _engine(python: Path, config: GradeConfig) -> EngineServer:
    """This process's warm engine, started on first use and again if it ended."""
    with _shared_lock:
        if not _shared or not _shared[0].alive():
            _shared[:] = [EngineServer(python, config.boot_timeout, config.cache_dir)]
            atexit.register(_shared[0].close)
        return _shared[0]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run_engine(python: Path, home: Path, config: GradeConfig, engine: str) -> dict:
    """Run the submission's engine child to its end or its deadline; what it wrote to result.json."""
    deadline = time.monotonic() + config.boot_timeout + config.import_timeout + config.run_timeout + 30
    result_file = home / "result.json"
    what = "ended before it finished"
    try:
        pid = _engine(python, config).spawn(home / "spec.json", engine, config.boot_timeout)
    except RuntimeError as exc:
        return {"events": [], "error": str(exc), "phase": "boot"}
    while not result_file.exists():
        if not _alive(pid):
            time.sleep(0.1)  # it may have written the file as it ended
            break
        if time.monotonic() > deadline:
            what = "did not finish in time"
            break
        time.sleep(0.03)
    if _alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)  # what is left of it, at its deadline
        except (ProcessLookupError, PermissionError):
            pass
    try:
        return json.loads(result_file.read_text())
    except (OSError, ValueError):
        try:
            tail = (home / "engine.log").read_text(errors="replace")[-1500:]
        except OSError:
            tail = ""
        return {"events": [], "error": f"the grading process {what}: {tail.strip()}", "phase": "boot"}


# The shapes of what ``inside`` says, for each engine. A dict shape lists its keys (a key ending
# in "?" may be left out, no other key may appear), ``{str: shape}`` maps any names to one shape,
# a list shape has items of its one shape, PAIR is a list of two names, a tuple is one of its
# shapes. A number may be any float: a file may declare NaN itself, and the checks compare it.
NUMBER, PAIR = float, "pair"
ERROR = {"type?": str, "message?": str, "line?": (int, None), "function?": (str, None),
         "code?": (str, None), "traceback?": str}
STRUCTURE = {
    "prefect": {"flows": {str: {"name": str, "fn": str, "required?": [str]}},
                "tasks": {str: {"name": str, "fn": str, "retries": (int, NUMBER, None),
                                "retry_delay_seconds": (NUMBER, [NUMBER], str, None)}},
                "schedules": [str]},
    "dagster": {"defs": (str, None),
                "assets?": {str: {"deps": [str], "retry?": (None, {"max_retries?": (int, None),
                                                                    "delay?": (NUMBER, None)})}},
                "checks?": [PAIR],
                "schedules?": [{"name?": (str, None), "cron?": (str, [str], None),
                                "timezone?": (str, None), "job?": (str, None), "assets?": [str]}]},
}
RAN = {"event": str, "state?": (str, None), "name?": (str, None), "message?": (str, None),
       "error?": ERROR, "failures?": {str: ERROR}, "materialized?": [str],
       "checks?": {str: (bool, None)}}
MAX_TEXT = 20_000   # one string the sandbox says (``inside`` cuts tracebacks to 4000)
MAX_ITEMS = 10_000  # items of one list or dict


def fits(value: Any, shape: Any) -> bool:
    """Whether ``value``, parsed from the sandbox's JSON, has ``shape`` (see ``STRUCTURE``)."""
    if shape is None:
        return value is None
    if shape is str:
        return isinstance(value, str) and len(value) <= MAX_TEXT
    if shape is int:  # not a bool, and small enough for float()
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 1 << 63
    if shape is float:
        return isinstance(value, float) or fits(value, int)
    if shape is bool:
        return isinstance(value, bool)
    if shape == PAIR:
        return isinstance(value, list) and len(value) == 2 and all(fits(v, str) for v in value)
    if isinstance(shape, tuple):
        return any(fits(value, s) for s in shape)
    if isinstance(shape, list):
        return isinstance(value, list) and len(value) <= MAX_ITEMS and all(fits(v, shape[0]) for v in value)
    if not isinstance(value, dict) or len(value) > MAX_ITEMS:
        return False
    if str in shape:
        return all(fits(k, str) and fits(v, shape[str]) for k, v in value.items())
    keys = {k.rstrip("?"): s for k, s in shape.items()}
    return all(k in value for k in shape if not k.endswith("?")) and \
        all(k in keys and fits(v, keys[k]) for k, v in value.items())


def _read_result(facts: FlowFacts, result: dict) -> None:
    ended_early = _ended_early
    facts.seconds = result.get("seconds", 0.0)
    facts.returncode = result.get("returncode")
    events = [e for e in result.get("events") or [] if isinstance(e, dict)]
    said = {kind: [e for e in events if e.get("event") == kind] for kind in ("imported", "ran")}
    imported = said["imported"][0] if said["imported"] else None
    ran = said["ran"][0] if said["ran"] else None
    timed_out = result.get("timed_out")
    if result.get("error") and imported is None:
        facts.grader_error = str(result["error"])[:2000]
        return
    engine = facts.exercise.engine
    # ``inside`` says each once, in these shapes: anything else on its channel, the learner's
    # code wrote (it runs in the same process), and the grader believes none of it.
    forged = result.get("junk") or len(said["imported"]) > 1 or len(said["ran"]) > 1
    if len(said["imported"]) > 1:
        imported = None  # which of them is the file's own account, nobody can tell
    if len(said["ran"]) > 1:
        ran = None
    if imported is not None and not (isinstance(imported.get("ok"), bool) and (
            fits(imported.get("structure"), STRUCTURE[engine]) if imported["ok"]
            else fits(imported.get("error"), ERROR))):
        forged, imported = True, None
    if ran is not None and not fits(ran, RAN):
        forged, ran = True, None
    if result.get("overflow") or forged:
        facts.meddled = True
        what = "the process importing your file" if imported is None else "the process running your code"
        said_text = (f"{what} wrote more than 1 MB to a file descriptor it did not open (the grader's "
                     "own): leave alone what your code did not open") if result.get("overflow") else (
            f"{what} wrote into a file descriptor it did not open (the grader's own), and the "
            "grader cannot trust what it read there: leave alone what your code did not open")
        if imported is None:
            facts.import_crash = said_text
            return
        facts.run_crash = said_text
    if imported is None:
        if timed_out:
            facts.import_timed_out = True
        else:
            facts.import_crash = ended_early(facts.returncode, "the process importing your file")
        return
    if not imported.get("ok"):
        facts.import_error = _error(imported.get("error"))
        return
    facts.structure = imported.get("structure") or {}
    if facts.run_crash:
        return
    if ran is not None:
        facts.run = ran
    elif timed_out == "run":
        facts.run_timed_out = True
    elif result.get("phase") == "run":
        facts.run_crash = ended_early(facts.returncode, "the process running your code")


def _error(data: Any) -> ErrorInfo | None:
    if not isinstance(data, dict):
        return ErrorInfo(type="Error", message="(no details)")
    line = data.get("line")
    return ErrorInfo(type=str(data.get("type", "Error"))[:100], message=str(data.get("message", ""))[:2000],
                     line=line if isinstance(line, int) else None,
                     code=str(data["code"])[:300] if data.get("code") else None,
                     traceback=str(data.get("traceback", ""))[:4000])
