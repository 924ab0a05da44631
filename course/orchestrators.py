"""Prefect's server and Dagster's UI beside the Airflow lab, for the comparison lesson.

    from course import orchestrators
    orchestrators.start("prefect")   # `prefect server start`; sets PREFECT_API_URL for this process
    orchestrators.start("dagster")   # `dagster dev` on every definitions file in paths.dagster_code
    orchestrators.stop()             # both, with every process they started

Prefect 3 and Dagster live in a second environment, ``.venv-orchestrators`` (they need a newer
FastAPI than Airflow allows). This module only runs their command-line programs and talks HTTP to
them, so it works from that environment's kernel and from Airflow's ``.venv`` alike. Each server
runs in a process group of its own, recorded in ``orchestrators.json`` in the lab's home, and every
process it starts carries a marker in its environment, so that ``stop`` ends them all. Their state
(Prefect's database, Dagster's runs) lives in the lab's home too, with telemetry off.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import psutil

from course.engine import LabError, free_port
from course.paths import HOME_ENV, LabPaths

ENV_DIR = Path(__file__).resolve().parent.parent / ".venv-orchestrators"
NAMES = ("prefect", "dagster")
TITLES = {"prefect": "Prefect server", "dagster": "Dagster UI"}
DEFAULT_PORTS = {"prefect": 4200, "dagster": 3000}
PORT_ENV = {"prefect": "COURSE_PREFECT_PORT", "dagster": "COURSE_DAGSTER_PORT"}
KERNEL_NAME = "Python 3 (Prefect + Dagster)"  # as `make setup` registers it
START_TIMEOUT = 120.0
STOP_TIMEOUT = 20.0
# In the environment of every process a server starts: how `stop` finds stragglers.
MARKER = "COURSE_ORCHESTRATOR"
DAGSTER_YAML = """\
# Written by the course toolkit (course/orchestrators.py) at every start; edits are replaced.
telemetry:
  enabled: false
"""
WORKSPACE_QUERY = """{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message causes { message stack } } } } }
  ... on PythonError { message } } }"""


class OrchestratorError(LabError):
    """Prefect or Dagster could not do what was asked; the message says why and what to do."""


@dataclass
class Service:
    """What ``start`` recorded about one running server."""

    name: str
    port: int
    pgid: int
    log: str
    files: list[str] = field(default_factory=list)  # Dagster: the definitions files it loaded
    started_at: float = field(default_factory=time.time)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """Prefect: the value of PREFECT_API_URL; Dagster: its GraphQL endpoint."""
        return f"{self.url}/api" if self.name == "prefect" else f"{self.url}/graphql"


def settings(paths: LabPaths) -> dict[str, str]:
    """The environment variables that point Prefect and Dagster at this lab, telemetry off."""
    return {
        "PREFECT_HOME": str(paths.prefect_home),
        "DAGSTER_HOME": str(paths.dagster_home),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # Without the lab's server, a flow starts a temporary one; on two cores it needs more than 20 s.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        # A new deployment's scheduled runs appear within seconds rather than a minute.
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
        "PREFECT_LOGGING_COLORS": "false",
    }


def read_state(paths: LabPaths) -> dict[str, Service]:
    try:
        data = json.loads(paths.orchestrators_state.read_text())
        return {name: Service(**entry) for name, entry in data.items() if name in NAMES}
    except (OSError, ValueError, TypeError):
        return {}


def _write_state(paths: LabPaths, services: dict[str, Service]) -> None:
    if services:
        paths.orchestrators_state.write_text(json.dumps({n: asdict(s) for n, s in services.items()}))
    elif paths.orchestrators_state.exists():
        paths.orchestrators_state.unlink()


def configure(paths: LabPaths | None = None) -> dict[str, str]:
    """Point this process's Prefect and Dagster at the lab: call it before importing either.

    Sets the variables of ``settings`` in ``os.environ``, and PREFECT_API_URL when the lab's
    Prefect server runs; writes Dagster's ``dagster.yaml`` (telemetry off). Returns what it set.
    """
    paths = paths or LabPaths.default()
    values = settings(paths)
    prefect = running(paths).get("prefect")
    if prefect:
        values["PREFECT_API_URL"] = prefect.api_url
    os.environ.update(values)
    for folder in (paths.prefect_home, paths.prefect_code, paths.dagster_home, paths.dagster_code,
                   paths.logs):
        folder.mkdir(parents=True, exist_ok=True)
    (paths.dagster_home / "dagster.yaml").write_text(DAGSTER_YAML)
    _warn_if_prefect_was_imported(values.get("PREFECT_API_URL"))
    return values


def _warn_if_prefect_was_imported(api_url: str | None) -> None:
    """Prefect reads its settings when imported: a server started later is not seen."""
    if "prefect" not in sys.modules or api_url is None:
        return
    from prefect.settings import PREFECT_API_URL  # noqa: PLC0415 - only when already imported

    if PREFECT_API_URL.value() != api_url:
        print(f"Prefect was imported before its server ran at {api_url}: restart the kernel "
              "(Kernel → Restart Kernel) and run the notebook from the top.")


def check_kernel() -> None:
    """Raise, saying what to do, unless this Python is the Prefect + Dagster environment."""
    if Path(sys.prefix).resolve() != ENV_DIR.resolve():
        raise OrchestratorError(
            f"This notebook needs the kernel \"{KERNEL_NAME}\", not {sys.prefix}: pick it with Kernel → "
            "Change Kernel (top right in JupyterLab), then run the notebook from the top. No such "
            "kernel in the list? Run `make setup` in the course folder and reload the page.")


def binary(name: str) -> Path:
    """The ``prefect`` or ``dagster`` program of the orchestrators environment."""
    path = ENV_DIR / "bin" / name
    if not path.exists():
        raise OrchestratorError(f"{path} is missing: the Prefect and Dagster environment is not "
                                "built. Run `make setup` in the course folder, then try again.")
    return path


def _service_env(paths: LabPaths, name: str, port: int) -> dict[str, str]:
    env = {**os.environ, **settings(paths)}
    env.pop("PREFECT_API_URL", None)  # the server is the API; a client setting must not confuse it
    # Prefect's UI asks the API at this address; it would assume port 4200 otherwise.
    env["PREFECT_UI_API_URL"] = f"http://127.0.0.1:{port}/api"
    env["PREFECT_SERVER_API_HOST"], env["PREFECT_SERVER_API_PORT"] = "127.0.0.1", str(port)
    env["PREFECT_CLI_PROMPT"] = "false"  # `prefect server start` asks about profiles otherwise
    env["PREFECT_CLI_COLORS"] = "false"
    env["PATH"] = f"{ENV_DIR / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(ENV_DIR)
    env.pop("PYTHONHOME", None)
    # Definitions files may use the toolkit (`from course.paths import LabPaths`) and find this lab.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(paths.root), env.get("PYTHONPATH")]))
    env[HOME_ENV] = str(paths.home)
    env[MARKER] = f"{paths.home}#{name}"
    return env


def definitions_files(paths: LabPaths) -> list[Path]:
    """The Dagster definitions files of the lab, in name order."""
    return sorted(p for p in paths.dagster_code.glob("*.py") if not p.name.startswith("_"))


def _argv(name: str, port: int, files: list[Path]) -> list[str]:
    if name == "prefect":
        return [str(binary("prefect")), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    argv = [str(binary("dagster")), "dev", "--host", "127.0.0.1", "--port", str(port)]
    for path in files:
        argv += ["-f", str(path)]
    return argv


def _prefect_ready(service: Service) -> bool:
    try:
        reply = httpx.get(f"{service.api_url}/health", timeout=3)
        return reply.status_code == 200 and reply.json() is True
    except (httpx.HTTPError, ValueError):
        return False


def dagster_graphql(query: str, variables: dict | None = None, paths: LabPaths | None = None,
                    timeout: float = 30.0) -> dict:
    """Ask the lab's Dagster UI a GraphQL question (the API its web pages use); returns ``data``."""
    service = running(paths or LabPaths.default()).get("dagster")
    if service is None:
        raise OrchestratorError("The lab's Dagster UI is not running. Start it with "
                                "`orchestrators.start(\"dagster\")`.")
    reply = httpx.post(service.api_url, json={"query": query, "variables": variables or {}},
                       timeout=timeout)
    body = reply.json()
    if reply.is_error or body.get("errors"):
        raise OrchestratorError(f"Dagster's GraphQL API answered {reply.status_code}: "
                                f"{json.dumps(body.get('errors'))[:500]}")
    return body["data"]


def _dagster_locations(service: Service) -> list[dict] | None:
    """The code locations of a Dagster UI, or None while it does not answer."""
    try:
        reply = httpx.post(service.api_url, json={"query": WORKSPACE_QUERY}, timeout=5)
        body = reply.json()["data"]["workspaceOrError"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None
    return body.get("locationEntries")


def _dagster_ready(service: Service) -> bool:
    """Every code location loaded; a definitions file that does not load raises its error."""
    locations = _dagster_locations(service)
    if not locations or any(entry["loadStatus"] != "LOADED" for entry in locations):
        return False
    for entry in locations:
        error = entry.get("locationOrLoadError") or {}
        if error.get("__typename") == "PythonError":
            # The first error says "could not load"; the last of its causes says why, and where.
            root = (error.get("causes") or [error])[-1]
            where = [line.strip().splitlines()[0] for line in root.get("stack") or []
                     if entry["name"] in line]
            raise OrchestratorError(
                f"Dagster could not load {entry['name']}: {root.get('message', '').strip()}"
                f"{' (' + where[-1] + ')' if where else ''}\n"
                f"Fix the file in {Path(service.files[0]).parent} and run "
                "`orchestrators.start(\"dagster\")` again.")
    return len(locations) == len(service.files)


READY: dict[str, Callable[[Service], bool]] = {"prefect": _prefect_ready, "dagster": _dagster_ready}
WAITS_FOR = {"prefect": "its /api/health to answer true", "dagster": "every code location to load"}


def running(paths: LabPaths | None = None) -> dict[str, Service]:
    """The lab's servers whose process group is alive (whether or not they answer yet)."""
    return {name: s for name, s in read_state(paths or LabPaths.default()).items()
            if _group_alive(s.pgid)}


def _log_tail(path: str | Path, lines: int = 25) -> str:
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log yet)"
    return "\n".join(text[-lines:])


def start(name: str, paths: LabPaths | None = None, port: int | None = None,
          timeout: float = START_TIMEOUT, progress: Callable[[str], object] = print) -> Service:
    """Start Prefect's server or Dagster's UI (a no-op when it runs) and wait until it answers.

    ``port`` is the preferred port (default ``$COURSE_PREFECT_PORT`` or 4200, ``$COURSE_DAGSTER_PORT``
    or 3000); when it is taken the next free one is used. Dagster loads every definitions file in
    ``paths.dagster_code``; when it already runs with the same files it reloads them instead.
    """
    if name not in NAMES:
        raise ValueError(f"start({name!r}): choose one of {', '.join(NAMES)}")
    paths = paths or LabPaths.default()
    configure(paths)
    files = definitions_files(paths) if name == "dagster" else []
    if name == "dagster" and not files:
        raise OrchestratorError(f"No Dagster definitions file in {paths.dagster_code}: write one "
                                "there first (notebook 15 does), then start Dagster.")
    current = running(paths).get(name)
    if current and READY[name](current) and current.files == [str(f) for f in files]:
        if name == "dagster":
            _reload_dagster(current, timeout)
        progress(report(current))
        configure(paths)
        return current
    stop(name, paths, quiet=True)  # leftovers of an earlier start go first

    preferred = port or int(os.environ.get(PORT_ENV[name], DEFAULT_PORTS[name]))
    taken = {s.port for s in running(paths).values()}
    chosen = free_port(preferred, taken=taken)
    if chosen != preferred:
        progress(f"Port {preferred} is taken; {TITLES[name]} uses port {chosen}.")
    log = paths.logs / f"{name}.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(_argv(name, chosen, files), stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=_service_env(paths, name, chosen),
                                   cwd=paths.home, start_new_session=True)
    service = Service(name=name, port=chosen, pgid=process.pid, log=str(log),
                      files=[str(f) for f in files])
    _write_state(paths, {**read_state(paths), name: service})
    progress(f"Starting {TITLES[name]} on {service.url} (log: {log}) ...")
    began = time.monotonic()
    deadline = began + timeout
    try:
        while not READY[name](service):
            if process.poll() is not None:
                raise OrchestratorError(f"{TITLES[name]} exited with code {process.returncode} while "
                                        f"starting. Last lines of {log}:\n{_log_tail(log)}")
            if time.monotonic() > deadline:
                raise OrchestratorError(
                    f"{TITLES[name]} did not answer on {service.url} within {timeout:.0f} s "
                    f"(waited for {WAITS_FOR[name]}). "
                    f"Last lines of {log}:\n{_log_tail(log)}\nStart it again; on a busy machine "
                    "give it longer with `timeout=`.")
            time.sleep(0.5)
    except BaseException:
        stop(name, paths, quiet=True)
        raise
    configure(paths)
    progress(f"{report(service)} (ready in {time.monotonic() - began:.0f} s)")
    return service


def _reload_dagster(service: Service, timeout: float) -> None:
    """Re-read every definitions file, as the UI's Reload button does, and wait until loaded."""
    mutation = """mutation($name: String!) { reloadRepositoryLocation(repositoryLocationName: $name) {
      __typename ... on PythonError { message } } }"""
    for entry in _dagster_locations(service) or []:
        reply = httpx.post(service.api_url, json={"query": mutation, "variables": {"name": entry["name"]}},
                           timeout=timeout)
        reply.raise_for_status()
    deadline = time.monotonic() + timeout
    while not _dagster_ready(service):
        if time.monotonic() > deadline:
            raise OrchestratorError(f"Dagster did not reload {', '.join(service.files)} within "
                                    f"{timeout:.0f} s. Look at {service.log}.")
        time.sleep(0.5)


def report(service: Service | None, name: str = "") -> str:
    """One line for a notebook or terminal."""
    if service is None:
        return (f"{TITLES.get(name, name)}: stopped. Start it with `orchestrators.start(\"{name}\")` "
                f"or `python -m course orchestrators start {name}`.")
    return f"{TITLES[service.name]}: running at {service.url}"


def status(paths: LabPaths | None = None) -> str:
    """A few lines: each server, where it answers, and its log."""
    paths = paths or LabPaths.default()
    alive = running(paths)
    lines = []
    for name in NAMES:
        service = alive.get(name)
        line = report(service, name)
        if service:
            line += " (answers)" if READY[name](service) else " (starting, or not answering)"
            line += f"\n  log: {service.log}"
        lines.append(line)
    return "\n".join(lines)


def stop(name: str | None = None, paths: LabPaths | None = None, timeout: float = STOP_TIMEOUT,
         quiet: bool = False) -> bool:
    """Stop one server (or both) with every process it started. True when something ran."""
    paths = paths or LabPaths.default()
    names = [name] if name else list(NAMES)
    state = read_state(paths)
    groups = [state[n].pgid for n in names if n in state]
    found = False
    for pgid in groups:
        if _group_alive(pgid):
            found = True
            _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_group_alive(g) for g in groups) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pgid in groups:
        if _group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)
    # Processes that left the group (a code server that started its own session) go too.
    stragglers = processes(paths, names)
    for proc in stragglers:
        found = True
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(stragglers, timeout=5)
    _write_state(paths, {n: s for n, s in read_state(paths).items() if n not in names})
    if not quiet:
        titles = " and ".join(TITLES[n] for n in names)
        print(f"{titles} stopped." if found else f"{titles}: not running.")
    return found


def processes(paths: LabPaths, names: tuple[str, ...] | list[str] = NAMES) -> list[psutil.Process]:
    """Every live process that one of this lab's servers started (found by its marker)."""
    wanted = {f"{paths.home}#{n}" for n in names}
    found = []
    for proc in psutil.process_iter(["environ", "status"]):
        env = proc.info["environ"] or {}
        if env.get(MARKER) in wanted and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


def _group_alive(pgid: int) -> bool:
    try:
        os.waitpid(pgid, os.WNOHANG)  # collect our own exited child, or it lingers as a zombie
    except ChildProcessError:
        pass
    members = [p for p in psutil.process_iter(["status"]) if _pgid(p) == pgid]
    return any(p.info["status"] != psutil.STATUS_ZOMBIE for p in members)


def _pgid(proc: psutil.Process) -> int | None:
    try:
        return os.getpgid(proc.pid)
    except OSError:
        return None


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
