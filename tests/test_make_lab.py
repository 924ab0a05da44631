"""`make lab` as a learner runs it: Airflow and JupyterLab come up, Ctrl-C stops both."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from autograder import service
from course import engine
from course.paths import HOME_ENV, LabPaths

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def test_lab_command_serves_both_and_ctrl_c_stops_both(tmp_path):
    env = {**os.environ, HOME_ENV: str(tmp_path / "lab"), "COURSE_AIRFLOW_PORT": "18280"}
    log = tmp_path / "lab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "course", "lab", "--ServerApp.port=18888",
                                 "--ServerApp.port_retries=50"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    paths = LabPaths.default(tmp_path / "lab")
    try:
        deadline = time.monotonic() + 300
        url = None
        while url is None:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "no JupyterLab URL:\n" + log.read_text()[-3000:]
            found = re.search(r"(http://127\.0\.0\.1:\d+/lab\?token=\w+)", log.read_text())
            url = found.group(1) if found else None
            time.sleep(1)
        text = log.read_text()
        assert "Airflow lab: running at http://127.0.0.1:" in text
        assert "Login: admin, password in" in text
        assert httpx.get(url, timeout=10).status_code == 200
        state = engine.read_state(paths)
        assert engine.health(state.port) is not None
        # The lab's warm grader: it answers `make grade` once it has warmed up.
        deadline = time.monotonic() + 180
        while not service.answers(paths.grader_socket):
            assert time.monotonic() < deadline, "the lab's grader did not answer within 180 s:\n" + \
                (paths.grader_log.read_text() if paths.grader_log.exists() else "(no grader log)")
            time.sleep(1)
        grader = psutil.Process(state.grader_pgid)
        family = [grader, *grader.children(recursive=True)]  # keeper, grader, its fork server
        assert "ready" in engine.status(paths).grader
        proc.send_signal(signal.SIGINT)
        assert proc.wait(120) == 0
        assert "Airflow lab stopped." in log.read_text()
        alive = engine.lab_processes(paths)
        assert alive == []
        psutil.wait_procs(family, timeout=20)
        assert [p.pid for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
        assert not paths.grader_socket.exists()
        with pytest.raises(httpx.HTTPError):
            httpx.get(url, timeout=3)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        engine.stop(paths, quiet=True)
