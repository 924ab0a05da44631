"""Start ``airflow standalone`` and its components from one interpreter that has Airflow loaded.

``airflow standalone`` starts each component as a new ``airflow ...`` process found on ``PATH``,
and each of them spends about two CPU-seconds importing Airflow before it does anything. On a
two-core laptop those imports, all at once, are most of the lab's start-up time.

This launcher imports Airflow once, forks ``airflow standalone`` from itself, and answers the
``airflow`` commands standalone runs: the lab puts a small ``airflow`` stand-in first on
``PATH`` (see :func:`write_stand_in`) that hands its arguments, environment and standard streams
to the launcher over a Unix socket, which forks the command from its warm interpreter. The
stand-in forwards signals to the forked command and exits with its exit status, so standalone
sees what it would see with the real command. Anything unusual (a different Airflow
configuration in the environment, the launcher gone) makes the stand-in run the real ``airflow``.

Linux only: forking after imports is what Airflow's own executors do there; on macOS, fork
without exec is unsafe with the system frameworks, and the lab starts the plain command.

    python -m course.launcher SOCKET        # what the lab runs instead of `airflow standalone`
"""

from __future__ import annotations

import importlib
import json
import os
import select
import shlex
import signal
import socket
import sys
import traceback
from pathlib import Path

FORWARDED_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
# Loaded after standalone is forked (while it checks the database): what the components import.
PRELOAD = (
    "airflow.__main__",
    "airflow.cli.commands.standalone_command",
    "airflow.cli.commands.scheduler_command",
    "airflow.cli.commands.dag_processor_command",
    "airflow.cli.commands.triggerer_command",
    "airflow.cli.commands.api_server_command",
    "airflow.jobs.scheduler_job_runner",
    "airflow.jobs.triggerer_job_runner",
    "airflow.jobs.dag_processor_job_runner",
    "airflow.dag_processing.manager",
    "airflow.executors.local_executor",
    "airflow.api_fastapi.app",
    "uvicorn",
)
REQUEST_LIMIT = 1 << 20
ENABLE_ENV = "COURSE_AIRFLOW_PRELOAD"

# Starts as a shell script that runs Python on itself (as pip's launchers do), so that paths with
# spaces work; Python reads the exec line as a string.
STAND_IN = '''\
#!/bin/sh
\'\'\'exec' {python} -IS "$0" "$@"
' \'\'\'
# Written by the course lab at each start. `airflow standalone` runs its components as
# `airflow ...`; this runs them as forks of the lab's launcher (course/launcher.py), which has
# Airflow loaded already, and falls back to the real command: {airflow}
import array, json, os, signal, socket, sys

AIRFLOW = {airflow!r}
SOCKET = {socket!r}


def real():
    os.execv(AIRFLOW, [AIRFLOW, *sys.argv[1:]])


try:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(SOCKET)
except OSError:
    real()
body = json.dumps({{"argv": sys.argv[1:], "env": dict(os.environ), "cwd": os.getcwd()}}).encode()
fds = array.array("i", [0, 1, 2])
conn.sendmsg([len(body).to_bytes(4, "big") + body], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
answers = conn.makefile("r")
first = answers.readline().split()
if first[:1] != ["pid"]:
    real()
pid = int(first[1])


def forward(signum, frame):
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


for name in {signals!r}:
    signal.signal(getattr(signal, name), forward)
last = answers.readline().split()
code = int(last[1]) if last[:1] == ["exit"] else 1
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
sys.exit(code)
'''


def available() -> bool:
    """Whether the lab starts Airflow through this launcher (Linux, unless switched off)."""
    return sys.platform.startswith("linux") and os.environ.get(ENABLE_ENV, "1") != "0"


def socket_path(home: Path) -> Path:
    """Where the launcher listens: in the lab's home, or a private temp folder if that is too long."""
    path = home / "launcher.sock"
    if len(os.fsencode(path)) < 100:  # Unix socket paths are limited to about 107 bytes
        return path
    import hashlib
    import tempfile

    folder = Path(tempfile.gettempdir()) / f"course-airflow-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder / f"{hashlib.sha256(os.fsencode(home)).hexdigest()[:16]}.sock"


def write_stand_in(folder: Path, airflow: Path, sock: Path, python: str = sys.executable) -> Path:
    """Write the ``airflow`` stand-in into ``folder`` (put it first on ``PATH``)."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "airflow"
    script.write_text(STAND_IN.format(python=shlex.quote(python), airflow=str(airflow),
                                      socket=str(sock), signals=FORWARDED_SIGNALS))
    script.chmod(0o755)
    return script


def _airflow_settings(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith("AIRFLOW")}


class Launcher:
    """The serving side: fork standalone, then fork each command a stand-in asks for."""

    def __init__(self, sock: Path) -> None:
        self.airflow = Path(sys.executable).parent / "airflow"
        self.settings = _airflow_settings(os.environ)  # what Airflow was configured from
        if sock.exists():
            sock.unlink()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(sock))
        sock.chmod(0o600)  # only this user's stand-ins may ask for a fork
        self.listener.listen(16)
        self.clients: dict[int, socket.socket] = {}  # forked pid -> the stand-in waiting for it

    def fork(self, argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None,
             fds: list[int] = ()) -> int:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            return pid
        # The child: become `airflow <argv>`. Never returns; exits through SystemExit so that
        # the interpreter shuts down as the real command would (atexit handlers, threads).
        code = 1
        try:
            self.listener.close()
            for client in self.clients.values():
                client.close()
            # Before the environment changes below: setproctitle finds its room for titles next to
            # the environment's original strings, and gives up once they have been replaced.
            from setproctitle import setproctitle

            setproctitle(" ".join([sys.executable, str(self.airflow), *argv]))
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
                os.close(fd)
            if env is not None:
                os.environ.clear()
                os.environ.update(env)
            if cwd:
                os.chdir(cwd)
            for name in FORWARDED_SIGNALS + ("SIGCHLD",):
                signal.signal(getattr(signal, name), signal.SIG_DFL)
            sys.argv = [str(self.airflow), *argv]
            from airflow.__main__ import main

            code = main()
        except SystemExit as done:
            code = done.code
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.exit(code)

    def serve(self, standalone: int) -> int:
        """Answer stand-ins until standalone ends; return its exit code."""
        while True:
            readable, _, _ = select.select([self.listener, *self.clients.values()], [], [], 0.2)
            for conn in readable:
                if conn is self.listener:
                    self._accept()
                else:  # a stand-in went away while its command runs: the command goes too
                    pid = next(p for p, c in self.clients.items() if c is conn)
                    _kill(pid, signal.SIGKILL)
            while True:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return 1
                if pid == 0:
                    break
                code = os.waitstatus_to_exitcode(status)
                if pid == standalone:
                    return code
                client = self.clients.pop(pid, None)
                if client is not None:
                    _send(client, f"exit {code}\n")
                    client.close()

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        conn.settimeout(10)
        try:
            body, fds = _receive(conn)
        except (OSError, ValueError) as error:
            print(f"launcher: a bad request from an `airflow` stand-in ({error}); it runs the real "
                  "command instead.", file=sys.stderr, flush=True)
            _send(conn, "exec\n")
            conn.close()
            return
        request = json.loads(body)  # written by the stand-in's json.dumps
        theirs = _airflow_settings(request["env"])
        if theirs != self.settings or len(fds) != 3:
            differ = sorted(k for k in {*theirs, *self.settings} if theirs.get(k) != self.settings.get(k))
            print(f"launcher: `airflow {' '.join(request['argv'])}` is configured differently "
                  f"({', '.join(differ) or 'its streams'}); it runs as a new process.",
                  file=sys.stderr, flush=True)
            _send(conn, "exec\n")
            conn.close()
            for fd in fds:
                os.close(fd)
            return
        pid = self.fork(request["argv"], request["env"], request["cwd"], fds)
        for fd in fds:
            os.close(fd)
        _send(conn, f"pid {pid}\n")
        conn.settimeout(None)
        self.clients[pid] = conn


def _receive(conn: socket.socket) -> tuple[bytes, list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, 65536, 3)
    try:
        if len(data) < 4:
            raise ValueError("the request is shorter than its header")
        size = int.from_bytes(data[:4], "big")
        if size > REQUEST_LIMIT:
            raise ValueError(f"a request of {size} bytes")
        body = data[4:]
        while len(body) < size:
            more = conn.recv(size - len(body))
            if not more:
                raise ValueError("the request ended early")
            body += more
    except (OSError, ValueError):
        for fd in fds:
            os.close(fd)
        raise
    return body, list(fds)


def _send(conn: socket.socket, text: str) -> None:
    try:
        conn.sendall(text.encode())
    except OSError:
        pass  # the stand-in is gone; its command is reaped all the same


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.rsplit("\n\n", 1)[-1], file=sys.stderr)
        return 2
    import airflow  # noqa: F401  (the point of this process: everything forked from here has it)

    launcher = Launcher(Path(argv[0]))
    standalone = launcher.fork(["standalone"])
    for module in PRELOAD:
        importlib.import_module(module)
    return launcher.serve(standalone)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
