"""Feedback through the lab's warm grader: same report as a cold run, a fallback when the grader
is missing or dies, `--watch`, and the lab starting and stopping the grader with nothing left."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from autograder import service
from autograder.exercises import all_exercises, exercise_ids, resolve
from course import engine
from course.paths import LabPaths

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "grader_cases"
SYNTAX_ERROR = CASES / "ex02_parallel_regions" / "syntax_error" / "dag.py"


def grade_cli(*args: str, sock: Path | None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AUTOGRADER_SOCKET": str(sock or "/nonexistent/grader.sock")}
    return subprocess.run([sys.executable, "-m", "autograder", "grade", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def without_duration(stdout: str) -> dict:
    report = json.loads(stdout)
    assert report.pop("duration_s") >= 0
    return report


def test_the_grade_command_loads_neither_airflow_nor_the_runner_before_it_asks_the_grader():
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import autograder.__main__"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    loaded = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line]
    assert "autograder.exercises" in loaded  # the measurement sees the course's own modules
    heavy_packages = ("airflow", "pandas", "sqlalchemy", "aiosmtpd", "croniter")
    heavy_modules = ("autograder.runner", "autograder.grade", "autograder.exercises.ex01_daily_etl")
    heavy = [m for m in loaded if m.split(".")[0] in heavy_packages or m in heavy_modules]
    assert heavy == []


def test_exercise_ids_are_known_without_loading_the_exercises():
    assert exercise_ids() == list(all_exercises())
    assert resolve("ex02") == "ex02_parallel_regions"
    with pytest.raises(KeyError, match="matches several exercises: ex01_daily_etl, ex02_parallel"):
        resolve("ex0")


def test_without_a_grader_the_command_grades_here_and_says_nothing_about_it():
    done = grade_cli("ex02", "--submission", str(SYNTAX_ERROR), "--format", "json", sock=None)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [c["status"] for c in report["checks"] if c["id"] == "file.parses"] == ["fail"]
    assert "grading here" not in done.stderr


@pytest.fixture
def dying_grader(tmp_path: Path) -> Iterator[Path]:
    """A socket whose server reads each request and closes without answering, as a grader
    killed in the middle of a grade does."""
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    sock = folder / "grader.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock))
    server.listen()
    server.settimeout(0.2)
    requests: list[bytes] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                line = conn.makefile("rb").readline()
                if line:
                    requests.append(line)
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield sock
    stop.set()
    thread.join(5)
    server.close()
    assert requests, "the grade command never sent the grader a request"
    assert json.loads(requests[0])["exercise"] == "ex02_parallel_regions"


def test_a_grader_that_dies_mid_request_leaves_a_report_graded_here(dying_grader: Path):
    done = grade_cli("ex02", "--submission", str(SYNTAX_ERROR), "--format", "json", sock=dying_grader)
    assert done.returncode == 0, done.stderr
    cold = grade_cli("ex02", "--submission", str(SYNTAX_ERROR), "--format", "json", "--cold", sock=None)
    assert without_duration(done.stdout) == without_duration(cold.stdout)
    assert "grading here instead" in done.stderr  # said on stderr: stdout stays one JSON report


# --- with a real warm grader ------------------------------------------------------------------

@pytest.fixture(scope="module")
def grader() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="feedback-test-"))
    sock = folder / "grader.sock"
    service.start(sock)
    yield sock
    service.stop(sock)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["ex05_diamond/first_failure_upstream", "ex06_xcom_etl/returns_dataframe"])
def test_warm_and_cold_give_the_same_report(grader: Path, case: str):
    path = str(CASES / case / "dag.py")
    exercise = case.split("/")[0]
    warm = grade_cli(exercise, "--submission", path, "--format", "json", sock=grader)
    cold = grade_cli(exercise, "--submission", path, "--format", "json", "--cold", sock=None)
    assert warm.stderr == "", "the warm grader did not answer"
    assert without_duration(warm.stdout) == without_duration(cold.stdout)
    if not case.startswith("ex05"):
        return
    # The text report too, the failed task's log included; only the seconds differ.
    warm_text = grade_cli(exercise, "--submission", path, sock=grader).stdout.splitlines()
    assert any(line.startswith("  log of the failed task") for line in warm_text)
    cold_text = grade_cli(exercise, "--submission", path, "--cold", sock=None).stdout.splitlines()
    assert warm_text[:-1] == cold_text[:-1]
    assert warm_text[-1].split("(")[0] == cold_text[-1].split("(")[0]


def _next_line(proc: subprocess.Popen[str], timeout: float, waiting_for: str) -> str:
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    if not selector.select(timeout):
        raise AssertionError(f"no output within {timeout:.0f} s while waiting for {waiting_for}")
    return proc.stdout.readline()


@pytest.mark.slow
def test_watch_grades_again_after_a_save_and_stops_on_ctrl_c(grader: Path, tmp_path: Path):
    dag = tmp_path / "dag.py"
    shutil.copy(CASES / "ex05_diamond" / "first_failure_upstream" / "dag.py", dag)
    env = {**os.environ, "AUTOGRADER_SOCKET": str(grader)}
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "grade", "ex05", "--submission",
                             str(dag), "--watch", "--format", "json"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(_next_line(proc, 120, "the first report"))
        assert first["status"] == "fail"
        os.utime(dag)  # saved without a change: not graded again
        time.sleep(1.5)
        shutil.copy(ROOT / "solutions" / "ex05_diamond" / "dag.py", dag)
        second = json.loads(_next_line(proc, 120, "the report after the save"))
        assert second["status"] == "pass", second
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        assert proc.stdout.read() == ""  # nothing graded for the touch, nothing half-written
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- the lab's grader ------------------------------------------------------------------------

def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"waited {timeout:.0f} s for {what}"
        time.sleep(0.2)


@pytest.mark.slow
def test_lab_grader_is_restarted_when_it_dies_woken_after_its_idle_stop_and_ends_with_the_lab(
        tmp_path: Path):
    paths = LabPaths.default(tmp_path / "lab")
    paths.logs.mkdir(parents=True)
    # Stand-ins for Airflow and the mail sink: the grader's life cycle is what is tested here.
    stand_ins = [subprocess.Popen(["sleep", "600"], start_new_session=True) for _ in range(2)]
    pgid = engine.start_grader(paths, idle=8)
    paths.state_file.write_text(json.dumps({"port": 1, "smtp_port": 2, "airflow_pgid": stand_ins[0].pid,
                                            "smtp_pgid": stand_ins[1].pid, "grader_pgid": pgid}))
    sock = paths.grader_socket
    _wait(lambda: service.answers(sock), 180, "the lab's grader to answer")
    keeper = psutil.Process(pgid)
    first = next(p for p in keeper.children() if "serve" in p.cmdline())
    first.kill()
    _wait(lambda: not first.is_running() or first.status() == psutil.STATUS_ZOMBIE, 10, "the kill")
    _wait(lambda: any(p.pid != first.pid for p in keeper.children()), 10, "a new grader")
    _wait(lambda: service.answers(sock), 180, "the restarted grader to answer")
    assert "starting it again" in paths.grader_log.read_text()

    # Unused for its idle time, it stops; the grade that finds it asleep is made here at once,
    # and wakes it for the next one.
    _wait(lambda: not sock.exists(), 60, "the grader to stop after 8 idle seconds")
    time.sleep(1)
    assert not sock.exists() and keeper.is_running(), "the keeper woke the grader unasked"
    done = grade_cli("ex02", "--submission", str(SYNTAX_ERROR), "--format", "json", sock=sock)
    assert json.loads(done.stdout)["exercise"] == "ex02_parallel_regions"
    assert "not ready yet" in done.stderr
    _wait(lambda: service.answers(sock), 180, "the woken grader to answer")

    family = [keeper, *keeper.children(recursive=True)]  # keeper, grader, its fork server
    assert len(family) >= 3
    assert engine.stop(paths, quiet=True) is True
    _wait(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in family), 20,
          "every process of the grader to end")
    assert not sock.exists()
    assert not paths.state_file.exists()
    for proc in stand_ins:
        assert proc.wait(5) is not None
