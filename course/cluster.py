"""Airflow on the CeleryExecutor on this machine, for grading a class with several workers.

    python -m course cluster start [--workers 2] [--concurrency 1] [--postgres-url URL]
    python -m course cluster status
    python -m course cluster stop

``start`` runs Redis (the Celery broker, on a free 127.0.0.1 port, nothing kept on disk), creates a
fresh metadata database on the PostgreSQL server of ``--postgres-url`` (the CeleryExecutor cannot
use SQLite), and starts the api-server, the scheduler, the dag-processor and N Celery workers,
each in a process group of its own, recorded in ``cluster.json`` under the cluster's home
(``.cluster/``, or ``$COURSE_CLUSTER_HOME``). The ``grade_class`` DAG is deployed in its DAGs
folder. Each worker has a grader folder of its own (``COURSE_GRADER_DIR``) and a warm grader there,
started with it and bound to its life (should it fail to start, the first grading task on that
worker starts it). ``stop`` ends every process
the cluster started, its graders included, and drops the database.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psutil

from course import lab
from course.engine import airflow_bin, free_port, warm_execution_api
from course.paths import REPO_ROOT

HOME_ENV = "COURSE_CLUSTER_HOME"
POSTGRES_ENV = "COURSE_POSTGRES_URL"
WORKER_ENV = "COURSE_CLUSTER_WORKER"  # marks every process a worker started, for stop and kill
START_TIMEOUT = 300.0
STOP_TIMEOUT = 30.0
DAG_FILE = REPO_ROOT / "autograder/airflow_dags/grade_class.py"


class ClusterError(RuntimeError):
    """The cluster could not do what was asked; the message says why and what to do."""


@dataclass
class ClusterState:
    """What ``start`` recorded about the running cluster."""

    home: str
    api_port: int
    redis_port: int
    database_url: str  # the cluster's own database, dropped by stop
    password: str
    groups: dict[str, int] = field(default_factory=dict)  # component -> process group id
    workers: list[str] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or REPO_ROOT / ".cluster").resolve()


def read_state(home: Path) -> ClusterState | None:
    try:
        return ClusterState(**json.loads((home / "cluster.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def grader_dir(home: Path, worker: str) -> Path:
    """The folder of ``worker``'s warm grader (socket, log, the worker's pid)."""
    return home / "graders" / worker


def _masked(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
    return urlunsplit(parts)


def _postgres_database(url: str | None) -> tuple[str, str]:
    """Create a fresh database on the server of ``url``; return (its URL, its name)."""
    if not url:
        raise ClusterError(
            "The CeleryExecutor needs PostgreSQL as Airflow's metadata database (it cannot use "
            f"SQLite). Pass --postgres-url postgresql://USER:PASSWORD@127.0.0.1:5432/postgres (or set "
            f"{POSTGRES_ENV}) naming a role that may create databases; no server yet? "
            "`sudo apt-get install postgresql` on Debian/Ubuntu.")
    import psycopg2

    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres", "postgresql+psycopg2"):
        raise ClusterError(f"--postgres-url {_masked(url)} is not a PostgreSQL URL: "
                           "write postgresql://USER:PASSWORD@HOST:PORT/DATABASE.")
    plain = urlunsplit(parts._replace(scheme="postgresql"))
    name = f"course_cluster_{secrets.token_hex(4)}"
    try:
        conn = psycopg2.connect(plain, connect_timeout=10)
    except psycopg2.Error as exc:
        raise ClusterError(f"Cannot connect to PostgreSQL at {_masked(url)}: {str(exc).strip()}. "
                           "Is the server running (`pg_lsclusters`), and are the role and password "
                           "right?") from exc
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
    except psycopg2.Error as exc:
        raise ClusterError(f"PostgreSQL at {_masked(url)} refused to create a database "
                           f"({str(exc).strip()}): the role needs CREATEDB.") from exc
    finally:
        conn.close()
    return urlunsplit(parts._replace(scheme="postgresql", path=f"/{name}")), name


def _drop_database(url: str) -> None:
    import psycopg2

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    try:
        conn = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")), connect_timeout=10)
    except psycopg2.Error as exc:
        print(f"Could not drop the cluster's database {name}: {str(exc).strip()}", file=sys.stderr)
        return
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg2.Error as exc:
        print(f"Could not drop the cluster's database {name}: {str(exc).strip()}", file=sys.stderr)
    finally:
        conn.close()


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _wait(what: str, ready: Callable[[], bool], timeout: float, log: Path,
          proc: subprocess.Popen | None = None) -> None:
    """Wait until ``ready()``; a clear error names what was awaited and its log."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc is not None and proc.poll() is not None:
            raise ClusterError(f"{what} exited with code {proc.returncode} while starting. "
                               f"Its log: {log}")
        if time.monotonic() > deadline:
            raise ClusterError(f"{what} was not ready within {timeout:.0f} s. Its log: {log}")
        time.sleep(0.5)


def write_config(home: Path, api_port: int, redis_port: int, database_url: str, concurrency: int,
                 password: str) -> None:
    """airflow.cfg for the cluster: CeleryExecutor, Redis broker, PostgreSQL metadata."""
    dags, logs = home / "dags", home / "logs"
    for folder in (dags, logs):
        folder.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    (home / "passwords.json").write_text(json.dumps({"admin": password}))
    sql = database_url.replace("postgresql://", "postgresql+psycopg2://", 1)
    bundles = [{"name": "grading", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {"path": str(dags)}}]
    (home / "airflow.cfg").write_text(f"""\
# Written by `python -m course cluster start`; replaced at the next start.
[core]
dags_folder = {dags}
load_examples = False
executor = CeleryExecutor
parallelism = 16
max_active_tasks_per_dag = 16
execution_api_server_url = http://127.0.0.1:{api_port}/execution/
default_timezone = utc
simple_auth_manager_users = admin:admin
simple_auth_manager_passwords_file = {home / "passwords.json"}

[database]
sql_alchemy_conn = {sql}

[api]
host = 127.0.0.1
port = {api_port}
base_url = http://127.0.0.1:{api_port}
workers = 1
secret_key = {secret}

[api_auth]
jwt_secret = {secret}

[dag_processor]
dag_bundle_config_list = {json.dumps(bundles)}
refresh_interval = 3
# grade_class.py does not change while the cluster runs: parsing it again every few seconds would
# take the workers' CPU.
min_file_process_interval = 600
parsing_processes = 1

[scheduler]
enable_health_check = False
# Airflow's default: an idle scheduler looks for work once a second. The grading tasks are queued
# all at once, so a faster loop would gain a fraction of a second at each of the run's three steps
# and take the graders twice the CPU (scheduler and PostgreSQL) while they grade.
scheduler_idle_sleep_time = 1
# A worker that died is noticed after this many seconds; its tasks are then retried elsewhere.
task_instance_heartbeat_timeout = 20
task_instance_heartbeat_timeout_detection_interval = 5

[workers]
# A task's supervisor notices its task's end within this many seconds (Airflow's default, 5,
# often left a worker idle for seconds between two short grading tasks).
min_heartbeat_interval = 1

[celery]
broker_url = redis://127.0.0.1:{redis_port}/0
result_backend = db+{database_url}
worker_concurrency = {concurrency}
# One task at a time per process: a worker does not hold back tasks another one could run.
worker_prefetch_multiplier = 1

[logging]
base_log_folder = {logs}
""")


def _env(home: Path, worker: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
    env["AIRFLOW_HOME"] = str(home)
    env["PATH"] = f"{airflow_bin().parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("NO_COLOR", "1")
    if worker:
        env[WORKER_ENV] = worker
        env["COURSE_GRADER_DIR"] = str(grader_dir(home, worker))
    return env


def _spawn(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=REPO_ROOT, start_new_session=True)


def start(home: Path | None = None, workers: int = 2, concurrency: int = 1,
          postgres_url: str | None = None, timeout: float = START_TIMEOUT,
          progress: Callable[[str], None] = print) -> ClusterState:
    """Start Redis, a fresh metadata database, Airflow's components and ``workers`` workers."""
    home = (home or default_home()).resolve()
    old = read_state(home)
    if old and any(_group_alive(g) for g in old.groups.values()):
        raise ClusterError(f"A cluster is already running from {home} at {old.url}: "
                           "`python -m course cluster stop` first.")
    if not shutil.which("redis-server"):
        raise ClusterError("Redis is not installed; the CeleryExecutor needs it as its broker. "
                           "Install it: `sudo apt-get install redis-server` (Debian/Ubuntu).")
    postgres_url = postgres_url or os.environ.get(POSTGRES_ENV)
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    home.chmod(0o700)
    database_url, _ = _postgres_database(postgres_url)
    api_port = free_port(18280)
    redis_port = free_port(16379, taken={api_port})
    state = ClusterState(str(home), api_port, redis_port, database_url, secrets.token_urlsafe(12))
    write_config(home, api_port, redis_port, database_url, concurrency, state.password)
    (home / "cluster.json").write_text(json.dumps(asdict(state)))
    try:
        progress(f"Redis on 127.0.0.1:{redis_port} (nothing kept on disk) ...")
        log = home / "logs" / "redis.log"
        redis = _spawn(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                        "--save", "", "--appendonly", "no", "--dir", str(home)], log, _env(home))
        state.groups["redis"] = redis.pid
        (home / "cluster.json").write_text(json.dumps(asdict(state)))
        _wait(f"Redis on 127.0.0.1:{redis_port}", lambda: _redis_answers(redis_port), 30, log, redis)

        progress(f"Airflow's metadata database {_masked(database_url)} ...")
        log = home / "logs" / "db-migrate.log"
        migrate = _spawn([str(airflow_bin()), "db", "migrate"], log, _env(home))
        try:
            code = migrate.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(migrate.pid, signal.SIGKILL)
            raise ClusterError(f"`airflow db migrate` did not finish within {timeout:.0f} s. "
                               f"Its log: {log}") from None
        if code:
            raise ClusterError(f"`airflow db migrate` failed (code {code}). Its log: {log}")
        shutil.copy(DAG_FILE, home / "dags" / DAG_FILE.name)

        procs = {}
        for name, argv in [("api_server", ["api-server", "--port", str(api_port)]),
                           ("scheduler", ["scheduler"]), ("dag_processor", ["dag-processor"])]:
            procs[name] = _spawn([str(airflow_bin()), *argv], home / "logs" / f"{name}.log", _env(home))
            state.groups[name] = procs[name].pid
        for n in range(1, workers + 1):
            worker = f"worker{n}"
            folder = grader_dir(home, worker)
            folder.mkdir(parents=True, mode=0o700)
            procs[worker] = _spawn([str(airflow_bin()), "celery", "worker", "--concurrency",
                                    str(concurrency), "--celery-hostname", f"{worker}@%h",
                                    "--skip-serve-logs",
                                    # nothing of the cluster listens to other workers' events
                                    "--without-gossip", "--without-mingle"],
                                   home / "logs" / f"{worker}.log",
                                   _env(home, worker))
            (folder / "worker.pid").write_text(str(procs[worker].pid))
            state.groups[worker] = procs[worker].pid
            state.workers.append(worker)
        (home / "cluster.json").write_text(json.dumps(asdict(state)))
        progress(f"api-server, scheduler, dag-processor and {workers} Celery worker(s) "
                 f"(concurrency {concurrency}) ...")
        deadline = time.monotonic() + timeout
        _wait(f"Airflow's api-server on {state.url}", lambda: _api_answers(state),
              max(1.0, deadline - time.monotonic()), home / "logs" / "api_server.log", procs["api_server"])
        warm_execution_api(state.api_port)
        for worker in state.workers:
            log = home / "logs" / f"{worker}.log"
            _wait(f"Celery worker {worker}", lambda log=log: b" ready." in log.read_bytes(),
                  max(1.0, deadline - time.monotonic()), log, procs[worker])
        progress("A warm grader beside each worker ...")
        starters = {worker: _spawn([sys.executable, "-c", "from autograder.service import host_grader; "
                                    "raise SystemExit(host_grader() is None)"],
                                   home / "logs" / f"{worker}-grader.log", _env(home, worker))
                    for worker in state.workers}
        client = Client(state)
        _wait("the grade_class DAG in the dag-processor", lambda: _dag_known(client),
              max(1.0, deadline - time.monotonic()), home / "logs" / "dag_processor.log",
              procs["dag_processor"])
        for worker, starter in starters.items():
            log = home / "logs" / f"{worker}-grader.log"
            try:
                code = starter.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise ClusterError(f"{worker}'s warm grader did not start within {timeout:.0f} s. "
                                   f"Its log: {log}") from None
            if code:  # the tasks on that worker start it, or grade without it
                progress(f"{worker}'s warm grader did not start; its log: {log}")
    except BaseException:
        stop(home, quiet=True)
        raise
    return state


def _api_answers(state: ClusterState) -> bool:
    try:
        return httpx.get(f"{state.url}/api/v2/monitor/health", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def _dag_known(client: Client) -> bool:
    try:
        client.dag("grade_class")
        return True
    except lab.ApiError:
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        os.waitpid(pgid, os.WNOHANG)
    except ChildProcessError:
        pass
    members = [p for p in psutil.process_iter(["status"]) if _pgid(p) == pgid]
    return any(p.info["status"] != psutil.STATUS_ZOMBIE for p in members)


def _pgid(proc: psutil.Process) -> int | None:
    try:
        return os.getpgid(proc.pid)
    except OSError:
        return None


def processes(home: Path, worker: str | None = None) -> list[psutil.Process]:
    """Live processes of the cluster in ``home`` (of one worker only, with ``worker``): the
    components, the tasks they run and the graders those tasks started."""
    found = []
    for proc in psutil.process_iter(["environ", "status"]):
        env = proc.info["environ"] or {}
        if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if env.get("AIRFLOW_HOME") == str(home) and (worker is None or env.get(WORKER_ENV) == worker):
            found.append(proc)
    return found


def _tree(pid: int) -> list[psutil.Process]:
    """The process ``pid`` and all its descendants (tasks put themselves in groups of their own)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def worker_processes(home: Path, worker: str) -> list[psutil.Process]:
    """Everything ``worker`` runs: the worker, its tasks and the grader they started (with its
    sandboxes). Found by the process tree: Airflow's tasks rename themselves (setproctitle), which
    hides the environment they were started with."""
    state = read_state(home)
    procs = _tree(state.groups[worker]) if state and worker in state.groups else []
    try:
        procs += _tree(int((grader_dir(home, worker) / "grader.pid").read_text()))
    except (OSError, ValueError):
        pass
    return [p for p in procs if p.pid != os.getpid()]


def _kill(procs: list[psutil.Process]) -> None:
    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=10)


def kill_worker(home: Path, worker: str) -> int:
    """SIGKILL everything ``worker`` runs (as if its machine died); the number of processes."""
    procs = worker_processes(home, worker)
    _kill(procs)
    return len(procs)


def stop(home: Path | None = None, quiet: bool = False) -> None:
    """End every process of the cluster (SIGTERM, then SIGKILL), drop its database."""
    home = (home or default_home()).resolve()
    state = read_state(home)
    if state is None:
        if not quiet:
            print(f"No cluster recorded in {home}: nothing to stop.")
        return
    from autograder import service

    for worker in state.workers:
        sock = grader_dir(home, worker) / "grader.sock"
        if service.answers(sock):
            service.stop(sock, timeout=STOP_TIMEOUT)
    # Tasks and graders are in process groups of their own: found through the workers' trees.
    strays = [p for w in state.workers for p in worker_processes(home, w)[1:]]
    # Workers first (they finish nothing new), the broker once they are gone.
    deadline = time.monotonic() + STOP_TIMEOUT
    for last in (False, True):
        groups = [g for name, g in state.groups.items() if (name == "redis") == last]
        for pgid in groups:
            try:
                os.killpg(pgid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        while any(_group_alive(g) for g in groups) and time.monotonic() < deadline:
            time.sleep(0.3)
    for pgid in state.groups.values():
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    _kill(strays + processes(home))
    still = [p.pid for p in processes(home) + [p for p in strays if _running(p)]]
    if still:
        raise ClusterError(f"Processes of the cluster in {home} outlived SIGKILL: {still}")
    _drop_database(state.database_url)
    (home / "cluster.json").unlink(missing_ok=True)
    if not quiet:
        print(f"Cluster stopped: no process left, database {urlsplit(state.database_url).path[1:]} "
              "dropped.")


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def status(home: Path | None = None) -> str:
    home = (home or default_home()).resolve()
    state = read_state(home)
    if state is None:
        return "Cluster: stopped. Start it with `python -m course cluster start --workers 2`."
    lines = [f"Cluster: {state.url} (admin password in {home / 'passwords.json'})"]
    for name, pgid in state.groups.items():
        lines.append(f"  {name:<14}{'running' if _group_alive(pgid) else 'not running'}")
    return "\n".join(lines)


class Client(lab.Client):
    """The REST API of the cluster's api-server, with the lab client's methods."""

    def __init__(self, state: ClusterState, timeout: float = 30.0) -> None:
        self.state = state
        self.url = state.url
        self._http = httpx.Client(base_url=self.url, timeout=timeout)
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            reply = self._http.post("/auth/token", json={"username": "admin",
                                                         "password": self.state.password})
            reply.raise_for_status()
            self._token = reply.json()["access_token"]
        return self._token
