"""Class grading: isolated, parallel, resumable, with hidden data kept out of student feedback."""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder import service
from autograder.classroom import HIDDEN_MESSAGE, grade_class
from autograder.config import GradeConfig

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "grader_cases"

FAST = GradeConfig.from_env(run_timeout=15.0)  # the hanging submission costs 15 s, not 120
CLASS = {
    "alice": {"ex01_daily_etl": ROOT / "solutions/ex01_daily_etl/dag.py",
              "ex02_parallel_regions": ROOT / "solutions/ex02_parallel_regions/dag.py"},
    "bob": {"ex01_daily_etl": CASES / "ex01_daily_etl/age_off_by_one/dag.py",
            "ex02_parallel_regions": CASES / "ex02_parallel_regions/sequential_regions/dag.py"},
    "carol": {"ex01_daily_etl": CASES / "ex01_daily_etl/task_hangs/dag.py",
              "ex02_parallel_regions": CASES / "ex02_parallel_regions/sys_exit_at_import/dag.py"},
}


def make_class(root: Path) -> Path:
    for student, files in CLASS.items():
        for exercise, source in files.items():
            (root / student / exercise).mkdir(parents=True)
            shutil.copy(source, root / student / exercise / "dag.py")
    return root


def _grades(out: Path) -> dict[tuple[str, str], dict]:
    with open(out / "grades.csv", newline="") as f:
        return {(r["student"], r["exercise"]): r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, float]:
    submitted = make_class(tmp_path_factory.mktemp("submitted"))
    out = tmp_path_factory.mktemp("out")
    t0 = time.monotonic()
    grade_class(submitted, out, jobs=2, config=FAST)
    return submitted, out, time.monotonic() - t0


def test_every_submission_gets_its_own_verdict(graded):
    _, out, _ = graded
    grades = _grades(out)
    assert {k: v["status"] for k, v in grades.items()} == {
        ("alice", "ex01_daily_etl"): "pass", ("alice", "ex02_parallel_regions"): "pass",
        ("bob", "ex01_daily_etl"): "fail", ("bob", "ex02_parallel_regions"): "fail",
        ("carol", "ex01_daily_etl"): "fail", ("carol", "ex02_parallel_regions"): "fail"}
    assert grades["alice", "ex01_daily_etl"]["score"] == grades["alice", "ex01_daily_etl"]["max_score"]
    carol = json.loads((out / "reports/carol/ex01_daily_etl.json").read_text())
    run = next(c for c in carol["checks"] if c["id"] == "run.tasks_succeeded")
    assert "did not finish in time" in run["message"]


def test_gradebook_has_one_row_per_student_with_totals(graded):
    _, out, _ = graded
    with open(out / "gradebook.csv", newline="") as f:
        book = {r["student"]: r for r in csv.DictReader(f)}
    assert set(book) == {"alice", "bob", "carol"}
    grades = _grades(out)
    for student, row in book.items():
        want = sum(float(grades[student, ex]["score"]) for ex in CLASS[student])
        assert float(row["total"]) == pytest.approx(want)


def test_feedback_withholds_hidden_data_but_reports_keep_it(graded):
    _, out, _ = graded
    report = json.loads((out / "reports/bob/ex01_daily_etl.json").read_text())
    warehouse = next(c for c in report["checks"] if c["id"] == "run.warehouse")
    assert warehouse["status"] == "fail" and "age=18" in warehouse["message"]
    feedback = (out / "feedback/bob/ex01_daily_etl.md").read_text()
    assert HIDDEN_MESSAGE in feedback
    assert "age=18" not in feedback
    assert "Dependencies are exactly as asked" in feedback
    sequential = (out / "feedback/bob/ex02_parallel_regions.md").read_text()
    assert "`process_eu` waits for" in sequential or "waits for" in sequential


def test_rerun_grades_only_what_changed(graded):
    submitted, out, first = graded
    before = {p: p.stat().st_mtime_ns for p in (out / "reports").rglob("*.json")}
    fixed = ROOT / "solutions/ex02_parallel_regions/dag.py"
    shutil.copy(fixed, submitted / "bob/ex02_parallel_regions/dag.py")
    grade_class(submitted, out, jobs=2, config=FAST)
    after = {p: p.stat().st_mtime_ns for p in (out / "reports").rglob("*.json")}
    changed = sorted(str(p.relative_to(out)) for p in after if after[p] != before.get(p))
    assert changed == ["reports/bob/ex02_parallel_regions.json"]
    assert _grades(out)["bob", "ex02_parallel_regions"]["status"] == "pass"


def test_an_interrupted_run_keeps_what_it_graded(tmp_path):
    submitted = make_class(tmp_path / "submitted")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "grade-class", str(submitted),
                             "--out", str(out), "--jobs", "1", "--timeout", "15"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list((out / "reports").rglob("*.json")):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    kept = {p.relative_to(out) for p in (out / "reports").rglob("*.json")}
    assert kept and all(json.loads((out / p).read_text())["content_hash"] for p in kept)
    done = subprocess.run([sys.executable, "-m", "autograder", "grade-class", str(submitted), "--out",
                           str(out), "--timeout", "15"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0
    assert f"{len(kept)} unchanged" in done.stderr
    assert len(_grades(out)) == 6


def test_cli_rejects_a_folder_without_submissions(tmp_path):
    done = subprocess.run([sys.executable, "-m", "autograder", "grade-class", str(tmp_path), "--out",
                           str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    assert "no <student>/<exercise_id>/dag.py" in done.stderr


def test_lesson_notebooks_are_autograded_with_nbgrader_and_merged(tmp_path):
    from course.release import ASSIGNMENT, student_notebooks

    student_versions = student_notebooks(ROOT, tmp_path / "release")
    handed_out = next(nb for nb in student_versions if nb.name == "00_setup.ipynb")
    submitted = tmp_path / "submitted"
    for student, notebook, dag in (("gus", ROOT / "notebooks/00_setup.ipynb", "solutions"),
                                   ("hal", handed_out, "exercises")):
        (submitted / student / ASSIGNMENT).mkdir(parents=True)
        shutil.copy(notebook, submitted / student / ASSIGNMENT / "00_setup.ipynb")
        (submitted / student / "ex02_parallel_regions").mkdir()
        shutil.copy(ROOT / dag / "ex02_parallel_regions/dag.py",
                    submitted / student / "ex02_parallel_regions/dag.py")
    out = tmp_path / "out"
    grade_class(submitted, out, jobs=2, config=FAST)
    with open(out / "gradebook.csv", newline="") as f:
        book = {r["student"]: r for r in csv.DictReader(f)}
    assert float(book["gus"]["notebook:00_setup"]) > 0
    assert float(book["hal"]["notebook:00_setup"]) == 0
    assert float(book["gus"]["total"]) == pytest.approx(
        float(book["gus"]["ex02_parallel_regions"]) + float(book["gus"]["notebook:00_setup"]))


def _wait_gone(path: Path, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return not path.exists()


def test_grading_service_grades_sent_submissions_and_stops_when_asked(tmp_path):
    sock = tmp_path / "service.sock"
    service.start(sock)
    try:
        report = service.grade_remotely(sock, "ex02_parallel_regions",
                                        ROOT / "solutions/ex02_parallel_regions/dag.py", 60)
        assert report is not None and report.status == "pass"
        wrong = service.grade_remotely(sock, "ex02_parallel_regions",
                                       CASES / "ex02_parallel_regions/missing_edge/dag.py", 60)
        assert wrong is not None and wrong.status == "fail"
        assert service.grade_remotely(sock, "ex99_nothing", tmp_path / "dag.py", 60) is None
    finally:
        assert service.stop(sock) is True
    assert not sock.exists(), "stop() returned while the service still listens"
    assert service.stop(sock) is False
    assert service.grade_remotely(sock, "ex02_parallel_regions", tmp_path / "dag.py", 60) is None


def _stop_as_another_user(sock: Path) -> str:
    """What a process of another user gets when it asks the service on ``sock`` to stop."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(10)
                conn.connect(str(sock))
                conn.sendall(b'{"stop": true}\n')
                answer = conn.recv(200).decode()
        except OSError as exc:
            answer = type(exc).__name__
        os.write(write, answer.encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as f:
        return f.read()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_grading_service_ignores_other_users(tmp_path):
    tmp_path.chmod(0o700)
    sock = tmp_path / "service.sock"
    service.start(sock)
    try:
        answer = _stop_as_another_user(sock)
        assert "stopping" not in answer
        assert service._answers(sock), "another user stopped the service"
    finally:
        assert service.stop(sock) is True


def test_grading_service_refuses_a_socket_folder_others_can_open(tmp_path):
    open_folder = tmp_path / "shared"
    open_folder.mkdir(mode=0o755)
    open_folder.chmod(0o755)
    with pytest.raises(RuntimeError, match="0700"):
        service.start(open_folder / "service.sock", timeout=60)


def test_grading_service_stops_by_itself_when_idle(tmp_path):
    sock = tmp_path / "service.sock"
    service.start(sock, idle=3)  # long enough for start() to see it answer on a busy machine
    assert _wait_gone(sock), "an idle service (idle=3 s) still listens after 30 s"
