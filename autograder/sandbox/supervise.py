"""The trusted grading process: it parses and runs a submission the way Airflow 3 does, with the
learner's code in sandboxes and every fact the verdict rests on in its own hands.

One grading process per submission (a fork of the warm server, or a fresh interpreter):

1. moves into a network namespace of its own where only the mail sink and the warehouse answer
   (``network.Forwarder``);
2. forks the **sandbox**, which imports the learner's file and sends back the DAG as Airflow's
   serialized JSON (capped, validated), like the dag-processor does; the structure facts are
   read from the DAG *deserialized here*, never from learner objects. The sandbox's process then
   stays as the submission's **task launcher** (``Launcher`` here, ``inside.serve_tasks`` there);
3. writes that serialized DAG into its own metadata database (not visible to any sandbox) and
   runs the scheduling loop of ``dag.test()`` itself;
4. runs each task instance through Airflow's own supervisor (``ActivitySubprocess``): the
   launcher forks the task's process from the DAG it imported (as a real worker would after
   parsing the file), and the task talks only over the supervisor's socket, which lets a task
   write only its own XComs; the supervisor records its state through the in-process Execution
   API. This process never forks learner code after the parse: its own memory stays its own,
   and a task costs a fork of the small launcher, not of the Airflow API server.

Task states and XComs are then read from the database, rows from the warehouse and mail from
the sink by the caller. The events this process writes (phases, the parse result, learner
exceptions for the messages) go to a file no sandbox can see.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from autograder import flows
from autograder.sandbox import inside, isolate, protocol
from autograder.sandbox.isolate import Box, Limits
from autograder.text import CappedLog

MAX_XCOM_BYTES = 1 << 20
PARALLELISM = 4  # task instances run at once, as the lab's LocalExecutor does
MAX_FRAME_BYTES = 64 << 20
BUNDLE = "dags-folder"


class Events:
    """The grading process's own account of the run, one JSON object a line."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", buffering=1)  # noqa: SIM115 - open until os._exit
        self._lock = threading.Lock()

    def send(self, **event: Any) -> None:
        with self._lock:
            self._file.write(json.dumps(event, default=str) + "\n")
            self._file.flush()


def box_from(spec: dict, keep: tuple[int, ...] = ()) -> Box:
    box = spec["box"]
    return Box(root=box["root"], uid=box["uid"], binds=tuple(tuple(b) for b in box["binds"]),
               env=box["env"], cwd=box["cwd"], limits=Limits(**box["limits"]),
               isolated=box["isolated"], keep_fds=keep)


def main(spec_path: str) -> None:
    """The grading process's work for one submission (see the module docstring)."""
    spec = json.loads(Path(spec_path).read_text())
    # A deadline of its own, so that nothing outlives a grader that died: SIGALRM ends this
    # process, and with it (PR_SET_PDEATHSIG) every sandbox it started.
    signal.alarm(max(1, int(spec.get("deadline", 600))))
    events = Events(spec["events"])
    memoize_dependants()
    if spec["box"]["isolated"]:
        isolate.prepare(box_from(spec))  # before any thread starts
        from autograder.sandbox.network import Forwarder

        forwarder = Forwarder()  # its thread keeps the host's network ...
        isolate.own_network()    # ... this one, and every sandbox forked from it, gets its own
        for port, host, target_port in spec["forward"]:
            forwarder.listen(port, (host, target_port))
    if spec.get("runs"):
        preload()  # before the sandbox is forked: its launcher, and each task, start with them
    # Forks share memory copy-on-write until a page is written; the garbage collector of each
    # sandbox would write every page of this process's heap. Frozen objects it leaves alone.
    gc.freeze()
    events.send(event="phase", phase="import")
    parsed, launcher = parse(spec)
    if not parsed["ok"]:
        events.send(event="imported", ok=False, error=parsed["error"])
        os._exit(0)
    try:
        dag = deserialize(parsed)
    except Exception as exc:
        events.send(event="imported", ok=False, error={
            "type": "NotSerializable", "message": f"Airflow cannot read back the DAG your file "
            f"defines: {type(exc).__name__}: {str(exc)[:500]}"})
        os._exit(0)
    described = describe(dag) if dag is not None else None
    others = flows.deserialize_others(parsed, events)
    events.send(event="imported", ok=True, dag_ids=parsed["dag_ids"], dag=described,
                others={i: describe(d) for i, d in others.items()})
    if dag is None:
        os._exit(0)
    # The run times take a while to compute: done while the first tasks run (see run_tasks).
    _IDLE_WORK.append(lambda: events.send(event="schedule", **schedule_facts(dag, spec["schedule"])))
    if not spec.get("runs"):
        _finish_idle_work()
        os._exit(0)
    import pendulum

    from autograder.runner import RUN_DATE

    try:
        store_dag(parsed["serialized"], *parsed.get("others", {}).values())
        if spec.get("asset_runs"):
            flows.unpause()  # as a learner switches the DAGs on: paused ones get no asset runs
    except Exception as exc:
        events.send(event="ran", run=0, state="error", error={
            "type": type(exc).__name__, "message": str(exc)[:2000]})
        os._exit(0)
    for run_index in range(spec["runs"]):
        # A second run on the next day shows whether re-running duplicates the work.
        events.send(event="phase", phase=f"run{run_index}")
        try:
            day = pendulum.parse(spec.get("run_date", RUN_DATE)).add(days=run_index)
            with flows.arrival(spec, run_index, dag):
                state = run_dag(dag, day, spec, launcher, events, run_index)
            events.send(event="ran", run=run_index, state=state)
        except Exception as exc:
            events.send(event="ran", run=run_index, state="error",
                        error={"type": type(exc).__name__, "message": str(exc)[:2000]})
    if spec.get("asset_runs"):
        flows.run_triggered(others, spec, launcher, events)
    _finish_idle_work()
    if launcher is not None:
        launcher.close()
    os._exit(0)  # skip interpreter teardown: the in-process API's finalizers block for seconds


_IDLE_WORK: list[Any] = []
_KEPT: list[Any] = []


def _finish_idle_work() -> None:
    while _IDLE_WORK:
        _IDLE_WORK.pop(0)()


# What every task process needs: imported once, before the sandbox's launcher is forked, so that
# each task forked from it has them already.
TASK_MODULES = ("airflow.sdk.execution_time.task_runner", "airflow.dag_processing.dagbag",
                "airflow.providers.standard.operators.python", "airflow.providers.standard.operators.bash",
                "airflow.providers.smtp.operators.smtp", "airflow.providers.common.sql.hooks.sql",
                "airflow.providers.sqlite.hooks.sqlite")


def preload() -> None:
    import importlib

    for name in TASK_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def parse(spec: dict) -> tuple[protocol.ParseResult, Launcher | None]:
    """Import the learner's file in the parse sandbox; its serialized DAG, validated, and the
    sandbox's process kept as the submission's task launcher when there is a DAG to run."""
    read, write = os.pipe()
    ours, theirs = Launcher.channel()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            ours.close()
            os.setpgid(0, 0)  # a group of its own: kill(0, ...) reaches no grader process
            isolate.enter(box_from(spec, keep=(write, theirs.fileno())))
            inside.parse_main(spec["dag_file"], spec["dag_id"], write,
                              theirs.fileno() if spec.get("runs") else None, tuple(spec.get("also", ())))
        except BaseException:
            import traceback

            traceback.print_exc()
        os._exit(70)
    os.close(write)
    theirs.close()
    deadline = time.monotonic() + spec["import_timeout"]
    try:
        raw = protocol.read_frame(read, protocol.MAX_PARSE_BYTES, deadline)
        result = protocol.parse_result(raw) if raw else None
    except TimeoutError:
        _kill(pid)
        raise SystemExit(0) from None  # the caller sees the import phase run out of time
    except protocol.Malformed as exc:
        result = protocol.ParseResult(ok=False, error=protocol.ErrorDict(
            type="Refused", message=f"the process that imported your file sent something the grader "
            f"cannot read ({exc}); a DAG file should only define DAGs"))
    finally:
        os.close(read)
    if result is None:  # the file ended the process: say how it ended
        ours.close()
        return protocol.ParseResult(ok=False, error=protocol.ErrorDict(
            type="Crash", message=_ended(_reap(pid, grace=1.0)))), None
    if not result["ok"] or result.get("serialized") is None or not spec.get("runs"):
        ours.close()
        _reap(pid, grace=1.0)
        return result, None
    return result, Launcher(ours, pid)


class Launcher:
    """The grading process's side of a submission's task launcher (``inside.serve_tasks``).

    The launcher runs in the sandbox, as the learner, so nothing it says is taken on its word:
    messages are validated; who sent one is the kernel's word (``SCM_CREDENTIALS``), so a task's
    pid is the pid of the process that says it is that task, and never the launcher's own (its
    first message, sent before any learner code runs, says which that is); a task's exit is
    believed once the kernel says that process ended (a pidfd); and a task that is not started in
    time did not start. (Elsewhere than on Linux, which grades without isolation, the launcher's
    word is taken.)
    """

    KERNEL_VOUCHES = hasattr(socket, "SO_PASSCRED") and hasattr(os, "pidfd_open")

    @classmethod
    def channel(cls) -> tuple[socket.socket, socket.socket]:
        """A socket pair that keeps messages apart and carries file descriptors."""
        kind = getattr(socket, "SOCK_SEQPACKET", socket.SOCK_DGRAM)
        ours, theirs = socket.socketpair(socket.AF_UNIX, kind)
        if cls.KERNEL_VOUCHES:
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)  # who sent each message
        return ours, theirs

    START_TIMEOUT = 20.0
    ENDED = "the process that imported your file ended, so its tasks cannot run"

    def __init__(self, sock: socket.socket, pid: int) -> None:
        self._sock, self.pid = sock, pid
        self._changed = threading.Condition()
        self._launcher_pid: int | None = None
        self._started: dict[int, tuple[int, int]] = {}  # key -> (pid, pidfd)
        self._exits: dict[int, int] = {}
        self._failed: dict[int, str] = {}
        self._closed = False
        self._next = 0
        threading.Thread(target=self._listen, name="task-launcher", daemon=True).start()

    def start(self, fds: list[int]) -> tuple[int, int]:
        """Have the launcher fork a task process with these channels: its key and its pid."""
        with self._changed:
            self._next += 1
            key = self._next
        try:
            socket.send_fds(self._sock, [json.dumps({"key": key}).encode()], fds)
        except OSError as exc:
            raise RuntimeError(self.ENDED) from exc
        with self._changed:
            self._changed.wait_for(lambda: key in self._started or key in self._failed
                                   or self._closed, timeout=self.START_TIMEOUT)
            if key in self._started:
                return key, self._started[key][0]
            if key in self._failed:
                raise RuntimeError(f"the task could not start: {self._failed[key]}")
        raise RuntimeError(
            "the process that imported your file did not start the task within "
            f"{self.START_TIMEOUT:.0f} s (does your file start threads or processes when it is imported?)"
            if not self._closed else self.ENDED)

    def exit_code(self, key: int, timeout: float | None) -> int | None:
        """How the task's process ended, once it has; killed (-9) if the whole sandbox ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            self._changed.wait_for(lambda: key in self._exits or self._closed, timeout=timeout)
            code = self._exits.get(key)
            started = self._started.get(key)
            if code is None:
                return -signal.SIGKILL if self._closed else None
        if started is None or started[1] < 0:
            return code
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        ended, _, _ = select.select([started[1]], [], [], left)
        return code if ended else None

    def close(self) -> None:
        """End the launcher and every process of the submission: it hangs up, then is killed."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        _reap(self.pid, grace=1.0)
        try:
            os.killpg(self.pid, signal.SIGKILL)  # its group: anything it left behind
        except OSError:
            pass

    def _listen(self) -> None:
        size = socket.CMSG_SPACE(struct.calcsize("3i"))
        while True:
            try:
                raw, ancillary, _, _ = self._sock.recvmsg(4096, size)
            except OSError:
                break
            if not raw:
                break
            try:
                message = protocol.launcher_message(raw)
            except protocol.Malformed:
                continue
            if self.KERNEL_VOUCHES:
                sender = next((struct.unpack("3i", data[:12])[0] for level, kind, data in ancillary
                               if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS
                               and len(data) >= 12), None)
            else:
                sender = message.get("pid", -1)
            if self._launcher_pid is None:
                if message.get("hello") is None or not sender:
                    break  # not the launcher's first word: believe nothing it says
                self._launcher_pid = sender
                continue
            self._record(message, sender)
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def _record(self, message: protocol.LauncherMessage, sender: int | None) -> None:
        with self._changed:
            known = range(1, self._next + 1)
            key = message.get("started")
            if key in known and key not in self._started and sender and sender != self._launcher_pid:
                try:
                    self._started[key] = (sender, os.pidfd_open(sender) if self.KERNEL_VOUCHES else -1)
                except OSError:
                    pass  # ended already, or not a process: it did not start
            key = message.get("exited")
            if key in known:
                self._exits.setdefault(key, message["code"])
            key = message.get("failed")
            if key in known:
                self._failed.setdefault(key, message.get("reason", ""))
            self._changed.notify_all()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reap(pid: int, grace: float = 0.0) -> int:
    """The exit status of ``pid``, killed once it has not ended within ``grace`` seconds."""
    deadline = time.monotonic() + grace
    try:
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status
            time.sleep(0.01)
        _kill(pid)
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return 0


def _ended(status: int) -> str:
    from autograder.runner import ended_early

    code = os.waitstatus_to_exitcode(status)
    if code > 128:
        code = 128 - code  # the sandbox's stand-in reports a signal as 128 + its number
    return ended_early(code, "the process importing your file")


def deserialize(parsed: protocol.ParseResult) -> Any:
    """The scheduler's view of the DAG, as Airflow's scheduler reads a dag-processor's output."""
    if parsed.get("serialized") is None:
        return None
    from airflow.serialization.serialized_objects import DagSerialization

    return DagSerialization.from_dict(parsed["serialized"])


def describe(dag: Any) -> dict:
    """The structure facts, from the deserialized DAG (plain values only)."""
    tasks = {}
    for task in dag.tasks:
        delay = getattr(task, "retry_delay", None)
        tasks[task.task_id] = {
            "operator": getattr(task, "task_type", None) or type(task).__name__,
            "retries": getattr(task, "retries", None),
            "retry_delay_s": delay.total_seconds() if hasattr(delay, "total_seconds") else None,
            "owner": getattr(task, "owner", None),
            "trigger_rule": str(getattr(task, "trigger_rule", "") or ""),
            "downstream": sorted(task.downstream_task_ids),
            **flows.task_facts(task),
        }
    return {"dag_id": dag.dag_id, "tasks": tasks, "schedule": timetable_repr(dag.timetable),
            "schedule_text": "", "run_times": [], "expected_run_times": [],
            "start_date": dag.start_date.isoformat() if dag.start_date else None,
            "catchup": bool(dag.catchup), "tags": sorted(map(str, getattr(dag, "tags", None) or ())),
            "description": getattr(dag, "description", None) or "",
            **flows.dag_facts(dag)}


def schedule_facts(dag: Any, schedule: str) -> dict:
    """When the DAG's timetable runs, in words and as times, beside the exercise's schedule."""
    try:
        runs, text = timing(dag.timetable)
    except Exception as exc:  # an odd timetable: the schedule check will say what it is
        runs, text = [], f"(could not compute run times: {exc})"
    return {"schedule_text": text, "run_times": runs, "expected_run_times": timing(schedule)[0]}


# Run times by timetable, computed once in the warm server for every exercise's schedule and
# shared by its forks: a submission whose timetable is the exercise's costs no computation.
_TIMINGS: dict[str, tuple[list[str], str]] = {}


def timing(schedule: Any) -> tuple[list[str], str]:
    """A schedule's next ``RUN_TIMES`` run times (ISO) and its description."""
    import pendulum

    from autograder.runner import RUN_TIMES, SCHEDULE_REFERENCE
    from course.schedules import describe, next_run_times, to_timetable

    table = to_timetable(schedule)
    try:
        key = f"{type(table).__module__}.{type(table).__qualname__}:" \
              f"{json.dumps(table.serialize(), sort_keys=True, default=str)}"
    except Exception:
        key = None
    if key in _TIMINGS:
        return _TIMINGS[key]
    runs = [t.isoformat() for t in next_run_times(table, RUN_TIMES, after=pendulum.parse(SCHEDULE_REFERENCE))]
    found = (runs, describe(table))
    if key is not None:
        _TIMINGS[key] = found
    return found


def timetable_repr(table: Any) -> str:
    """``CronTriggerTimetable(expression='0 3 * * *', timezone='UTC', ...)``: a core timetable
    shown by its serialized fields, as the Task SDK's timetables show themselves."""
    try:
        fields = table.serialize()
    except Exception:
        fields = None
    if not isinstance(fields, dict) or not fields:
        return repr(table)
    return f"{type(table).__name__}({', '.join(f'{k}={v!r}' for k, v in fields.items())})"


def store_dag(*serialized: dict) -> None:
    """Record the DAG in this process's metadata database, as the dag-processor's manager does."""
    from airflow import settings
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG

    session = settings.Session()
    DagBundlesManager().sync_bundles_to_db(session=session)
    session.commit()
    update_dag_parsing_results_in_db(BUNDLE, None, [LazyDeserializedDAG(data=s) for s in serialized],
                                     {}, None, set(), session=session)
    session.commit()


def run_dag(dag: Any, logical_date: Any, spec: dict, launcher: Launcher, events: Events,
            run_index: int, run: Any = None) -> str:
    """One DAG run (``run``, or a new manual one): ``dag.test()``'s scheduling loop, with every
    task run in the sandbox."""
    from airflow import settings
    from airflow.models.dagrun import DagRun, get_or_create_dagrun
    from airflow.sdk import timezone
    from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    session = settings.Session()
    for task in dag.tasks:
        task.retries = 0  # a failing task reports at once instead of waiting for retry_delay
    run_after = timezone.utcnow()
    run = run or get_or_create_dagrun(
        dag=dag, start_date=logical_date, logical_date=logical_date,
        data_interval=dag.timetable.infer_manual_data_interval(run_after=logical_date),
        run_after=run_after,
        run_id=DagRun.generate_run_id(run_type=DagRunType.MANUAL, logical_date=logical_date,
                                      run_after=run_after),
        session=session, conf=None, triggered_by=DagRunTriggeredByType.TEST,
        triggering_user_name="grader")
    client = InProcessTestSupervisor._api_client(dag)
    _KEPT.append(client)  # its finalizer waits for the in-process API's threads: never run it
    finished = {TaskInstanceState.SUCCESS, TaskInstanceState.FAILED, TaskInstanceState.SKIPPED,
                TaskInstanceState.UPSTREAM_FAILED, TaskInstanceState.REMOVED}
    while run.state == DagRunState.RUNNING:
        session.expire_all()
        schedulable, _ = run.update_state(session=session)
        for ti in schedulable:
            if ti.state != TaskInstanceState.UP_FOR_RESCHEDULE:
                ti.try_number += 1
            ti.state = TaskInstanceState.SCHEDULED
            ti.scheduled_dttm = timezone.utcnow()
        session.commit()
        every = set(run.get_task_instances(session=session))
        scheduled = sorted((t for t in every if t.state == TaskInstanceState.SCHEDULED),
                           key=lambda t: (t.task_id, t.map_index))
        session.commit()  # end the read: SQLite lets the Execution API write only then
        waiting = {t.state for t in every if t.state not in finished}
        if not scheduled and TaskInstanceState.DEFERRED in waiting and waiting <= {
                TaskInstanceState.DEFERRED, None}:
            break  # only a triggerer would resume it, and the grader runs none
        if not scheduled and waiting:
            time.sleep(0.2)  # a deferred or rescheduled task: wait for it to become ready
        run_tasks(scheduled, spec, launcher, client, events, run_index)
        session.expire_all()
        run.refresh_from_db(session=session)
        session.commit()
    return str(run.state)


@dataclass
class _Running:
    ti: Any
    proc: Any
    advice: int          # read end of the task's advice pipe
    log_file: Any


def start_task(ti: Any, spec: dict, launcher: Launcher, client: Any, events: Events,
               run_index: int) -> _Running | None:
    """Have the launcher fork one task instance, supervised here by Airflow's supervisor."""
    from uuid import UUID

    from airflow.sdk.api.datamodels._generated import BundleInfo
    from airflow.sdk.api.datamodels._generated import TaskInstance as TaskInstanceSDK

    _TASK_COUNT[0] += 1
    path = Path(spec["task_logs"]) / f"{run_index}-{_TASK_COUNT[0]:04d}-{ti.task_id}.log"
    log_file = CappedLog(open(path, "w+", buffering=1))  # noqa: SIM115
    log = structlog.wrap_logger(structlog.WriteLogger(log_file), processors=[render_task_event])
    what = TaskInstanceSDK(id=UUID(str(ti.id)), task_id=ti.task_id, dag_id=ti.dag_id, run_id=ti.run_id,
                           try_number=ti.try_number, map_index=ti.map_index,
                           dag_version_id=UUID(str(ti.dag_version_id)))
    read, write = os.pipe()
    try:
        proc = GradedTask.start(what=what, dag_rel_path=os.path.basename(spec["dag_file"]),
                                bundle_info=BundleInfo(name=BUNDLE), client=client,
                                launcher=launcher, advice=write, logger=log)
    except Exception as exc:
        log.error(f"The grader could not start the task: {exc}")
        events.send(event="task_failed", task_id=ti.task_id, run=run_index,
                    error={"type": "NotStarted", "message": str(exc)[:2000]})
        os.close(read)
        log_file.close()
        return None
    finally:
        os.close(write)
    return _Running(ti, proc, read, log_file)


def finish_task(job: _Running, events: Events, run_index: int) -> None:
    """Serve the task's requests until it ends; then record what it said about its failure."""
    from airflow.utils.state import TaskInstanceState

    try:
        job.proc.begin()
        job.proc.wait()
    except Exception as exc:
        events.send(event="task_failed", task_id=job.ti.task_id, run=run_index,
                    error={"type": type(exc).__name__, "message": str(exc)[:2000]})
    try:
        raw = protocol.read_capped(job.advice, protocol.MAX_ADVICE_BYTES, time.monotonic() + 2)
    except (TimeoutError, protocol.Malformed):
        raw = b""
    os.close(job.advice)
    job.log_file.close()
    advice = protocol.task_advice(raw)
    if advice is not None and job.proc.final_state != TaskInstanceState.SUCCESS:
        events.send(event="task_failed", task_id=job.ti.task_id, run=run_index, error=advice["error"])


def run_tasks(tis: list[Any], spec: dict, launcher: Launcher, client: Any, events: Events,
              run_index: int) -> None:
    """Run ready task instances side by side, ``PARALLELISM`` at a time, as an executor would;
    each is started and served by a thread of its own."""
    from airflow import settings
    from airflow.utils.state import TaskInstanceState

    session = settings.Session()
    for first in range(0, len(tis), PARALLELISM):
        for ti in tis[first:first + PARALLELISM]:  # the Execution API starts only queued tasks
            ti.state = TaskInstanceState.QUEUED
            session.merge(ti)
        session.commit()
        threads = [threading.Thread(target=_start_and_finish, daemon=True,
                                    args=(ti, spec, launcher, client, events, run_index))
                   for ti in tis[first:first + PARALLELISM]]
        for thread in threads:
            thread.start()
        if threads:
            _finish_idle_work()  # computed while the tasks run
        for thread in threads:
            thread.join()


def _start_and_finish(ti: Any, spec: dict, launcher: Launcher, client: Any, events: Events,
                      run_index: int) -> None:
    job = start_task(ti, spec, launcher, client, events, run_index)
    if job is not None:
        finish_task(job, events, run_index)


_TASK_COUNT = [0]
NOISE = ("Worker startup parse complete", "::group::", "::endgroup::", "DAG bundles loaded",
         "Filling up the DagBag", "Pushing xcom", "Task instance state updated")


def render_task_event(_logger: Any, method: str, event: dict) -> str:
    """One line of a task's log as a learner reads it; a traceback in Python's own form."""
    message = str(event.get("event", ""))
    printed = event.get("logger") in ("task.stdout", "task.stderr") or not event.get("logger")
    if printed and not event.get("error_detail"):
        return message
    if any(message.startswith(n) for n in NOISE):
        raise structlog.DropEvent
    level = str(event.get("level") or method).upper()
    lines = [f"{level} - {message}"]
    for error in event.get("error_detail") or []:
        if not isinstance(error, dict):
            continue
        lines.append("Traceback (most recent call last):")
        for frame in error.get("frames") or []:
            if isinstance(frame, dict):
                lines.append(f'  File "{frame.get("filename")}", line {frame.get("lineno")}, '
                             f'in {frame.get("name")}')
        lines.append(f"{error.get('exc_type')}: {error.get('exc_value')}")
    return "\n".join(lines)


def _seams() -> None:
    """The private parts of Airflow's supervisor the grader relies on, in one place.

    (Besides these, ``GradedTask`` overrides four methods of ``ActivitySubprocess``: ``start``,
    whose fork is made by the submission's launcher instead of this process (it builds the
    supervisor as ``WatchedSubprocess.start`` does, with ``_register_pipe_readers``); ``wait``
    without signal forwarding, so that tasks can be supervised from threads;
    ``_service_subprocess`` to notice a task's exit without a 5 s wait; ``_handle_request`` to
    refuse writes about other tasks. In the sandbox, ``inside`` calls ``_fork_main`` and replaces
    the task runner's ``parse``, so that a task is taken from the DAG the launcher imported.)

    - ``length_prefixed_frame_reader``: the task's requests are read with no size limit; a frame
      larger than ``MAX_FRAME_BYTES`` closes the channel instead of allocating it.
    - ``fastapi.dependencies.utils.get_dependant`` is memoized (``memoize_dependants``), and each
      grading process's SQLAlchemy engine takes the warm server's ``dialect`` and
      ``_compiled_cache`` (``runner._point_airflow_at_this_home``): speed only, same results.
    - ``SOCKET_CLEANUP_TIMEOUT``: how long the supervisor waits, after a task's process ended, for
      a process it left behind to close the task's channels (60 s by default): the launcher
      kills the task's process group, and a process that left it dies with the sandbox.
    """
    from airflow.sdk.execution_time import supervisor

    supervisor.length_prefixed_frame_reader = _capped_frame_reader
    supervisor.SOCKET_CLEANUP_TIMEOUT = 2.0


def memoize_dependants() -> None:
    """Build each FastAPI dependency tree once, not on every request.

    FastAPI rebuilds, on every request, the dependency tree of every dependency when the app has
    any override (``fastapi.dependencies.utils.get_dependant`` in ``solve_dependencies``), and
    the in-process Execution API overrides its security dependencies: that was a fifth of the
    grading process's time. A tree depends only on its arguments, and FastAPI itself keeps the
    trees of its routes for the app's life, so one built tree per set of arguments is safe.
    """
    from fastapi.dependencies import utils

    if getattr(utils.get_dependant, "memoized", False):
        return
    build = utils.get_dependant
    built: dict[tuple, Any] = {}

    def get_dependant(*args: Any, **kwargs: Any) -> Any:
        try:
            key = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in kwargs.items()))
            hash(key)
        except TypeError:
            return build(*args, **kwargs)
        if args:
            return build(*args, **kwargs)
        if key not in built:
            built[key] = build(**kwargs)
        return built[key]

    get_dependant.memoized = True  # type: ignore[attr-defined]
    utils.get_dependant = get_dependant


def _capped_frame_reader(gen: Any, on_close: Any) -> Any:
    """Airflow's ``length_prefixed_frame_reader`` with a limit on the frame's length."""
    import msgspec

    from airflow.sdk.execution_time.supervisor import _RequestFrame

    state: dict[str, Any] = {"needed": None, "header": bytearray(), "buffer": None, "pos": 0}
    decoder = msgspec.msgpack.Decoder[_RequestFrame](_RequestFrame)
    next(gen)

    def cb(sock: Any) -> bool:
        if state["needed"] is None:
            chunk = sock.recv(4 - len(state["header"]))
            if not chunk:
                return False
            state["header"].extend(chunk)
            if len(state["header"]) < 4:
                return True
            needed = int.from_bytes(state["header"], byteorder="big")
            state["header"] = bytearray()
            if needed > MAX_FRAME_BYTES:
                return False  # close the channel: the task then fails
            state["needed"], state["buffer"], state["pos"] = needed, memoryview(bytearray(needed)), 0
        if state["needed"] and state["buffer"] is not None:
            n = sock.recv_into(state["buffer"][state["pos"]:])
            if n == 0:
                return False
            state["pos"] += n
            if state["pos"] >= state["needed"]:
                request = decoder.decode(state["buffer"])
                state.update(needed=None, buffer=None, pos=0)
                try:
                    gen.send(request)
                except StopIteration:
                    return False
        return True

    return cb, on_close


def _make_graded_task() -> type:
    from airflow.sdk.execution_time.comms import (
        ClearTaskStateStore,
        DeleteTaskStateStore,
        DeleteVariable,
        DeleteXCom,
        ErrorResponse,
        PutVariable,
        SetTaskStateStore,
        SetXCom,
        TriggerDagRun,
    )
    from airflow.sdk.execution_time.supervisor import ActivitySubprocess, ProcessTracker

    class LaunchedProcess(ProcessTracker):
        """A task's process, forked by the launcher: its exit code comes from the launcher."""

        ProcessNotFound = ProcessLookupError

        class TimeoutExpired(Exception):
            pass

        def __init__(self, launcher: Launcher, key: int, pid: int) -> None:
            self._launcher, self._key, self._pid = launcher, key, pid

        @property
        def pid(self) -> int:
            return self._pid

        def send_signal(self, s: signal.Signals) -> None:
            if self._launcher.exit_code(self._key, 0) is not None:
                raise ProcessLookupError(self._pid)
            os.kill(self._pid, s)

        def wait(self, timeout: float | None) -> int:
            code = self._launcher.exit_code(self._key, timeout)
            if code is None:
                raise self.TimeoutExpired
            return code

    class GradedTask(ActivitySubprocess):
        """Airflow's task supervisor, allowing a task to write about itself only."""

        @classmethod
        def start(cls, *, what: Any, dag_rel_path: Any, bundle_info: Any, client: Any,  # type: ignore[override]
                  launcher: Launcher, advice: int, logger: Any = None) -> Any:
            # ActivitySubprocess.start forks, then tells the API the task started and sends it its
            # startup details. Here the launcher forks; ``begin`` does the rest, from the thread
            # that serves the task.
            ends = [socket.socketpair() for _ in range(4)]  # requests, stdout, stderr, logs
            try:
                key, pid = launcher.start([child.fileno() for child, _ in ends] + [advice])
            except BaseException:
                for pair in ends:
                    for end in pair:
                        end.close()
                raise
            for child, _ in ends:
                child.close()
            (_, requests), (_, stdout), (_, stderr), (_, logs) = ends
            proc = cls(id=what.id, client=client, pid=pid, stdin=requests,
                       process=LaunchedProcess(launcher, key, pid), process_log=logger,
                       start_time=time.monotonic(), new_process_group=True)
            proc._register_pipe_readers(stdout, stderr, requests, logs, data={})
            proc._startup = {"ti": what, "dag_rel_path": dag_rel_path, "bundle_info": bundle_info,
                             "sentry_integration": ""}
            return proc

        def begin(self) -> None:
            self._on_child_started(**self._startup)

        def _service_subprocess(self, max_wait_time: float, *args: Any, **kwargs: Any) -> Any:
            # Airflow waits up to min_heartbeat_interval (5 s) in select(); once every channel is
            # closed nothing can wake it, and the sandbox's pid-1 stand-in exits a moment after
            # its channels close: look for the exit often then.
            if not self._open_sockets:
                max_wait_time = min(max_wait_time, 0.005)
            return super()._service_subprocess(max_wait_time, *args, **kwargs)

        def wait(self) -> int:
            # Airflow's wait() without its SIGTERM/SIGINT forwarding: signal handlers can only be
            # set from the main thread, and each task is supervised from a thread of its own here
            # (the grading process is killed whole at its deadline anyway).
            if self._exit_code is not None:
                return self._exit_code
            try:
                self._monitor_subprocess()
            finally:
                self.selector.close()
            self._exit_code = self._exit_code if self._exit_code is not None else 1
            try:
                self.update_task_state_if_needed()
            finally:
                self._upload_logs()
            return self._exit_code

        def _handle_request(self, msg: Any, log: Any, req_id: int) -> None:
            refusal = self._refusal(msg)
            if refusal:
                log.warning(refusal)
                self.send_msg(None, req_id, error=ErrorResponse(detail={"message": refusal}))
                return
            super()._handle_request(msg, log, req_id)

        def _refusal(self, msg: Any) -> str | None:
            ti = self.ti
            if isinstance(msg, SetXCom | DeleteXCom):
                own = (msg.dag_id, msg.run_id, msg.task_id) == (ti.dag_id, ti.run_id, ti.task_id)
                if not own:
                    return (f"task {ti.task_id!r} tried to write an XCom of task {msg.task_id!r}: "
                            "a task may only push its own XComs")
                if isinstance(msg, SetXCom) and len(json.dumps(msg.value, default=str)) > MAX_XCOM_BYTES:
                    return (f"task {ti.task_id!r} returned a value larger than "
                            f"{MAX_XCOM_BYTES >> 20} MB: XComs are for small values (a few rows, a "
                            "file name); write big data to the warehouse and pass its name")
            if isinstance(msg, PutVariable | DeleteVariable | TriggerDagRun):
                return f"task {ti.task_id!r}: {type(msg).__name__} is not allowed while grading"
            if isinstance(msg, SetTaskStateStore | DeleteTaskStateStore | ClearTaskStateStore) \
                    and str(msg.ti_id) != str(ti.id):
                return f"task {ti.task_id!r} may only change its own state store"
            return None

    return GradedTask


class _Lazy:
    """``GradedTask`` is built on first use: importing Airflow's supervisor is not free."""

    _cls: type | None = None

    def start(self, **kwargs: Any) -> Any:
        if _Lazy._cls is None:
            _seams()
            _Lazy._cls = _make_graded_task()
        return _Lazy._cls.start(**kwargs)


GradedTask = _Lazy()

if __name__ == "__main__":
    main(sys.argv[1])
