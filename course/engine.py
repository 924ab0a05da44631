"""Life cycle of the embedded lab: ``airflow standalone``, a local SMTP sink and a warm grader.

Each runs in a process group of its own, recorded in ``lab.json`` so that ``stop`` can end every
process they started, even after the terminal that started them is gone or a component was
killed with SIGKILL. The grader (``python -m autograder serve --keep``) is what ``make grade``
asks first: it keeps Airflow loaded, is started again when it dies, and sleeps when unused.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import psutil

from course.paths import LabPaths

COMPONENTS = ("metadatabase", "scheduler", "dag_processor", "triggerer")
# How `airflow standalone` prefixes each component's lines in its combined output.
LOG_PREFIX = {
    "scheduler": "scheduler",
    "dag_processor": "dag-processor",
    "triggerer": "triggerer",
    "api_server": "api-server",
    "metadatabase": "standalone",
}
DEFAULT_PORT = 8080
DEFAULT_SMTP_PORT = 8025
START_TIMEOUT = 180.0
STOP_TIMEOUT = 30.0
ORPHAN_STOP_TIMEOUT = 3.0  # components whose `airflow standalone` was killed: see stop()
MAILDIR = ("tmp", "new", "cur")


class LabError(RuntimeError):
    """The lab could not do what was asked; the message says why and what to do."""


@dataclass
class LabState:
    """What ``start`` recorded about the running lab."""

    port: int
    smtp_port: int
    airflow_pgid: int
    smtp_pgid: int
    started_at: float = field(default_factory=time.time)
    grader_pgid: int | None = None  # the warm grader's keeper and the grader itself

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class LabStatus:
    running: bool
    url: str | None
    components: dict[str, str]
    password_file: Path
    smtp: str | None
    grader: str | None = None
    log: Path | None = None

    def report(self) -> str:
        """A few lines for a terminal."""
        if not self.running:
            return "Airflow lab: stopped. Start it with `make lab` or `python -m course airflow start`."
        lines = [f"Airflow lab: running at {self.url}"]
        lines += [f"  {name:<14}{health}" for name, health in self.components.items()]
        lines.append(f"  {'smtp sink':<14}{self.smtp}")
        if self.grader:
            lines.append(f"  {'grader':<14}{self.grader}")
        lines.append(f"Login: admin, password in {self.password_file}")
        down = [name for name, health in self.components.items() if health != "healthy"]
        if down:
            lines.append(f"Not healthy: {', '.join(down)}. `make airflow-start` restarts the lab "
                         f"(DAG runs and mail are kept); why it stopped is in {self.log}.")
        return "\n".join(lines)


def read_state(paths: LabPaths) -> LabState | None:
    try:
        return LabState(**json.loads(paths.state_file.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def port_is_free(port: int) -> bool:
    """True when nothing listens on ``port`` on this machine (any address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers do: connections of a lab that just stopped (TIME_WAIT) do not hold the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def free_port(preferred: int, taken: Iterable[int] = (), span: int = 200) -> int:
    """``preferred`` when it is free, otherwise the next free port above it."""
    for port in range(preferred, preferred + span):
        if port not in taken and port_is_free(port):
            return port
    raise LabError(f"No free port between {preferred} and {preferred + span - 1}. "
                   "Stop some other servers and try again.")


def airflow_bin() -> Path:
    """The ``airflow`` script of the environment running this Python."""
    return Path(sys.executable).parent / "airflow"


def airflow_env(paths: LabPaths) -> dict[str, str]:
    """Environment for any Airflow command that should talk to this lab."""
    env = dict(os.environ)
    env["AIRFLOW_HOME"] = str(paths.home)
    # `airflow standalone` runs its components as `airflow ...`: ours must come first on PATH.
    env["PATH"] = f"{airflow_bin().parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(paths.root), env.get("PYTHONPATH")]))
    for key in [k for k in env if k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))]:
        del env[key]  # the lab's airflow.cfg is the one source of settings
    env.setdefault("NO_COLOR", "1")
    return env


def write_config(paths: LabPaths, port: int, smtp_port: int, log_ports: tuple[int, int]) -> None:
    """Write airflow.cfg and the connections file for a lab on ``port``."""
    for folder in (paths.home, paths.dags, paths.logs, *(paths.mail_dir / d for d in MAILDIR)):
        folder.mkdir(parents=True, exist_ok=True)
    secret_file = paths.home / ".jwt_secret"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(32))
    secret = secret_file.read_text().strip()
    bundles = [
        {"name": "lessons", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
         "kwargs": {"path": str(paths.dags)}},
        {"name": "exercises", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
         "kwargs": {"path": str(paths.exercises)}},
    ]
    backend_kwargs = {"connections_file_path": str(paths.connections_file)}
    paths.config_file.write_text(f"""\
# Written by `python -m course airflow start`; edits are replaced at the next start.
[core]
dags_folder = {paths.dags}
# An edited DAG is stored (new version, new graph) at its next parse, not up to 30 s later.
min_serialized_dag_update_interval = 0
# Enough frames to reach the learner's own line in import errors.
dagbag_import_error_traceback_depth = 10
load_examples = False
parallelism = 4
max_active_tasks_per_dag = 4
executor = LocalExecutor
execution_api_server_url = http://127.0.0.1:{port}/execution/
default_timezone = utc

[database]
sql_alchemy_conn = sqlite:///{paths.home / "airflow.db"}
sql_alchemy_connect_args = course.airflow_db.SQLITE_CONNECT_ARGS

[api]
host = 127.0.0.1
port = {port}
base_url = http://127.0.0.1:{port}
workers = 1
secret_key = {secret}
expose_config = True

[api_auth]
jwt_secret = {secret}

[dag_processor]
dag_bundle_config_list = {json.dumps(bundles)}
# A new file in the DAG folders is seen within a second (both settings: Airflow checks whether a
# bundle is due for its refresh only every bundle_refresh_check_interval seconds, 5 by default).
refresh_interval = 1
bundle_refresh_check_interval = 1
min_file_process_interval = 5
parsing_processes = 1

[scheduler]
enable_health_check = False
# An idle scheduler looks for work four times a second (Airflow's 1 s added up to a second between
# two tasks of a lesson's run).
scheduler_idle_sleep_time = 0.25

[workers]
# Airflow's 5 s is too short on a busy machine (two cores, a notebook and a grader at once): a
# task whose first call to the api-server times out fails before it starts.
execution_api_timeout = 30
# A task's supervisor notices the task's end within this many seconds: Airflow's 5 left most short
# lesson tasks finished but "running" for 5 s more.
min_heartbeat_interval = 1

[logging]
base_log_folder = {paths.logs}
worker_log_server_port = {log_ports[0]}
trigger_log_server_port = {log_ports[1]}

[secrets]
backend = airflow.secrets.local_filesystem.LocalFilesystemBackend
backend_kwargs = {json.dumps(backend_kwargs)}

[email]
from_email = airflow@course.local
""")
    connections = {
        "warehouse": {"conn_type": "sqlite", "host": str(paths.warehouse)},
        # FileSensor's default: an empty base path, so that its filepath is used as it is.
        "fs_default": {"conn_type": "fs", "extra": {"path": ""}},
        "smtp_default": {
            "conn_type": "smtp", "host": "127.0.0.1", "port": smtp_port,
            "extra": {"disable_ssl": True, "disable_tls": True,
                      "from_email": "airflow@course.local", "timeout": 10},
        },
    }
    paths.connections_file.write_text(json.dumps(connections, indent=2))


def _spawn(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)


def lab_processes(paths: LabPaths) -> list[psutil.Process]:
    """Every live process whose environment points at this lab's Airflow home.

    Each process carries a snapshot taken while it was alive: ``proc.info["cmdline"]`` (its
    arguments), ``proc.info["environ"]`` and ``proc.info["status"]``. Read those rather than
    calling ``proc.cmdline()``: short-lived processes (a DAG file being parsed, a task) may end
    between this call and the next.
    """
    found = []
    for proc in psutil.process_iter(["environ", "cmdline", "status"]):
        info = proc.info
        if proc.pid == os.getpid() or not info["environ"] or info["cmdline"] is None:
            continue  # ourselves, a process we may not inspect, or one that just ended
        if info["environ"].get("AIRFLOW_HOME") == str(paths.home) and info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    _reap(pgid)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # A lone zombie leader that is not our child still "exists" for killpg; look closer.
    members = [p for p in psutil.process_iter(["status"]) if _pgid(p) == pgid]
    return any(p.info["status"] != psutil.STATUS_ZOMBIE for p in members)


def _leader_alive(pgid: int) -> bool:
    """Whether the process that leads group ``pgid`` (the one we started) still runs."""
    try:
        return psutil.Process(pgid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _pgid(proc: psutil.Process) -> int | None:
    try:
        return os.getpgid(proc.pid)
    except OSError:
        return None


def _reap(pid: int) -> None:
    """Collect an exited child so that it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def health(port: int, timeout: float = 3.0) -> dict[str, str] | None:
    """Component -> status from the api-server, or None when it does not answer."""
    try:
        reply = httpx.get(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=timeout)
        reply.raise_for_status()
        body = reply.json()
    except (httpx.HTTPError, ValueError):
        return None
    return {name: (body.get(name) or {}).get("status") or "unknown" for name in COMPONENTS}


def warm_execution_api(port: int, timeout: float = 60.0) -> None:
    """Ask the api-server on ``port`` for its Execution API once, so that the first task need not.

    Airflow builds that API (the one tasks report through) on its first request: about 2.5 s on
    two cores, during which the api-server answers nothing else, and which the first task of the
    first run would otherwise wait for. An api-server that does not answer is left to the caller's
    own health checks.
    """
    try:
        httpx.get(f"http://127.0.0.1:{port}/execution/health", timeout=timeout)
    except httpx.HTTPError:
        pass


def admin_password(paths: LabPaths) -> str:
    """The admin password that `airflow standalone` generated for this lab."""
    try:
        return json.loads(paths.password_file.read_text())["admin"]
    except (OSError, ValueError, KeyError) as exc:
        raise LabError(f"No admin password in {paths.password_file} yet: start the lab first "
                       "(`lab.start()` or `make airflow-start`).") from exc


def _answers_as_this_lab(paths: LabPaths, port: int) -> bool:
    """The api-server on ``port`` accepts this lab's admin password (and so is this lab's)."""
    try:
        reply = httpx.post(f"http://127.0.0.1:{port}/auth/token", timeout=5,
                           json={"username": "admin", "password": admin_password(paths)})
    except (LabError, httpx.HTTPError):
        return False
    return reply.status_code in (200, 201)


def smtp_alive(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def status(paths: LabPaths | None = None) -> LabStatus:
    paths = paths or LabPaths.default()
    state = read_state(paths)
    comps = health(state.port) if state else None
    if state is None or comps is None:
        return LabStatus(False, None, {}, paths.password_file, None)
    smtp = f"listening on 127.0.0.1:{state.smtp_port}" if smtp_alive(state.smtp_port) else "down"
    # Components outlive a killed `airflow standalone` for a while, but they cannot work without it
    # (their logs go to a pipe nobody reads): such a lab is down, and `start` replaces it.
    alive = running_components(state.airflow_pgid) if _leader_alive(state.airflow_pgid) else set()
    for name in comps:
        # The api-server's answer lags a killed component by its heartbeat timeout; the process
        # table does not.
        if name != "metadatabase" and name not in alive:
            comps[name] = "not running"
    return LabStatus(True, state.url, {"api_server": "healthy", **comps}, paths.password_file, smtp,
                     grader_status(paths, state), paths.airflow_log)


def grader_status(paths: LabPaths, state: LabState) -> str:
    """One line on the lab's warm grader for the status report."""
    from autograder import service

    sock = paths.grader_socket
    if state.grader_pgid is None or not _group_alive(state.grader_pgid):
        return "not running: `make grade` grades without it (about 20 s); `make airflow-start` restarts it"
    if service.answers(sock):
        return "ready: `make grade` answers in about 2 s"
    return "starting (or asleep after 30 idle minutes): the next `make grade` wakes it"


def start_grader(paths: LabPaths, idle: float | None = None) -> int:
    """Start the lab's warm grader in a process group of its own; return that group's id.

    It is not waited for: it warms up (about 10 s) while the learner opens the notebooks, and a
    grade asked meanwhile runs without it.
    """
    from autograder import service

    sock = paths.grader_socket
    for folder in {paths.grader_dir, sock.parent}:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)  # the socket's folder must be private: see autograder.service
    # The learner's environment, as `make grade` has it; the grader sets Airflow's own per child.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(paths.root), env.get("PYTHONPATH")]))
    proc = _spawn([sys.executable, "-m", "autograder", "serve", str(sock), "--keep",
                   "--idle", str(idle or service.LAB_IDLE_TIMEOUT)], paths.grader_log, env)
    return proc.pid


def _ensure_grader(paths: LabPaths) -> None:
    """A running lab has its grader: start it when it is missing (first start, or it was killed)."""
    state = read_state(paths)
    if state is None or (state.grader_pgid is not None and _group_alive(state.grader_pgid)):
        return
    state.grader_pgid = start_grader(paths)
    paths.state_file.write_text(json.dumps(asdict(state)))


def running_components(pgid: int) -> set[str]:
    """Names of the Airflow components alive in the standalone process group."""
    names = set()
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE or _pgid(proc) != pgid:
            continue
        # Words, not argv items: a process that set its title (setproctitle) has one long item.
        argv = " ".join(proc.info["cmdline"] or []).split()
        for i, arg in enumerate(argv[:-1]):
            if arg.endswith("airflow"):
                names.add(argv[i + 1].replace("-", "_"))
                break
    return names


def component_log_tail(paths: LabPaths, component: str, lines: int = 20) -> str:
    """The last lines that ``component`` wrote to the standalone log."""
    prefix = LOG_PREFIX.get(component, component)
    try:
        text = paths.airflow_log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log yet)"
    mine = [line for line in text if line.split("|", 1)[0].strip() == prefix]
    return "\n".join((mine or text)[-lines:])


def start(paths: LabPaths | None = None, timeout: float = START_TIMEOUT,
          progress=print, port: int | None = None) -> LabStatus:
    """Start the lab, or return at once when it is already healthy.

    ``port`` is the preferred port (default ``$COURSE_AIRFLOW_PORT`` or 8080); when it is taken
    the next free one is used.
    """
    paths = paths or LabPaths.default()
    preferred = port or int(os.environ.get("COURSE_AIRFLOW_PORT", DEFAULT_PORT))
    current = status(paths)
    healthy = all(v == "healthy" for v in current.components.values())
    if current.running and healthy and current.smtp != "down":
        _ensure_grader(paths)
        return status(paths)
    # Whatever is left from an earlier lab (killed terminal, SIGKILLed scheduler) goes first.
    stop(paths, quiet=True)

    port = free_port(preferred)
    smtp_port = free_port(DEFAULT_SMTP_PORT, taken={port})
    log_ports = (free_port(8793, taken={port, smtp_port}),)
    log_ports += (free_port(8794, taken={port, smtp_port, *log_ports}),)
    write_config(paths, port, smtp_port, log_ports)
    env = airflow_env(paths)
    if port != preferred:
        progress(f"Port {preferred} is taken; the lab uses port {port}.")

    smtp = _spawn([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{smtp_port}",
                   "-c", "aiosmtpd.handlers.Mailbox", str(paths.mail_dir)], paths.smtp_log, env)
    airflow = _spawn([str(airflow_bin()), "standalone"], paths.airflow_log, env)
    state = LabState(port=port, smtp_port=smtp_port, airflow_pgid=airflow.pid, smtp_pgid=smtp.pid)
    paths.state_file.write_text(json.dumps(asdict(state)))
    progress(f"Starting Airflow on {state.url} (log: {paths.airflow_log}) ...")

    deadline = time.monotonic() + timeout
    comps: dict[str, str] | None = None
    while time.monotonic() < deadline:
        if airflow.poll() is not None:
            stop(paths, quiet=True)
            raise LabError(f"`airflow standalone` exited with code {airflow.returncode} while "
                           f"starting. Last lines of {paths.airflow_log}:\n"
                           f"{component_log_tail(paths, 'standalone', 30)}")
        if smtp.poll() is not None:
            stop(paths, quiet=True)
            raise LabError(f"The SMTP sink exited while starting. {paths.smtp_log}:\n"
                           + paths.smtp_log.read_text(errors="replace")[-2000:])
        comps = health(port)
        if comps and all(v == "healthy" for v in comps.values()) and smtp_alive(smtp_port):
            if not _answers_as_this_lab(paths, port):
                stop(paths, quiet=True)
                raise LabError(f"Port {port} is answered by another Airflow (another lab or a "
                               "server started meanwhile). Stop it, or run `python -m course "
                               "airflow start` again to pick another port.")
            warm_execution_api(port)
            # Once Airflow is up, not before: on two cores the two start-ups would slow each other.
            _ensure_grader(paths)
            return status(paths)
        time.sleep(0.5)

    if comps is None:
        waiting = ["api_server"]
    else:
        waiting = [name for name, value in comps.items() if value != "healthy"]
    tails = "\n".join(f"--- {name} (last lines) ---\n{component_log_tail(paths, name)}"
                      for name in waiting)
    stop(paths, quiet=True)
    raise LabError(f"Airflow did not become healthy within {timeout:.0f} s: waiting for "
                   f"{', '.join(waiting)}.\n{tails}\nFull log: {paths.airflow_log}. "
                   "Run `python -m course airflow start` again; if it keeps failing, "
                   "reset the lab with `make reset`.")


def stop(paths: LabPaths | None = None, timeout: float = STOP_TIMEOUT, quiet: bool = False) -> bool:
    """Stop every process of the lab. True when something was running."""
    paths = paths or LabPaths.default()
    state = read_state(paths)
    groups = [state.airflow_pgid, state.smtp_pgid] if state else []
    if state and state.grader_pgid is not None:
        groups.append(state.grader_pgid)
    found = False
    for pgid in groups:
        if _group_alive(pgid):
            found = True
            _signal_group(pgid, signal.SIGTERM)
    if state and not _leader_alive(state.airflow_pgid):
        # Orphaned components wait forever on workers that log to a pipe nobody reads.
        timeout = min(timeout, ORPHAN_STOP_TIMEOUT)
    deadline = time.monotonic() + timeout
    while any(_group_alive(g) for g in groups) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pgid in groups:
        if _group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)
    # Stragglers outside the recorded groups (a lost lab.json, a re-parented worker).
    stragglers = lab_processes(paths)
    for proc in stragglers:
        found = True
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(stragglers, timeout=5)
    for pgid in groups:
        _reap(pgid)
    # What a killed grader could not remove: callers would take a stale socket for a live one.
    sock = paths.grader_socket
    for leftover in (sock, sock.with_name(sock.name + ".pid"), sock.with_name(sock.name + ".wake")):
        leftover.unlink(missing_ok=True)
    if paths.state_file.exists():
        paths.state_file.unlink()
    if not quiet:
        print("Airflow lab stopped." if found else "Airflow lab was not running.")
    return found


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
