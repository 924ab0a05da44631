"""Shared fixtures: a real embedded lab in a temporary Airflow home, started once per session."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from course import engine
from course.paths import HOME_ENV, LabPaths

REPO = Path(__file__).resolve().parent.parent


@contextmanager
def secret_in_grader_environment(secret: str) -> Iterator[None]:
    """``secret`` in the grader's own environment meanwhile: no report may carry it."""
    os.environ["AUTOGRADER_TEST_SECRET"] = secret
    try:
        yield
    finally:
        os.environ.pop("AUTOGRADER_TEST_SECRET", None)


def assert_report_reveals_nothing(report, secret: str) -> None:
    """What hostile files reach for is not in the report: the grader's environment (``secret`` is
    in it while grading), the machine's /etc/passwd, terminal escapes."""
    from autograder.render import as_json, as_text

    text, data = as_text(report), as_json(report)
    assert secret not in data, "the grader's environment reached the report"
    host_root = next((line for line in Path("/etc/passwd").read_text().splitlines()
                      if line.startswith("root:")), "root:x:0:0")
    assert host_root not in data, "the machine's /etc/passwd reached the report"
    assert "\x1b" not in text and "\x07" not in text, "terminal escapes in the text report"


@pytest.fixture(scope="session")
def squatted_port() -> Iterator[int]:
    """A port some other program already listens on: the lab must step around it."""
    port = engine.free_port(18080)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield port


@pytest.fixture(scope="session")
def lab_home(tmp_path_factory: pytest.TempPathFactory, squatted_port: int) -> Iterator[LabPaths]:
    """A running lab whose preferred port is taken; stopped (and checked) at the end."""
    home = tmp_path_factory.mktemp("lab-home")
    old = os.environ.get(HOME_ENV)
    os.environ[HOME_ENV] = str(home)
    paths = LabPaths.default()
    try:
        engine.start(paths, port=squatted_port, progress=lambda *_: None)
        yield paths
    finally:
        engine.stop(paths, quiet=True)
        if old is None:
            os.environ.pop(HOME_ENV, None)
        else:
            os.environ[HOME_ENV] = old
