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


def parse_main(dag_file: str, dag_id: str, out: int, control: int | None = None,
               also: tuple[str, ...] = ()) -> None:
    """Import the learner's file as Airflow's dag-processor does and send the DAG serialized.

    With a ``control`` socket, the process then stays as the submission's task launcher
    (``serve_tasks``): each task instance is a fork of the DAG parsed here.
    """
    import importlib.util

    from airflow.sdk import DAG
    from airflow.sdk.definitions._internal.contextmanager import DagContext
    from airflow.serialization.serialized_objects import DagSerialization

    if control is not None:
        # First, before any learner code runs here: who the launcher is (the kernel says it).
        os.write(control, json.dumps({"hello": 1}).encode())
    module_name = "submission"
    DagContext.current_autoregister_module_name = module_name
    sys.path.insert(0, os.path.dirname(dag_file))
    dags: dict[str, Any] = {}
    dag = None
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
            # The file's other DAGs that the exercise grades too (a consumer of an asset, say);
            # "*": every other DAG of the file, so that a misnamed one can still be graded.
            wanted = [i for i in dags if i != dag.dag_id] if "*" in also else also
            result["others"] = {i: DagSerialization.to_dict(dags[i]) for i in wanted[:10]
                                if i in dags and dags[i] is not dag}
    except BaseException as exc:  # SystemExit and KeyboardInterrupt included: report, never crash
        result = {"ok": False, "error": error(exc, dag_file)}
        dag = None
    payload = json.dumps(result, default=str).encode()
    # Length first: the reader needs no end of file, which a process forked at import would delay.
    _write_all(out, len(payload).to_bytes(8, "big") + payload)
    os.close(out)
    if control is None or dag is None:
        os._exit(0)
    serve_tasks(control, dags, dag_file)


def serve_tasks(control: int, dags: dict[str, Any], dag_file: str) -> None:
    """Fork one process per task instance the grading process asks for, until it hangs up.

    A request is one message on the ``control`` socket (``SOCK_SEQPACKET``) carrying the task's
    five file descriptors: Airflow's requests, stdout, stderr and log channels, and the advice
    pipe. The forked process tells the grading process who it is with ``SCM_CREDENTIALS`` (the
    kernel writes its pid as the grading process sees it) and becomes Airflow's task runner.
    This process reports how each one ended. It is pid 1 of the sandbox: when it ends, so does
    every process of the submission.
    """
    import signal
    import socket

    sock = socket.socket(fileno=control)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    keys: dict[int, int] = {}  # pid -> the grading process's key for that task

    def leave() -> None:
        for pid in keys:  # the grading process hung up: nothing of the submission outlives it
            try:
                os.killpg(pid, 9)
            except OSError:
                pass
        os._exit(0)

    def send(**message: Any) -> None:
        try:
            sock.send(json.dumps(message).encode())
        except OSError:
            leave()

    parent = os.getppid()
    while True:
        ready = _readable([sock.fileno(), wake_read])
        if os.getppid() != parent:
            leave()  # where the kernel cannot say so (no SEQPACKET hang-up): the parent is gone
        if wake_read in ready:
            os.read(wake_read, 4096)
        while True:  # as pid 1, every orphan of the sandbox is reaped here too
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid in keys:
                try:
                    os.killpg(pid, 9)  # what the task left running in its process group
                except OSError:
                    pass
                send(exited=keys.pop(pid), code=os.waitstatus_to_exitcode(status))
        if sock.fileno() not in ready:
            continue
        try:
            message, fds, _, _ = socket.recv_fds(sock, 4096, 8)
        except OSError:
            leave()
        if not message:
            leave()
        key = json.loads(message)["key"]
        if len(fds) != 5:
            for fd in fds:
                os.close(fd)
            send(failed=key, reason="the task's channels did not arrive")
            continue
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            send(failed=key, reason=f"no process could be started for it ({exc.strerror})")
            continue
        if pid == 0:
            os.close(wake_read)
            os.close(wake_write)
            _run_task(sock, key, fds, dags, dag_file)
        for fd in fds:
            os.close(fd)
        keys[pid] = key


def _readable(fds: list[int]) -> list[int]:
    import select

    return select.select(fds, [], [], 1.0)[0]  # PEP 475: a signal does not end the wait early


def _run_task(sock: Any, key: int, fds: list[int], dags: dict[str, Any], dag_file: str) -> None:
    """In the task's process, just forked: say who it is, then run Airflow's task runner."""
    import functools
    import signal
    import socket
    import struct

    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setpgid(0, 0)
        started = json.dumps({"started": key, "pid": os.getpid()}).encode()
        if hasattr(socket, "SCM_CREDENTIALS"):  # Linux: the kernel vouches for the pid
            creds = struct.pack("3i", os.getpid(), os.getuid(), os.getgid())
            sock.sendmsg([started], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, creds)])
        else:
            sock.send(started)
        sock.close()
        requests, stdout, stderr, logs, advice = fds
        from airflow.sdk.execution_time import supervisor

        target = functools.partial(_task_target, dag_file, dags, logs, advice)
        supervisor._fork_main(socket.socket(fileno=requests), socket.socket(fileno=stdout),
                              socket.socket(fileno=stderr), logs, target)
    except BaseException:
        traceback.print_exc()
    os._exit(124)


def _task_target(dag_file: str, dags: dict[str, Any], logs: int, advice: int) -> None:
    from airflow.sdk.execution_time.supervisor import _subprocess_main

    from autograder.sandbox.isolate import close_fds

    close_fds({0, 1, 2, logs, advice})
    use_parsed(dags)
    report_task_failures(dag_file, advice)
    _subprocess_main()


def use_parsed(dags: dict[str, Any]) -> None:
    """Let the task runner take the task from the DAG this process already imported, instead of
    importing the file again: what Airflow's ``parse`` does, from its second half on."""
    from airflow.sdk.execution_time import task_runner

    original = task_runner.parse

    def parse(what: Any, log: Any) -> Any:
        dag = dags.get(what.ti.dag_id)
        task = dag.task_dict.get(what.ti.task_id) if dag is not None else None
        if task is None:
            return original(what, log)  # Airflow's own path, with its own messages
        bundle = task_runner.DagBundlesManager().get_bundle(name=what.bundle_info.name,
                                                            version=what.bundle_info.version)
        bundle.initialize()
        task_runner._verify_bundle_access(bundle, log)
        task_runner._register_deserialization_allowed_classes(dag, log)
        return task_runner.RuntimeTaskInstance.model_construct(
            **what.ti.model_dump(exclude_unset=True), task=task, bundle_instance=bundle,
            _ti_context_from_server=what.ti_context, max_tries=what.ti_context.max_tries,
            start_date=what.start_date, state=task_runner.TaskInstanceState.RUNNING,
            sentry_integration=what.sentry_integration)

    task_runner.parse = parse


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
