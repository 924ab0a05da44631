"""The embedded lab for real: start, deploy, run, logs, mail, crash recovery, clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from course import engine, lab

pytestmark = pytest.mark.slow

HELLO = textwrap.dedent('''\
    """Hello world for the lab tests."""
    import pendulum
    from airflow.providers.smtp.operators.smtp import EmailOperator
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG, task

    with DAG(dag_id="lab_hello", schedule=None, catchup=False,
             start_date=pendulum.datetime(2023, 10, 1, tz="UTC")) as dag:
        hello = BashOperator(task_id="say_hello", bash_command='echo "Hello from Airflow!"')

        @task
        def count_rows():
            from airflow.sdk import BaseHook
            hook = BaseHook.get_connection("warehouse").get_hook()
            hook.run("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
            return {"rows": 3}

        mail = EmailOperator(task_id="notify", to="team@company.com", subject="Lab test ok",
                             html_content="<b>done</b>")
        hello >> count_rows() >> mail
    ''')

BROKEN = textwrap.dedent('''\
    import pendulum
    from airflow.sdk import DAG

    with DAG(dag_id="lab_broken", start_date=pendulum.datetime(2023, 10, 1, tz="UTC"),
             schedule_interval="@daily"):
        pass
    ''')


def test_lab_steps_around_a_taken_port(lab_home, squatted_port):
    status = engine.status(lab_home)
    assert status.running
    state = engine.read_state(lab_home)
    assert state.port != squatted_port
    assert status.url == f"http://127.0.0.1:{state.port}"
    assert f"execution_api_server_url = http://127.0.0.1:{state.port}/execution/" in \
        lab_home.config_file.read_text()
    assert set(status.components.values()) == {"healthy"}


def test_second_start_is_a_no_op(lab_home):
    before = engine.read_state(lab_home)
    engine.start(lab_home, progress=lambda *_: None)
    assert engine.read_state(lab_home) == before


def test_deploy_trigger_logs_xcom_and_mail(lab_home):
    dag_id = lab.deploy_dag("lab_hello.py", HELLO)
    assert dag_id == "lab_hello"
    run = lab.run_dag(dag_id, timeout=120)
    states = lab.task_states(dag_id, run["dag_run_id"])
    assert run["state"] == "success", states
    assert states == {"say_hello": "success", "count_rows": "success", "notify": "success"}
    assert "Hello from Airflow!" in lab.task_log(dag_id, run["dag_run_id"], "say_hello")
    assert lab.xcom(dag_id, run["dag_run_id"], "count_rows") == {"rows": 3}
    assert [m.subject for m in lab.mail()][-1] == "Lab test ok"
    assert lab_home.warehouse.exists()


def test_deploy_reports_an_import_error_with_its_line(lab_home):
    with pytest.raises(lab.DagImportError) as err:
        lab.deploy_dag("lab_broken.py", BROKEN)
    assert "schedule_interval" in str(err.value)
    assert "lab_broken.py, line 4" in str(err.value)


def test_cli_status_and_mail(lab_home):
    env = {**os.environ}
    out = subprocess.run([sys.executable, "-m", "course", "airflow", "status"], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert "running at http://127.0.0.1:" in out
    assert "scheduler     healthy" in out
    assert str(lab_home.password_file) in out
    out = subprocess.run([sys.executable, "-m", "course", "mail"], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert "Lab test ok" in out


def test_the_lab_is_plain_airflow_standalone_and_its_components(lab_home):
    leader = psutil.Process(engine.read_state(lab_home).airflow_pgid)
    assert leader.cmdline()[1:] == [str(engine.airflow_bin()), "standalone"]
    started = {" ".join(p.cmdline()).strip() for p in leader.children()}
    api_server = {c for c in started if c.startswith("airflow api_server -- host:127.0.0.1 port:")}
    airflow = f"{sys.executable} {engine.airflow_bin()}"
    assert started - api_server == {f"{airflow} {c}" for c in ("scheduler", "dag-processor", "triggerer")}
    assert len(api_server) == 1, started


def test_start_recovers_after_the_scheduler_is_killed(lab_home):
    state = engine.read_state(lab_home)
    scheduler = next(p for p in engine.lab_processes(lab_home) if "scheduler" in " ".join(p.info["cmdline"])
                     and os.getpgid(p.pid) == state.airflow_pgid)
    scheduler.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while scheduler.is_running() and scheduler.status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the scheduler survived SIGKILL for 10 s"
        time.sleep(0.1)
    assert engine.status(lab_home).components["scheduler"] == "not running"
    engine.start(lab_home, progress=lambda *_: None)
    assert set(engine.status(lab_home).components.values()) == {"healthy"}
    run = lab.run_dag("lab_hello", timeout=120)
    assert run["state"] == "success"


def test_start_recovers_after_the_whole_lab_is_killed(lab_home):
    state = engine.read_state(lab_home)
    os.kill(state.airflow_pgid, signal.SIGKILL)  # the parent only: its children stay behind
    time.sleep(0.5)
    # Its components still run and still answer, but without their parent they are no lab.
    orphaned = engine.status(lab_home)
    assert orphaned.components["scheduler"] == "not running"
    assert "`make airflow-start` restarts the lab" in orphaned.report()
    engine.start(lab_home, progress=lambda *_: None)
    new = engine.read_state(lab_home)
    assert new.airflow_pgid != state.airflow_pgid, "start kept the lab whose parent was killed"
    assert set(engine.status(lab_home).components.values()) == {"healthy"}
    pgids = {os.getpgid(p.pid) for p in engine.lab_processes(lab_home)}
    assert pgids == {new.airflow_pgid, new.smtp_pgid}, "processes of the killed lab survived"
    run = lab.run_dag("lab_hello", timeout=120)
    assert run["state"] == "success"


def test_stop_leaves_no_process_and_is_idempotent(lab_home):
    assert engine.stop(lab_home, quiet=True) is True
    assert engine.lab_processes(lab_home) == []
    assert not engine.status(lab_home).running
    assert engine.stop(lab_home, quiet=True) is False
