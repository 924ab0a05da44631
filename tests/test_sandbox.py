"""The sandbox's parts on their own: isolation, the message protocol, learner text, graphs."""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import pytest

from autograder.classroom import Refused, Submission, snapshot, withhold, hidden_lines
from autograder.exercises import find
from autograder.facts import DagInfo, TaskInfo
from autograder.sandbox import isolate, protocol
from autograder.text import markdown_cell, plain

ROOT = Path(__file__).resolve().parent.parent
needs_sandbox = pytest.mark.skipif(isolate.available() is not None,
                                   reason=f"no sandbox here: {isolate.available()}")


def _in_box(code: str, tmp_path: Path) -> dict:
    """Run ``code`` (which sets ``result``) in a sandbox like a task's; its ``result``."""
    uid = 100_000 + os.getpid()
    home = tmp_path / "home"
    home.mkdir()
    os.chown(home, uid, uid)
    root = tmp_path / "root"
    root.mkdir()
    box = isolate.Box(root=str(root), uid=uid, env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
                      binds=((sys.base_prefix, sys.base_prefix, False), (sys.prefix, sys.prefix, False),
                             (str(home), str(home), True)),
                      cwd=str(home), limits=isolate.Limits(30, 2 << 30, 1 << 20, processes=32))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            isolate.own_network()
            isolate.enter(isolate.Box(**{**box.__dict__, "keep_fds": (write,)}))
            scope: dict = {}
            exec(code, scope)
            os.write(write, json.dumps(scope["result"]).encode())
        finally:
            os._exit(0)
    os.close(write)
    data = protocol.read_capped(read, 1 << 20, time.monotonic() + 30)
    os.waitpid(pid, 0)
    return json.loads(data)


@needs_sandbox
def test_a_sandboxed_process_sees_and_reaches_nothing_of_the_grader(tmp_path: Path):
    os.environ["GRADER_ONLY"] = "secret"
    try:
        result = _in_box('''
import os, socket
def attempt(action):
    try:
        action()
        return "done"
    except OSError as exc:
        return type(exc).__name__
result = {
    "uid": os.getuid(), "pid": os.getpid(),
    "repo": os.path.exists(REPO + "/autograder"), "solutions": os.path.exists(REPO + "/solutions"),
    "etc_passwd": attempt(lambda: open("/etc/passwd", "a")),
    "root_home": attempt(lambda: os.listdir("/root/.ssh")),
    "network": attempt(lambda: socket.create_connection(("1.1.1.1", 53), timeout=2)),
    "env": sorted(os.environ),
    "python": attempt(lambda: __import__("json")),
}
'''.replace("REPO", repr(str(ROOT))), tmp_path)
    finally:
        os.environ.pop("GRADER_ONLY")
    assert result["uid"] >= 100_000 and result["pid"] == 1
    assert result["repo"] is False and result["solutions"] is False
    assert result["etc_passwd"] in ("OSError", "PermissionError")
    assert result["root_home"] in ("FileNotFoundError", "PermissionError")
    assert result["network"] in ("OSError", "ConnectionRefusedError")
    assert result["env"] == ["HOME", "PATH"]
    assert result["python"] == "done"


@needs_sandbox
def test_a_daemon_dies_with_its_sandbox(tmp_path: Path):
    marker = tmp_path / "home" / "daemon"
    result = _in_box(f'''
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(3)
        open({str(marker)!r}, "w").write("alive")
    os._exit(0)
result = {{"started": True}}
''', tmp_path)
    assert result == {"started": True}
    time.sleep(4)
    assert not marker.exists(), "a daemon outlived its sandbox"


def test_the_forwarder_is_the_only_way_out(tmp_path: Path):
    if isolate.available() is not None:
        pytest.skip(isolate.available())
    from autograder.sandbox.network import Forwarder

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            forwarder = Forwarder()
            isolate.own_network()
            forwarder.listen(port, ("127.0.0.1", port))
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                conn.sendall(b"ping")
                assert conn.recv(4) == b"pong"
            try:
                socket.create_connection(("127.0.0.1", port + 1 if port < 65535 else 1), timeout=2)
            except ConnectionRefusedError:
                code = 0
        finally:
            os._exit(code)
    server.settimeout(10)
    conn, _ = server.accept()
    assert conn.recv(4) == b"ping"
    conn.sendall(b"pong")
    conn.close()
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"ok": "yes"}', b'{"ok": true}',
                                 b'{"ok": true, "dag_ids": ["a"], "dag_id": "b", "serialized": {}}',
                                 b'{"ok": true, "dag_ids": ["a"], "dag_id": "a", "serialized": 3}',
                                 b'{"ok": false, "error": {"type": "X", "line": "one"}}'])
def test_a_malformed_parse_result_is_refused(raw: bytes):
    with pytest.raises(protocol.Malformed):
        protocol.parse_result(raw)


def test_a_parse_result_is_read_with_a_cap_and_a_deadline():
    read, write = os.pipe()
    os.write(write, b"x" * 5000)
    with pytest.raises(protocol.Malformed):
        protocol.read_capped(read, 4096, time.monotonic() + 5)
    with pytest.raises(TimeoutError):
        protocol.read_capped(read, 1 << 20, time.monotonic() + 0.2)
    os.close(read)
    os.close(write)


def test_a_framed_parse_result_is_read_with_a_cap_and_a_deadline():
    def frame(header: bytes, data: bytes = b"", close: bool = True) -> int:
        read, write = os.pipe()
        os.write(write, header + data)
        if close:
            os.close(write)
        return read

    soon = time.monotonic() + 5
    assert protocol.read_frame(frame((3).to_bytes(8, "big"), b"abc"), 100, soon) == b"abc"
    assert protocol.read_frame(frame(b""), 100, soon) == b""  # the writer ended first
    with pytest.raises(protocol.Malformed, match="more than"):  # a length meant to exhaust memory
        protocol.read_frame(frame((1 << 40).to_bytes(8, "big")), 8 << 20, soon)
    with pytest.raises(protocol.Malformed, match="ended early"):
        protocol.read_frame(frame((10).to_bytes(8, "big"), b"abc"), 100, soon)
    with pytest.raises(TimeoutError):  # a writer that never finishes
        protocol.read_frame(frame((10).to_bytes(8, "big"), b"abc", close=False), 100,
                            time.monotonic() + 0.2)


def _fake_launcher(behaviour) -> tuple[object, int]:
    """A Launcher whose other end is a forked process that says hello, then does ``behaviour``."""
    from autograder.sandbox.supervise import Launcher

    ours, theirs = Launcher.channel()
    pid = os.fork()
    if pid == 0:
        try:
            ours.close()
            theirs.send(b'{"hello": 1}')
            behaviour(theirs)
        finally:
            os._exit(0)
    theirs.close()
    launcher = Launcher(ours, pid)
    launcher.START_TIMEOUT = 1.0
    return launcher, pid


@needs_sandbox  # Linux: the kernel vouches for who sent each message
def test_the_launcher_is_believed_only_where_the_kernel_vouches():
    told, tell = os.pipe()

    def forger(sock: socket.socket) -> None:
        message, fds, _, _ = socket.recv_fds(sock, 4096, 8)
        for fd in fds:
            os.close(fd)
        key = json.loads(message)["key"]
        for junk in (b"not json", b"[1]", b'{"started": "1"}', b'{"exited": 1}', b'{"started": 99}',
                     b'{"exited": 99, "code": 0}', b'{"started": true}'):
            sock.send(junk)
        sock.send(json.dumps({"started": key, "pid": 1}).encode())  # the launcher is not a task
        sock.send(json.dumps({"exited": key, "code": 3}).encode())  # not yet true: still running
        task = os.fork()
        if task == 0:
            sock.send(json.dumps({"started": key, "pid": 1}).encode())  # the kernel says who
            time.sleep(1)
            os._exit(0)
        os.write(tell, str(task).encode())
        sock.send(json.dumps({"exited": key, "code": 0}).encode())  # too late: the first counts
        sock.recv(1)

    launcher, _ = _fake_launcher(forger)
    read, write = os.pipe()
    key, task_pid = launcher.start([read])
    assert task_pid == int(os.read(told, 100))  # the process that said it, not the pid it claimed
    assert launcher.exit_code(key, 0.3) is None  # reported, but the kernel says it still runs
    assert launcher.exit_code(key, 5) == 3
    assert launcher.exit_code(99, 0) is None
    launcher.close()
    assert launcher.exit_code(key + 1, 1) == -9  # the sandbox is gone: whatever ran there was killed
    for fd in (read, write, told, tell):
        os.close(fd)


@pytest.mark.parametrize(("behaviour", "says"), [
    (lambda sock: sock.recv(4096) and time.sleep(5), "did not start the task within 1 s"),
    (lambda sock: None, "ended, so its tasks cannot run"),
    (lambda sock: sock.recv(4096) and sock.send(b'{"failed": 1, "reason": "no processes left"}')
     and time.sleep(5), "could not start: no processes left"),
])
def test_a_launcher_that_does_not_start_the_task_is_named(behaviour, says: str):
    launcher, _ = _fake_launcher(behaviour)
    read, write = os.pipe()
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=says):
        launcher.start([read])
    assert time.monotonic() - started < 3
    launcher.close()
    os.close(read)
    os.close(write)


def test_task_advice_keeps_the_last_well_formed_line():
    raw = b'junk\n{"error": {"type": "KeyError", "message": "x", "line": 3}}\n{"error": 5}\n'
    assert protocol.task_advice(raw)["error"]["type"] == "KeyError"
    assert protocol.task_advice(b"\xff\xfe") is None


def test_learner_text_loses_its_escapes():
    painted = "\x1b[2K\r\x1b[1;32mPASS\x1b[0m\x1b]0;title\x07 done\x00"
    assert plain(painted) == "PASS done"
    assert plain("a" * 5000, limit=10) == "a" * 10 + " …"
    assert markdown_cell("<script>x</script> | y\nz") == "&lt;script&gt;x&lt;/script&gt; \\| y z"


def _chain(n: int, back: tuple[str, str] | None = None) -> DagInfo:
    downstream = {f"t{i}": [f"t{i + 1}"] if i + 1 < n else [] for i in range(n)}
    if back:
        downstream[back[0]].append(back[1])
    tasks = {k: TaskInfo(k, "EmptyOperator", 0, 0, None, tuple(v)) for k, v in downstream.items()}
    return DagInfo("d", tasks, "", "", [], [], None, False)


def test_graph_checks_handle_long_chains():
    dag = _chain(4000)
    assert dag.find_cycle() is None
    assert len(dag.path_between("t0", "t3999")) == 4000
    cycle = _chain(4000, back=("t3999", "t10")).find_cycle()
    assert cycle[0] == cycle[-1] == "t10" and len(cycle) == 3991


def test_snapshot_refuses_links_devices_and_huge_files(tmp_path: Path):
    folder = tmp_path / "alice" / "ex02_parallel_regions"
    folder.mkdir(parents=True)
    sub = Submission("alice", find("ex02"), folder / "dag.py")
    (folder / "dag.py").symlink_to("/etc/passwd")
    with pytest.raises(Refused, match="symbolic link"):
        snapshot(sub)
    (folder / "dag.py").unlink()
    os.mkfifo(folder / "dag.py")
    with pytest.raises(Refused, match="not a regular file"):
        snapshot(sub)
    (folder / "dag.py").unlink()
    (folder / "dag.py").write_bytes(b"#" * (2 << 20))
    with pytest.raises(Refused, match="larger than"):
        snapshot(sub)
    (folder / "dag.py").write_text("print('hi')\n")
    assert snapshot(sub) == b"print('hi')\n"


def test_feedback_withholds_quoted_grading_data():
    exercise = find("ex02")
    secret = hidden_lines(exercise)
    if not secret:
        pytest.skip("no hidden data in this tree")
    leaked = f"ValueError: {secret[-1]}"
    assert secret[-1] not in withhold(leaked, secret)


def test_a_bom_or_latin1_file_is_read_as_python_reads_it():
    from autograder.runner import read_source

    with tempfile.TemporaryDirectory() as folder:
        bom = Path(folder) / "bom.py"
        bom.write_bytes(b"\xef\xbb\xbfx = 1\n")
        assert read_source(bom) == "x = 1\n"
        latin = Path(folder) / "latin.py"
        latin.write_bytes("# -*- coding: latin-1 -*-\n# café\n".encode("latin-1"))
        assert "café" in read_source(latin)


def test_class_grading_refuses_without_a_sandbox_unless_told(tmp_path: Path, monkeypatch):
    from autograder import classroom
    from autograder.config import GradeConfig

    monkeypatch.setattr(isolate, "available", lambda: "the grader is not running as root")
    (tmp_path / "alice" / "ex02_parallel_regions").mkdir(parents=True)
    with pytest.raises(SystemExit, match="--no-sandbox"):
        classroom.grade_class(tmp_path, tmp_path / "out", config=GradeConfig())


def test_a_grade_without_the_sandbox_says_so(monkeypatch):
    from autograder.config import GradeConfig
    from autograder.grade import grade

    monkeypatch.setattr(isolate, "available", lambda: "the grader is not running as root")
    broken = ROOT / "tests" / "grader_cases" / "ex02_parallel_regions" / "syntax_error" / "dag.py"
    report = grade(find("ex02"), broken, GradeConfig())  # stops before any process starts
    assert any(note.startswith("Not isolated: the grader is not running as root") for note in report.notes)
