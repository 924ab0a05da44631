"""A grading service: one warm grader that many short-lived processes share.

The lab keeps one running beside Airflow (``keep``: restarted when it dies, woken again after an
idle stop), and ``python -m autograder grade`` sends it the learner's file: feedback in about two
seconds instead of Airflow's start-up each time. The class-grading DAG's setup task starts one of
its own for the mapped tasks, and its teardown task stops it. Every submission is still graded
in a sandboxed child process of its own, forked from the warm grader exactly as ``grade-class``
does; what a caller saves is the start-up of Airflow. The service stops by itself after ``idle``
seconds without a request, so a cancelled run leaves nothing behind for long.

    python -m autograder serve SOCKET [--idle SECONDS] [--keep]

The client side (``grade_remotely``, ``stop``) imports neither Airflow nor the runner: a learner's
``grade`` command that the service answers starts in a fraction of a second.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

from autograder.config import REPO_ROOT
from autograder.model import Report

IDLE_TIMEOUT = 600.0
LAB_IDLE_TIMEOUT = 1800.0  # the lab's grader: stopped after half an hour unused, woken on demand
START_TIMEOUT = 180.0
CRASHES_IN_A_ROW = 3  # the keeper gives up after so many crashes within CRASH_WINDOW seconds
CRASH_WINDOW = 120.0


def serve(sock: Path, idle: float = IDLE_TIMEOUT, owner: int | None = None) -> int:
    """Grade the submissions sent to ``sock`` until told to stop (a request, or SIGTERM), idle
    for ``idle`` seconds, or the process ``owner`` (a Celery worker) is gone."""
    import socketserver
    import threading
    from dataclasses import replace

    from autograder.config import GradeConfig
    from autograder.exercises import find
    from autograder.grade import grade
    from autograder.runner import WarmServer

    config = GradeConfig.from_env()
    code = code_stamp()
    with WarmServer(config) as warm:
        busy, last, outdated = [0], [time.monotonic()], [False]
        lock = threading.Lock()

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                if _peer_uid(self.request) != os.getuid():
                    self.wfile.write(b'{"error": "only the user who started the service may use it"}\n')
                    return
                try:
                    request = json.loads(self.rfile.readline(1 << 16) or b"{}")
                    if not isinstance(request, dict):
                        raise ValueError("not an object")
                except ValueError:
                    self.wfile.write(b'{"error": "a request is one JSON object on one line"}\n')
                    return
                if not request:
                    return  # a caller checking that the service answers
                if request.get("stop"):
                    threading.Thread(target=server.shutdown, daemon=True).start()
                    self.wfile.write(b'{"stopping": true}\n')
                    return
                if code_stamp() != code:
                    # The course was updated under a running grader: its forks would mix the old
                    # code they inherit with new code they import. It ends (a keeper restarts it).
                    outdated[0] = True
                    threading.Thread(target=server.shutdown, daemon=True).start()
                    self.wfile.write(b'{"error": "the grader\'s code changed since it started; '
                                     b'it starts again with the new code"}\n')
                    return
                with lock:
                    busy[0] += 1
                try:
                    if request.get("root", str(REPO_ROOT)) != str(REPO_ROOT):
                        raise ValueError(f"this service grades for the course in {REPO_ROOT}")
                    timeout = float(request.get("timeout") or config.run_timeout)
                    asked = replace(config, run_timeout=timeout)
                    if "warehouse_url" in request:  # the caller's own settings, as it would grade
                        asked = replace(asked, warehouse_url=request["warehouse_url"])
                    began = time.monotonic()
                    report = grade(find(request["exercise"]), Path(request["submission"]), asked, warm,
                                   shown_as=request.get("shown_as"))
                    print(f"{time.strftime('%H:%M:%S')} graded {request['exercise']}: {report.status}, "
                          f"{report.score:g}/{report.max_score:g}, {time.monotonic() - began:.1f} s",
                          flush=True)
                    reply = report.to_dict()
                    if request.get("task_logs"):  # the text report shows them
                        reply["task_logs"] = report.task_logs
                    self.wfile.write((json.dumps(reply, ensure_ascii=False) + "\n").encode())
                except BrokenPipeError:
                    pass  # the caller left (Ctrl-C): nobody to tell
                except Exception as exc:  # the caller then grades the submission itself
                    self.wfile.write((json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\n").encode())
                finally:
                    with lock:
                        busy[0] -= 1
                        last[0] = time.monotonic()

        problem = _not_private(sock.parent)
        if problem:
            raise SystemExit(problem)
        if sock.exists():
            sock.unlink()
        server = socketserver.ThreadingUnixStreamServer(str(sock), Handler)
        server.daemon_threads = True
        sock.chmod(0o600)

        def stop_when_idle() -> None:
            while True:
                time.sleep(min(5.0, idle))
                if owner is not None and not _alive(owner):
                    break  # its worker is gone: nobody on this host will ask any more
                with lock:
                    if busy[0] == 0 and time.monotonic() - last[0] > idle:
                        break
            server.shutdown()

        threading.Thread(target=stop_when_idle, daemon=True).start()
        # `kill` (the lab stopping) shuts down as a stop request does: socket removed, children reaped.
        signal.signal(signal.SIGTERM,
                      lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
        try:
            server.serve_forever(poll_interval=0.5)
        finally:
            server.server_close()
            sock.unlink(missing_ok=True)
    return OUTDATED if outdated[0] else 0


OUTDATED = 3  # the exit code of a service that stopped because its code changed on disk


def code_stamp() -> tuple:
    """When and how big each source file of the grader and the course toolkit is."""
    files = sorted([*(REPO_ROOT / "autograder").rglob("*.py"), *(REPO_ROOT / "course").glob("*.py")])
    stamp = []
    for path in files:
        try:
            info = path.stat()
        except OSError:
            continue
        stamp.append((str(path), info.st_mtime_ns, info.st_size))
    return tuple(stamp)


def start(sock: Path, timeout: float = START_TIMEOUT, idle: float = IDLE_TIMEOUT,
          owner: int | None = None) -> int:
    """Start the service in the background; return its process id once it answers on ``sock``.
    With ``owner``, it stops when that process ends."""
    problem = _not_private(sock.parent)
    if problem:
        raise RuntimeError(problem)
    log_path = sock.with_suffix(".log")
    with open(log_path, "ab") as log:
        argv = [sys.executable, "-m", "autograder", "serve", str(sock), "--idle", str(idle),
                *(["--owner", str(owner)] if owner else [])]
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"The grading service exited with code {proc.returncode} while "
                               f"starting. Its log: {log_path}")
        if _answers(sock):
            return proc.pid
        time.sleep(0.2)
    proc.kill()
    raise TimeoutError(f"The grading service did not answer on {sock} within {timeout:.0f} s. "
                       f"Its log: {log_path}")


def stop(sock: Path, timeout: float = 30.0) -> bool:
    """Stop the service on ``sock`` and wait until it no longer listens; False when none answered."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(10)
            conn.connect(str(sock))
            conn.sendall(b'{"stop": true}\n')
            if b"stopping" not in conn.recv(100):
                return False
    except OSError:
        return False
    deadline = time.monotonic() + timeout
    while sock.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"The grading service on {sock} still listens {timeout:.0f} s after "
                               "it was asked to stop. Its log: " + str(sock.with_suffix(".log")))
        time.sleep(0.1)
    return True


def grade_remotely(sock: Path, exercise_id: str, submission: Path, timeout: float,
                   **settings: object) -> Report | None:
    """The report from the service on ``sock``; None when it cannot give one (grade locally then).

    ``settings`` go with the request: ``shown_as`` (the file's name in the report),
    ``warehouse_url``, ``task_logs=True`` (the failed tasks' logs too, for the text report).
    Why there is no report goes to stderr, so that ``--format json`` output stays JSON.
    """
    request = {"exercise": exercise_id, "submission": str(Path(submission).resolve()),
               "timeout": timeout, "root": str(REPO_ROOT), **settings}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout + 120)  # the test run's own limit, plus import and start-up
            conn.connect(str(sock))
            conn.sendall((json.dumps(request) + "\n").encode())
            reply = json.loads(conn.makefile("rb").readline() or b'{"error": "it closed the connection"}')
    except (OSError, ValueError) as exc:
        print(f"The grading service on {sock} did not answer ({exc}); grading here instead.",
              file=sys.stderr)
        return None
    if not isinstance(reply, dict) or "error" in reply or "checks" not in reply:
        why = reply.get("error") if isinstance(reply, dict) else reply
        print(f"The grading service could not grade {submission}: {why}; grading here instead.",
              file=sys.stderr)
        return None
    report = Report.from_dict(reply)
    report.task_logs = reply.get("task_logs") or {}
    return report


HOST_IDLE_TIMEOUT = 300.0  # a worker's grader: stopped after five minutes unused
HOST_LOCK_TIMEOUT = START_TIMEOUT + 30.0


def host_grader(folder: Path | None = None) -> Path | None:
    """The socket of this host's warm grader, started on first use; None when it cannot start.

    For grading tasks on a worker (Celery) that is not the machine of the DAG's setup task.
    ``folder`` defaults to ``$COURSE_GRADER_DIR``, else a private folder in the temporary
    directory. One task starts the grader while the others on the host wait for it (a file lock);
    it stops when its worker ends (``worker.pid`` in the folder, else the Celery worker this task
    runs under) or after HOST_IDLE_TIMEOUT seconds unused.
    """
    import fcntl
    import tempfile

    folder = Path(folder or os.environ.get("COURSE_GRADER_DIR")
                  or Path(tempfile.gettempdir()) / f"course-grader-{os.getuid()}")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    sock = folder / "grader.sock"
    if _answers(sock):
        return sock
    with open(folder / "grader.lock", "w") as lock:
        deadline = time.monotonic() + HOST_LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    print(f"Another task held {folder / 'grader.lock'} for {HOST_LOCK_TIMEOUT:.0f} s "
                          "while starting this host's grader; grading here instead.", file=sys.stderr)
                    return None
                time.sleep(0.2)
        if _answers(sock):
            return sock
        try:
            pid = start(sock, idle=HOST_IDLE_TIMEOUT, owner=_worker_pid(folder))
        except (RuntimeError, TimeoutError) as exc:
            print(f"{exc} Grading here instead.", file=sys.stderr)
            return None
        (folder / "grader.pid").write_text(str(pid))
        return sock


def _worker_pid(folder: Path) -> int | None:
    """The worker whose life the host's grader shares: ``worker.pid`` in ``folder``, else the
    outermost Celery process above this one, else None (the idle timeout alone stops it)."""
    try:
        return int((folder / "worker.pid").read_text())
    except (OSError, ValueError):
        pass
    import psutil

    found = None
    try:
        for proc in psutil.Process().parents():
            if any("celery" in part for part in proc.cmdline()):
                found = proc.pid
    except psutil.Error:
        pass
    return found


def _alive(pid: int) -> bool:
    """The process ``pid`` runs (a zombie that its parent has not reaped yet does not)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


def answers(sock: Path) -> bool:
    """A service listens on ``sock`` (a cheap check: no grading)."""
    return _answers(sock)


def keep(sock: Path, idle: float = LAB_IDLE_TIMEOUT) -> int:
    """Keep a service on ``sock`` until SIGTERM: start it again when it dies (at most
    CRASHES_IN_A_ROW times in CRASH_WINDOW seconds), and after an idle stop as soon as a caller
    touches ``wake_file(sock)``. Runs in the service's process group, which the lab records."""
    stopping, crashes = [False], deque(maxlen=CRASHES_IN_A_ROW)
    signal.signal(signal.SIGTERM, lambda *_: stopping.__setitem__(0, True))
    signal.signal(signal.SIGINT, lambda *_: stopping.__setitem__(0, True))
    wake, pid_file = wake_file(sock), sock.with_name(sock.name + ".pid")
    pid_file.write_text(str(os.getpid()))
    proc: subprocess.Popen | None = None
    dormant = False
    while not stopping[0]:
        if proc is None and not dormant:
            wake.unlink(missing_ok=True)
            proc = subprocess.Popen([sys.executable, "-m", "autograder", "serve", str(sock),
                                     "--idle", str(idle)], cwd=REPO_ROOT, stdin=subprocess.DEVNULL)
        time.sleep(0.25)
        if dormant and wake.exists():
            print("Woken by a grade request: starting the grader again.", flush=True)
            dormant = False
            crashes.clear()
        if proc is None or proc.poll() is None:
            continue
        code, proc = proc.returncode, None
        if code == OUTDATED:
            print("The course's code changed: starting the grader again with it.", flush=True)
            continue
        if code == 0:
            print("The grader stopped after its idle time; it starts again on the next grade.",
                  flush=True)
            wake.unlink(missing_ok=True)  # a touch from before this stop is no request to wake
            dormant = True
            continue
        crashes.append(time.monotonic())
        if len(crashes) == crashes.maxlen and crashes[-1] - crashes[0] < CRASH_WINDOW:
            print(f"The grader ended with code {code} {len(crashes)} times within "
                  f"{CRASH_WINDOW:.0f} s: not starting it again until the next grade.", flush=True)
            dormant = True
        else:
            print(f"The grader ended with code {code}: starting it again.", flush=True)
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    wake.unlink(missing_ok=True)
    pid_file.unlink(missing_ok=True)
    return 0


def wake_file(sock: Path) -> Path:
    """The file a caller touches to have ``keep`` start a grader that stopped when idle."""
    return sock.with_name(sock.name + ".wake")


def _not_private(folder: Path) -> str | None:
    """Why ``folder`` may not hold the service's socket (others could open it), or None."""
    info = folder.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        return (f"The grading service's socket must be in a folder only you can open (mode 0700): "
                f"{folder} is not. Use a fresh folder, e.g. from `mktemp -d`.")
    return None


def _peer_uid(conn: socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket (SO_PEERCRED)."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def _answers(sock: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(1)
            conn.connect(str(sock))
        return True
    except OSError:
        return False

