"""The lab toolkit without a running Airflow: config, ports, logs, mail, environment files."""

from __future__ import annotations

import configparser
import json
import os
import mailbox
import socket
import subprocess
import sys
import time
import tomllib
from email.message import EmailMessage
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from course import engine, lab
from course.lab import describe_import_error, log_to_text
from course.mail import read_mail
from course.paths import LabPaths

REPO = Path(__file__).resolve().parent.parent


def test_free_port_steps_over_a_taken_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        assert not engine.port_is_free(taken)
        assert engine.free_port(taken) > taken


def test_config_keeps_execution_api_on_the_lab_port(tmp_path):
    paths = LabPaths(root=REPO, home=tmp_path)
    engine.write_config(paths, port=8091, smtp_port=8026, log_ports=(8801, 8802))
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(paths.config_file)
    assert cfg["core"]["execution_api_server_url"] == "http://127.0.0.1:8091/execution/"
    assert cfg["api"]["port"] == "8091"
    assert cfg["api"]["host"] == "127.0.0.1"
    assert int(cfg["core"]["parallelism"]) <= 4
    assert cfg["core"]["load_examples"] == "False"
    # A task waits longer than Airflow's 5 s for the api-server to mark it running (busy machines).
    assert float(cfg["workers"]["execution_api_timeout"]) >= 30
    listed = json.loads(cfg["dag_processor"]["dag_bundle_config_list"])
    bundles = {b["name"]: b["kwargs"]["path"] for b in listed}
    assert bundles == {"lessons": str(tmp_path / "dags"), "exercises": str(REPO / "exercises")}
    conns = json.loads(paths.connections_file.read_text())
    assert conns["warehouse"] == {"conn_type": "sqlite", "host": str(tmp_path / "warehouse.db")}
    assert conns["smtp_default"]["port"] == 8026
    assert all((paths.mail_dir / sub).is_dir() for sub in ("tmp", "new", "cur"))


def test_config_secret_survives_a_restart(tmp_path):
    paths = LabPaths(root=REPO, home=tmp_path)
    engine.write_config(paths, 8091, 8026, (8801, 8802))
    first = paths.config_file.read_text()
    engine.write_config(paths, 8091, 8026, (8801, 8802))
    assert paths.config_file.read_text() == first


def test_status_of_a_lab_that_never_started(tmp_path):
    status = engine.status(LabPaths(root=REPO, home=tmp_path))
    assert not status.running
    assert "stopped" in status.report()
    assert "make lab" in status.report()


def test_status_report_says_what_is_down_and_what_to_run(tmp_path):
    paths = LabPaths(root=REPO, home=tmp_path)
    components = {"api_server": "healthy", "metadatabase": "healthy", "scheduler": "not running",
                  "dag_processor": "unhealthy", "triggerer": "healthy"}
    report = engine.LabStatus(True, "http://127.0.0.1:8080", components, paths.password_file,
                              "listening on 127.0.0.1:8025", log=paths.airflow_log).report()
    last = report.splitlines()[-1]
    assert last.startswith("Not healthy: scheduler, dag_processor. `make airflow-start` restarts")
    assert str(paths.airflow_log) in last
    healthy = dict.fromkeys(components, "healthy")
    report = engine.LabStatus(True, "http://127.0.0.1:8080", healthy, paths.password_file,
                              "listening on 127.0.0.1:8025", log=paths.airflow_log).report()
    assert "Not healthy" not in report


def test_stop_is_idempotent_when_nothing_runs(tmp_path):
    assert engine.stop(LabPaths(root=REPO, home=tmp_path), quiet=True) is False


def test_component_log_tail_picks_the_component(tmp_path):
    paths = LabPaths(root=REPO, home=tmp_path)
    paths.logs.mkdir()
    paths.airflow_log.write_text("scheduler  | one\ntriggerer  | two\nscheduler  | three\n")
    assert engine.component_log_tail(paths, "scheduler") == "scheduler  | one\nscheduler  | three"


def test_log_records_become_lines():
    text = log_to_text([
        {"event": "::group::Pre Execute"},
        {"timestamp": "2026-01-01T10:00:01.5Z", "level": "info", "event": "Hello from Airflow!"},
        {"timestamp": "2026-01-01T10:00:02Z", "level": "error", "event": "Task failed",
         "error_detail": [{"exc_type": "KeyError"}]},
    ])
    lines = text.splitlines()
    assert lines[0] == "10:00:01 INFO - Hello from Airflow!"
    assert lines[1] == "10:00:02 ERROR - Task failed"
    assert "KeyError" in text and "group" not in text


def test_import_error_names_the_line_of_the_learner_file(tmp_path):
    trace = ('Traceback (most recent call last):\n  File "/x/dags/hello.py", line 7, in <module>\n'
             "    DAG(schedule_interval='@daily')\nTypeError: DAG.__init__() got an unexpected keyword "
             "argument 'schedule_interval'\n")
    message = describe_import_error(trace, tmp_path / "hello.py")
    assert message.startswith("TypeError: DAG.__init__() got an unexpected keyword argument "
                              "'schedule_interval' (hello.py, line 7)")


def test_mail_is_read_back_oldest_first(tmp_path):
    paths = LabPaths(root=REPO, home=tmp_path)
    box = mailbox.Maildir(paths.mail_dir, create=True)
    for n, subject in enumerate(["ETL Success", "Daily report"]):
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "a@b.c", "team@company.com", subject
        msg["Date"] = f"Mon, 02 Oct 2023 0{n}:00:00 +0000"
        msg.set_content(f"body {n}")
        box.add(msg)
    mails = read_mail(paths)
    assert [m.subject for m in mails] == ["ETL Success", "Daily report"]
    assert mails[1].body.strip() == "body 1"
    assert [m.subject for m in read_mail(paths, limit=1)] == ["Daily report"]


def test_environment_yml_pins_exactly_the_lock():
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    locked = {(p["name"], p["version"]) for p in lock["package"] if p["name"] != "airflow-course"}
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pinned = {tuple(entry.split(";")[0].strip().split("==")) for entry in pip_section}
    assert pinned == locked


def test_lab_processes_finds_live_ones_with_their_command_and_skips_ended_ones(tmp_path):
    paths = LabPaths.default(tmp_path / "home")
    env = {**os.environ, "AIRFLOW_HOME": str(paths.home)}
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], env=env)
    ended = subprocess.Popen([sys.executable, "-c", "pass"], env=env)
    while psutil.Process(ended.pid).status() != psutil.STATUS_ZOMBIE:  # ended, not yet reaped
        time.sleep(0.05)
    try:
        found = engine.lab_processes(paths)
        assert [p.pid for p in found] == [sleeper.pid]
        assert found[0].info["cmdline"][-1] == "import time; time.sleep(30)"
    finally:
        sleeper.kill()
        sleeper.wait()
        ended.wait()




def test_port_left_in_time_wait_by_a_stopped_server_counts_as_free():
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the api-server's uvicorn
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first: its end waits in TIME_WAIT
        client.close()
    assert engine.port_is_free(port)


def test_process_title_names_commands_as_a_reader_knows_them():
    scheduler = ["/x/.venv/bin/python", "/x/.venv/bin/airflow", "scheduler"]
    assert lab.process_title(scheduler) == "airflow scheduler"
    renamed = "airflow worker -- LocalExecutor: <idle>"
    assert lab.process_title([renamed]) == renamed
    tracker = ["/usr/bin/python3", "-c", "from multiprocessing.resource_tracker import main;main(7)"]
    assert lab.process_title(tracker) == "python resource tracker"
    assert lab.process_title([]) == ""


def test_wait_for_runs_waits_for_every_date_and_names_them_when_it_gives_up(monkeypatch):
    class Runs:
        def __init__(self):
            self.calls = 0

        def runs(self, dag_id):
            self.calls += 1
            second = "success" if self.calls > 1 else "running"
            return [{"run_type": "scheduled", "logical_date": "2023-10-02T00:00:00Z", "state": second,
                     "run_after": "2023-10-02T00:00:00Z"},
                    {"run_type": "scheduled", "logical_date": "2023-10-01T00:00:00Z", "state": "success",
                     "run_after": "2023-10-01T00:00:00Z"},
                    {"run_type": "manual", "logical_date": "2023-10-03T00:00:00Z", "state": "success",
                     "run_after": "2023-10-03T00:00:00Z"}]

    fake = Runs()
    monkeypatch.setattr(lab, "client", lambda: fake)
    monkeypatch.setattr(lab.time, "sleep", lambda _: None)
    runs = lab.wait_for_runs("d", logical_dates=["2023-10-02", "2023-10-01"])
    assert [r["logical_date"][:10] for r in runs] == ["2023-10-01", "2023-10-02"] and fake.calls == 2
    with pytest.raises(lab.LabTimeout, match=r"d: waited 0 s for finished scheduled runs of the dates "
                                             r"2023-10-01, 2023-10-09; found 1 finished"):
        lab.wait_for_runs("d", logical_dates=["2023-10-01", "2023-10-09"], timeout=0)


def test_wait_for_catchup_waits_until_no_run_is_due_and_every_run_finished(monkeypatch):
    class Catchup:
        def __init__(self):
            self.calls = 0

        def dag(self, dag_id):
            self.calls += 1  # the scheduler makes one run per look, the last one on the third
            next_run = None if self.calls >= 3 else f"2023-10-0{self.calls + 1}T00:00:00Z"
            return {"next_dagrun_run_after": next_run}

        def runs(self, dag_id):
            made = [{"run_type": "scheduled", "logical_date": f"2023-10-0{n}T00:00:00Z", "run_after": "",
                     "state": "success"} for n in range(1, min(self.calls, 2) + 1)]
            if self.calls == 3:
                made[-1]["state"] = "running"
            return made

    fake = Catchup()
    monkeypatch.setattr(lab, "client", lambda: fake)
    monkeypatch.setattr(lab.time, "sleep", lambda _: None)
    runs = lab.wait_for_catchup("d")
    assert fake.calls == 4 and [r["logical_date"][:10] for r in runs] == ["2023-10-01", "2023-10-02"]


def test_an_api_server_that_does_not_answer_is_a_lab_timeout_naming_the_call(monkeypatch):
    client = lab.Client.__new__(lab.Client)
    client.url, client._token = "http://127.0.0.1:1", "token"
    client._http = httpx.Client(base_url=client.url, timeout=2.0,
                                transport=httpx.MockTransport(lambda request: (_ for _ in ()).throw(
                                    httpx.ReadTimeout("timed out", request=request))))
    with pytest.raises(lab.LabTimeout, match=r"GET /api/v2/dags/d/dagRuns/r: the lab's api-server at "
                                             r"http://127.0.0.1:1 did not answer within 2 s"):
        client.get("/dags/d/dagRuns/r")


def test_config_stores_an_edited_dag_at_once_and_waits_for_the_sqlite_lock(tmp_path):
    import importlib

    paths = LabPaths(root=REPO, home=tmp_path)
    engine.write_config(paths, port=8091, smtp_port=8026, log_ports=(8801, 8802))
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(paths.config_file)
    # Airflow's default, 30 s, left an edited DAG's new version unstored for up to half a minute.
    assert cfg["core"]["min_serialized_dag_update_interval"] == "0"
    module, name = cfg["database"]["sql_alchemy_connect_args"].rsplit(".", 1)
    assert getattr(importlib.import_module(module), name) == {"timeout": 15}


def test_config_lets_a_lesson_wait_a_second_not_five_at_each_step(tmp_path):
    """What made the notebooks twice as slow with Airflow's defaults, each step measured on the lab."""
    paths = LabPaths(root=REPO, home=tmp_path)
    engine.write_config(paths, port=8091, smtp_port=8026, log_ports=(8801, 8802))
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(paths.config_file)
    # A new DAG file: its bundle is refreshed when due, and whether it is due is checked every
    # bundle_refresh_check_interval seconds; with 5, a deployed file waited up to 5 s to be seen.
    assert float(cfg["dag_processor"]["refresh_interval"]) <= 1
    assert float(cfg["dag_processor"]["bundle_refresh_check_interval"]) <= 1
    # Between two tasks of a run, an idle scheduler slept a whole second.
    assert float(cfg["scheduler"]["scheduler_idle_sleep_time"]) < 1
    # A finished task's supervisor waited up to 5 s before reporting its end.
    assert float(cfg["workers"]["min_heartbeat_interval"]) <= 1


class FakeBackfillClient:
    """The REST calls lab.backfill and lab.wait_for_backfill make, answered from lists."""

    def __init__(self, answers, runs=(), paused=False):
        self.answers = list(answers)
        self.paused = paused
        self.pauses = []
        self._runs = list(runs)

    def dag(self, dag_id):
        return {"dag_id": dag_id, "is_paused": self.paused}

    def set_paused(self, dag_id, paused):
        self.pauses.append(paused)
        self.paused = paused

    def request(self, method, path, **kwargs):
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return type("Reply", (), {"json": lambda self: answer})()

    def get(self, path, **params):
        return {"backfills": [
            {"id": 1, "from_date": "2023-10-02T00:00:00Z", "to_date": "2023-10-08T00:00:00Z"},
        ]}

    def runs(self, dag_id):
        return self._runs


def test_backfill_asks_again_while_sqlite_is_locked_with_the_dag_paused_meanwhile(monkeypatch):
    locked = lab.ApiError('POST /api/v2/backfills -> 503: {"detail":"Database is locked."}', 503)
    fake = FakeBackfillClient([locked, {"id": 7, "max_active_runs": 10}])
    monkeypatch.setattr(lab, "client", lambda: fake)
    monkeypatch.setattr(lab.time, "sleep", lambda _: None)
    assert lab.backfill("d", "2023-10-02", "2023-10-08")["id"] == 7
    assert fake.pauses == [True, False] and not fake.paused  # unpaused again, as it was
    refused = FakeBackfillClient(
        [lab.ApiError("POST /api/v2/backfills -> 409: already running", 409)], paused=True)
    monkeypatch.setattr(lab, "client", lambda: refused)
    with pytest.raises(RuntimeError, match="409"):
        lab.backfill("d", "2023-10-02", "2023-10-08")
    assert refused.paused
    monkeypatch.setattr(lab, "BACKFILL_TIMEOUT", -1.0)
    busy = FakeBackfillClient([locked] * 3)
    monkeypatch.setattr(lab, "client", lambda: busy)
    with pytest.raises(lab.LabTimeout, match=r"answered 503 for .*busy.*Run the cell again"):
        lab.backfill("d", "2023-10-02", "2023-10-08")
    assert busy.pauses == [True, False]


def test_wait_for_backfill_says_a_paused_dag_keeps_its_runs_queued(monkeypatch):
    runs = [{"run_type": "backfill", "logical_date": "2023-10-02T00:00:00Z", "state": "queued"},
            {"run_type": "backfill", "logical_date": "2023-09-30T00:00:00Z", "state": "queued"},
            {"run_type": "manual", "logical_date": "2023-10-04T00:00:00Z", "state": "success"}]
    monkeypatch.setattr(lab, "client", lambda: FakeBackfillClient([], runs=runs, paused=True))
    with pytest.raises(RuntimeError,
                       match=r"d is paused, so its backfill runs wait in 'queued' \(1 of them\)"):
        lab.wait_for_backfill("d")
    done = [dict(run, state="success") for run in runs]
    monkeypatch.setattr(lab, "client", lambda: FakeBackfillClient([], runs=done))
    # Only the latest backfill's range: the run of 30 September belongs to another one.
    assert [r["logical_date"][:10] for r in lab.wait_for_backfill("d")] == ["2023-10-02"]


class FakeEventsClient:
    """Answers /assets/events with Airflow's 500 ``failures`` times (a created run still queued)."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    def get(self, path: str, **params):
        self.calls += 1
        if self.calls <= self.failures:
            raise lab.ApiError(f"GET /api/v2{path} -> 500: Internal Server Error", 500)
        return {"asset_events": [{"name": "orders", "source_dag_id": "producer", "source_task_id": "t",
                                  "source_run_id": "manual_1", "extra": {}, "timestamp": "2026-01-01",
                                  "created_dagruns": [{"dag_id": "consumer"}]}]}


def test_asset_events_asks_again_while_a_created_run_is_queued_and_names_the_cause_when_it_gives_up(
        monkeypatch):
    monkeypatch.setattr(lab.time, "sleep", lambda _: None)
    fake = FakeEventsClient(failures=3)
    monkeypatch.setattr(lab, "client", lambda: fake)
    events = lab.asset_events("orders")
    assert fake.calls == 4
    assert list(events["source"]) == ["producer.t"] and list(events["runs_created"]) == [["consumer"]]

    monkeypatch.setattr(lab, "ASSET_EVENTS_TIMEOUT", -1.0)
    monkeypatch.setattr(lab, "client", lambda: FakeEventsClient(failures=10**6))
    with pytest.raises(lab.LabTimeout, match=r"queue \(apache/airflow#71360\).*run the cell again"):
        lab.asset_events()


class FakeParsesClient:
    """/importErrors and /dags as the dag-processor leaves them, one list per call."""

    def __init__(self, target: Path, errors: list[list[float]], dags: list[list[float]]) -> None:
        self.target, self.errors, self.dags_seen = target, errors, dags

    @staticmethod
    def _iso(epoch: float) -> str:
        from datetime import datetime, timezone

        return datetime.fromtimestamp(epoch, timezone.utc).isoformat()

    def import_errors(self):
        stamps = self.errors.pop(0) if len(self.errors) > 1 else self.errors[0]
        return [{"filename": str(self.target), "timestamp": self._iso(t),
                 "stack_trace": 'File "x", line 1\nNameError: name \'old\' is not defined'} for t in stamps]

    def dags(self):
        stamps = self.dags_seen.pop(0) if len(self.dags_seen) > 1 else self.dags_seen[0]
        return [{"dag_id": "fixed", "fileloc": str(self.target), "last_parsed_time": self._iso(t)}
                for t in stamps]


def test_deploying_a_fix_is_not_answered_by_the_broken_version_parsed_as_it_was_saved(
        tmp_path, monkeypatch):
    """The broken file's last parse can end just after the fix is written; its error is stale."""
    monkeypatch.setenv("COURSE_AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setattr(lab.time, "sleep", lambda _: None)
    target = LabPaths.default().dags / "pipeline.py"
    target.parent.mkdir(parents=True)
    target.write_text("broken = old\n")
    now = time.time()
    # Call 1: the parse of the broken version that was under way, recorded after the write.
    # Call 2: the next parse, of the fix: the DAG stored, the error gone.
    fake = FakeParsesClient(target, errors=[[now + 0.3], []], dags=[[], [now + 5.3]])
    monkeypatch.setattr(lab, "client", lambda: fake)
    assert lab.deploy_dag("pipeline.py", "fixed = True\n") == "fixed"

    # A file still broken after the edit: the error of the parse after the first one is reported.
    target.write_text("broken = old\n")
    now = time.time()
    fake = FakeParsesClient(target, errors=[[now + 0.3], [now + 5.3]], dags=[[now - 30]])
    monkeypatch.setattr(lab, "client", lambda: fake)
    with pytest.raises(lab.DagImportError, match="NameError"):
        lab.deploy_dag("pipeline.py", "broken = older\n")


def test_deleting_what_is_not_there_is_no_error_but_a_refusal_is(monkeypatch):
    class Refusing:
        def __init__(self, status):
            self.status = status

        def request(self, method, path):
            raise lab.ApiError(f"{method} /api/v2{path} -> {self.status}: no", self.status)

    monkeypatch.setattr(lab, "client", lambda: Refusing(404))
    lab._delete_if_there("/variables/gone")
    monkeypatch.setattr(lab, "client", lambda: Refusing(403))
    with pytest.raises(lab.ApiError, match="403"):
        lab._delete_if_there("/variables/mine")


def test_the_execution_api_is_asked_once_at_start_and_an_api_server_that_is_down_is_no_error():
    import socket
    import threading

    from course import engine

    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        asked, answer, answered = [], threading.Event(), threading.Event()

        def api_server():
            conn, _ = server.accept()
            with conn:
                asked.append(conn.recv(1000).split(b"\r\n")[0])
                answer.wait(10)
                answered.set()  # before the answer leaves: a caller that waited for it sees this
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")

        thread = threading.Thread(target=api_server, daemon=True)
        thread.start()
        threading.Timer(0.2, answer.set).start()
        engine.warm_execution_api(port, timeout=10)
        assert answered.is_set(), "it returned before the api-server had built the API"
        thread.join(10)
    assert asked == [b"GET /execution/health HTTP/1.1"]
    engine.warm_execution_api(port, timeout=1)  # nothing listens there any more: no error
