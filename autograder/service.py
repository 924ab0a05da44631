"""A grading service: one warm grader that many short-lived processes share.

The class-grading DAG's setup task starts it, each mapped task sends it one submission over a
Unix socket and gets the report back, and the teardown task stops it. Every submission is still
graded in a sandboxed child process of its own, forked from the warm grader exactly as
``grade-class`` does; what the tasks save is the start-up of Airflow for each submission. The
service stops by itself after ``idle`` seconds without a request, so a cancelled run leaves
nothing behind for long.

    python -m autograder serve SOCKET [--idle SECONDS]
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from autograder.config import REPO_ROOT, GradeConfig
from autograder.exercises import find
from autograder.grade import grade
from autograder.model import Report
from autograder.render import as_json
from autograder.runner import WarmServer

IDLE_TIMEOUT = 600.0
START_TIMEOUT = 180.0


def serve(sock: Path, idle: float = IDLE_TIMEOUT) -> int:
    """Grade the submissions sent to ``sock`` until told to stop or idle for ``idle`` seconds."""
    config = GradeConfig.from_env()
    with WarmServer(config) as warm:
        busy, last = [0], [time.monotonic()]
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
                with lock:
                    busy[0] += 1
                try:
                    timeout = float(request.get("timeout") or config.run_timeout)
                    report = grade(find(request["exercise"]), Path(request["submission"]),
                                   replace(config, run_timeout=timeout), warm)
                    self.wfile.write((as_json(report) + "\n").encode())
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
                with lock:
                    if busy[0] == 0 and time.monotonic() - last[0] > idle:
                        break
            server.shutdown()

        threading.Thread(target=stop_when_idle, daemon=True).start()
        try:
            server.serve_forever(poll_interval=0.5)
        finally:
            server.server_close()
            sock.unlink(missing_ok=True)
    return 0


def start(sock: Path, timeout: float = START_TIMEOUT, idle: float = IDLE_TIMEOUT) -> int:
    """Start the service in the background; return its process id once it answers on ``sock``."""
    problem = _not_private(sock.parent)
    if problem:
        raise RuntimeError(problem)
    log_path = sock.with_suffix(".log")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "autograder", "serve", str(sock), "--idle",
                                 str(idle)], cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log,
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


def grade_remotely(sock: Path, exercise_id: str, submission: Path, timeout: float) -> Report | None:
    """The report from the service on ``sock``; None when it cannot give one (grade locally then)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout + 120)  # the test run's own limit, plus import and start-up
            conn.connect(str(sock))
            conn.sendall((json.dumps({"exercise": exercise_id, "submission": str(submission),
                                      "timeout": timeout}) + "\n").encode())
            reply = json.loads(conn.makefile("rb").readline() or b'{"error": "no answer"}')
    except (OSError, ValueError) as exc:
        print(f"The grading service on {sock} did not answer ({exc}); grading here instead.")
        return None
    if "error" in reply:
        print(f"The grading service could not grade {submission}: {reply['error']}; grading here instead.")
        return None
    return Report.from_dict(reply)


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

