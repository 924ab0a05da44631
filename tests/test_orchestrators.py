"""Prefect and Dagster beside the lab: their own locked environment, their kernel, their servers.

The fast tests read the lock files, the kernel spec and the toolkit's settings. The slow ones start
`prefect server start` and `dagster dev` in a temporary lab home, on a preferred port that is taken,
and check that stopping them leaves no process behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import tomllib
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from course import engine, orchestrators
from course.orchestrators import OrchestratorError
from course.paths import LabPaths

REPO = Path(__file__).resolve().parent.parent
KERNEL = REPO / ".venv" / "share" / "jupyter" / "kernels" / "orchestrators" / "kernel.json"
DEFINITIONS = '''\
import dagster as dg


@dg.asset
def numbers() -> list[int]:
    return [1, 2, 3]


defs = dg.Definitions(assets=[numbers])
'''


def locked(lock_file: Path) -> dict[str, list[str]]:
    """Package name -> its locked versions (one per Python range, when the lock forks)."""
    versions: dict[str, list[str]] = {}
    for package in tomllib.loads(lock_file.read_text())["package"]:
        versions.setdefault(package["name"], []).append(package.get("version", ""))
    return versions


def as_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:3])


# --- fast ------------------------------------------------------------------------------------

def test_orchestrators_lock_pins_prefect_3_and_dagster_and_airflows_lock_has_neither():
    ours, airflows = locked(REPO / "orchestrators" / "uv.lock"), locked(REPO / "uv.lock")
    for name in ("prefect", "dagster", "dagster-webserver", "ipykernel", "pandas"):
        assert ours.get(name), f"orchestrators/uv.lock does not pin {name}"
    assert all(v.startswith("3.") for v in ours["prefect"]), ours["prefect"]
    assert not {"prefect", "dagster"} & set(airflows), "Prefect or Dagster crept into Airflow's uv.lock"
    # Why two environments: Prefect's FastAPI is newer than Airflow 3.3 accepts (< 0.137).
    assert max(as_tuple(v) for v in ours["fastapi"]) >= (0, 139), ours["fastapi"]
    assert max(as_tuple(v) for v in airflows["fastapi"]) < (0, 137), airflows["fastapi"]


def test_environment_orchestrators_yml_pins_exactly_the_lock():
    lock = tomllib.loads((REPO / "orchestrators" / "uv.lock").read_text())
    pins = {(p["name"], p["version"]) for p in lock["package"] if p["name"] != "airflow-course-orchestrators"}
    env = yaml.safe_load((REPO / "environment-orchestrators.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pinned = {tuple(entry.split(";")[0].strip().split("==")) for entry in pip_section}
    assert env["name"] == "airflow-course-orchestrators"
    assert pinned == pins


def test_make_setup_registers_the_kernel_in_the_labs_jupyter_data_dir():
    spec = json.loads(KERNEL.read_text())
    assert spec["argv"][0] == str(orchestrators.ENV_DIR / "bin" / "python"), spec["argv"]
    assert spec["display_name"] == "Python 3 (Prefect + Dagster)"
    assert spec["env"] == {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    assert not (Path.home() / ".local" / "share" / "jupyter" / "kernels" / "orchestrators").exists()


def test_the_notebook_says_which_kernel_to_pick_when_run_in_another():
    with pytest.raises(OrchestratorError, match=r'needs the kernel "Python 3 \(Prefect \+ Dagster\)"'):
        orchestrators.check_kernel()  # this test runs in Airflow's .venv


def test_settings_keep_state_in_the_lab_home_with_telemetry_off(tmp_path, monkeypatch):
    paths = LabPaths.default(tmp_path)
    for key in orchestrators.settings(paths):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    values = orchestrators.configure(paths)
    assert values["PREFECT_HOME"] == str(tmp_path / "prefect")
    assert values["DAGSTER_HOME"] == str(tmp_path / "dagster")
    assert values["DO_NOT_TRACK"] == "1" and values["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert "PREFECT_API_URL" not in values, "no server runs, so Prefect must not be pointed at one"
    assert os.environ["DAGSTER_HOME"] == str(tmp_path / "dagster")
    dagster_yaml = yaml.safe_load((tmp_path / "dagster" / "dagster.yaml").read_text())
    assert dagster_yaml == {"telemetry": {"enabled": False}}, dagster_yaml


def test_start_says_what_is_missing(tmp_path, monkeypatch):
    paths = LabPaths.default(tmp_path)
    with pytest.raises(ValueError, match="choose one of prefect, dagster"):
        orchestrators.start("airflow", paths)
    with pytest.raises(OrchestratorError, match=f"No Dagster definitions file in {paths.dagster_code}"):
        orchestrators.start("dagster", paths)
    monkeypatch.setattr(orchestrators, "ENV_DIR", tmp_path / "nowhere")
    with pytest.raises(OrchestratorError, match="Run `make setup`"):
        orchestrators.start("prefect", paths)
    assert "stopped. Start it with `orchestrators.start(\"prefect\")`" in orchestrators.status(paths)


# --- slow: the servers ---------------------------------------------------------------------------

@pytest.fixture()
def home(tmp_path: Path):
    paths = LabPaths.default(tmp_path / "home")
    paths.dagster_code.mkdir(parents=True)
    yield paths
    orchestrators.stop(paths=paths, quiet=True)


@pytest.mark.slow
def test_both_servers_start_on_free_ports_answer_and_stop_without_orphans(home):
    taken = engine.free_port(24400)
    (home.dagster_code / "numbers.py").write_text(DEFINITIONS)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        started = time.monotonic()
        prefect = orchestrators.start("prefect", home, port=taken, progress=lambda *_: None)
        prefect_took = time.monotonic() - started
        started = time.monotonic()
        dagster = orchestrators.start("dagster", home, port=taken, progress=lambda *_: None)
        dagster_took = time.monotonic() - started
    print(f"prefect server start: {prefect_took:.1f} s, dagster dev: {dagster_took:.1f} s")
    assert len({taken, prefect.port, dagster.port}) == 3, (taken, prefect.port, dagster.port)
    assert httpx.get(f"{prefect.api_url}/health", timeout=10).json() is True
    assert os.environ["PREFECT_API_URL"] == prefect.api_url
    locations = orchestrators.dagster_graphql(orchestrators.WORKSPACE_QUERY, paths=home)
    assert [e["name"] for e in locations["workspaceOrError"]["locationEntries"]] == ["numbers.py"]

    procs = orchestrators.processes(home)
    assert len(procs) >= 4, [p.info for p in procs]  # prefect; dagster dev, webserver, daemon, code server
    for proc in procs:  # telemetry off in every one, and state in the lab's home
        env = proc.info["environ"]
        assert env["DO_NOT_TRACK"] == "1" and env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false", env
        assert env["DAGSTER_HOME"] == str(home.dagster_home) and env["PREFECT_HOME"] == str(home.prefect_home)
    status = orchestrators.status(home)
    assert f"Prefect server: running at {prefect.url} (answers)" in status, status
    assert f"Dagster UI: running at {dagster.url} (answers)" in status, status
    again = orchestrators.start("prefect", home, progress=lambda *_: None)
    assert again.pgid == prefect.pgid, "a second start restarted a healthy server"

    # A process that left the group (as a crashed parent's child may) still goes with stop().
    loner = psutil.Popen(["sleep", "60"], start_new_session=True,
                         env={**os.environ, orchestrators.MARKER: f"{home.home}#dagster"})
    started = time.monotonic()
    assert orchestrators.stop(paths=home, quiet=True)
    print(f"stop: {time.monotonic() - started:.1f} s")
    assert not orchestrators.processes(home), [p.info for p in orchestrators.processes(home)]
    assert not loner.is_running() or loner.status() == psutil.STATUS_ZOMBIE
    assert orchestrators.running(home) == {} and not home.orchestrators_state.exists()
    assert engine.port_is_free(prefect.port) and engine.port_is_free(dagster.port)


@pytest.mark.slow
def test_a_definitions_file_that_does_not_load_is_reported_with_its_error(home):
    broken = "import dagster as dg\n\ndefs = dg.Definitions(assets=[nothing])\n"  # a NameError
    (home.dagster_code / "broken.py").write_text(broken)
    with pytest.raises(OrchestratorError, match=r"Dagster could not load broken\.py: .*nothing"):
        orchestrators.start("dagster", home, progress=lambda *_: None)
    assert not orchestrators.processes(home), "a failed start left processes behind"


@pytest.mark.slow
def test_a_start_that_runs_out_of_time_says_what_it_waited_for_and_cleans_up(home):
    with pytest.raises(OrchestratorError, match=r"within 1 s \(waited for its /api/health to answer true\)"):
        orchestrators.start("prefect", home, timeout=1, progress=lambda *_: None)
    assert not orchestrators.processes(home), "a timed-out start left processes behind"
    assert orchestrators.running(home) == {}


@pytest.mark.slow
def test_a_server_killed_hard_is_restarted_by_the_next_start(home):
    first = orchestrators.start("prefect", home, progress=lambda *_: None)
    os.killpg(first.pgid, signal.SIGKILL)
    second = orchestrators.start("prefect", home, progress=lambda *_: None)
    assert second.pgid != first.pgid
    assert httpx.get(f"{second.api_url}/health", timeout=10).json() is True
