"""The grading process of the Prefect and Dagster exercises, run with ``.venv-orchestrators``.

    .venv-orchestrators/bin/python -m autograder.orchestrators.engine SPEC_JSON

Started by ``autograder.orchestrators.collect`` (the Airflow side), one per submission, in a
process group of its own that is killed at its deadline. It imports Prefect or Dagster once, then
forks the sandbox (``autograder.sandbox.isolate``: namespaces, the throwaway uid, no network but
its own loopback) in which ``inside`` imports the learner's file and runs it. For Prefect it first
starts the API server the flow reports to, forked from the same warm interpreter into a sandbox of
its own (another throwaway uid), in the same private network, with a database of its own copied
from a template: no submission can reach another's server. It writes what happened to
``result.json`` in the grading home, which no sandbox
sees; the caller reads the warehouse itself.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

from autograder.sandbox import isolate

MAX_MESSAGE = 1 << 20  # what the sandbox may say, in all
QUIET = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
         "DAGSTER_DISABLE_TELEMETRY": "1", "PREFECT_LOGGING_LEVEL": "WARNING",
         "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90", "NO_COLOR": "1"}
DAGSTER_YAML = "telemetry:\n  enabled: false\n"


EVENTS = ("import", "imported", "run", "ran")  # what ``inside`` says, in that order


def channel_event(line: bytes) -> dict | None:
    """One line of the sandbox's channel as an event, or None when it is not one ``inside`` could
    have written: not JSON, not an object with a string ``event``, or nested past re-encoding."""
    try:
        event = json.loads(line)
        if not (isinstance(event, dict) and isinstance(event.get("event"), str)):
            return None
        json.dumps(event)  # what result.json must hold again
    except (ValueError, RecursionError):
        return None
    return event


def _warm(engine: str) -> None:
    """Import what the sandbox and the server will need, once, before anything is forked."""
    if engine == "prefect":
        import prefect  # noqa: F401
        import prefect.flow_engine  # noqa: F401
        import prefect.server.api.server  # noqa: F401
        import prefect.task_engine  # noqa: F401
        import prefect.task_runners  # noqa: F401
        import uvicorn  # noqa: F401
    else:
        import dagster  # noqa: F401
    import csv  # noqa: F401
    import sqlite3  # noqa: F401

    from autograder.orchestrators import inside  # noqa: F401


def prefect_template(cache: Path) -> Path:
    """A Prefect database with its schema and block types, made once per Prefect version and
    copied for each submission's server, which then starts without migrating."""
    import asyncio
    import fcntl
    import sqlite3

    import prefect

    folder = cache / f"prefect-{prefect.__version__}"
    db = folder / "prefect.db"
    if db.exists():
        return db
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # graders side by side: one builds, the others wait
        if db.exists():
            return db
        building = folder / f"building-{os.getpid()}.db"
        from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL, temporary_settings

        async def build() -> None:
            from prefect.server.database import provide_database_interface
            from prefect.server.models.block_registration import run_block_auto_registration

            interface = provide_database_interface()
            await interface.create_db()
            async with await interface.session() as session:
                await run_block_auto_registration(session=session)
                await session.commit()
            await (await interface.engine()).dispose()

        # Built in a child: what building caches (engines, the event loop) must not reach the
        # servers forked later from this process.
        reaped = signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the fork server reaps: not this one
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                with temporary_settings(updates={
                        PREFECT_API_DATABASE_CONNECTION_URL: f"sqlite+aiosqlite:///{building}"}):
                    asyncio.run(build())
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        signal.signal(signal.SIGCHLD, reaped)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError("Prefect's database template could not be built")
        with sqlite3.connect(building) as conn:  # one self-contained file to copy
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA journal_mode=DELETE")
        os.replace(building, db)
    return db


def _start_prefect_server(home: Path, spec: dict, deadline: float,
                          template: Path) -> tuple[int, str]:
    """A Prefect API server on a free loopback port of this network; (pid, api url).

    It runs in a sandbox of its own (``isolate``: another throwaway uid, the interpreter and its
    own folder only): learner code talks to it, so it sees nothing of the course either."""
    import httpx

    box = spec["box"]
    uid = box["uid"] + 1
    shutil.copy(template, home / "prefect.db")
    (home / "root").mkdir()
    if box["isolated"]:
        for folder, _, files in os.walk(home):
            for path in (folder, *(os.path.join(folder, f) for f in files)):
                os.chown(path, uid, uid)
    env = {"PATH": box["env"]["PATH"], "LANG": "C.UTF-8", **QUIET, "HOME": str(home),
           # Prefect looks for its profiles in $PREFECT_HOME, settings files in the working folder
           "PREFECT_HOME": str(home / "prefect"), "PREFECT_PROFILES_PATH": str(home / "profiles.toml")}
    submission_folder = str(Path(spec["submission"]).parent)
    interpreter = [tuple(b) for b in box["binds"] if not b[2] and b[0] != submission_folder]
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    pid = os.fork()
    if pid == 0:
        try:
            out = os.open(home / "server.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            if box["isolated"]:
                os.fchown(out, uid, uid)
            os.dup2(out, 1)
            os.dup2(out, 2)
            limits = box["limits"]
            isolate.enter(isolate.Box(
                root=str(home / "root"), uid=uid, env=env, cwd=str(home), isolated=box["isolated"],
                binds=(*interpreter, (str(home), str(home), True)), keep_fds=(sock.fileno(),),
                limits=isolate.Limits(limits["cpu_seconds"], limits["memory_bytes"],
                                      limits["file_bytes"])))
            import uvicorn
            from prefect.server.api.server import create_app
            from prefect.settings import (PREFECT_API_BLOCKS_REGISTER_ON_START,
                                          PREFECT_API_DATABASE_CONNECTION_URL,
                                          PREFECT_API_DATABASE_MIGRATE_ON_START, PREFECT_HOME,
                                          temporary_settings)

            with temporary_settings(updates={
                    PREFECT_HOME: str(home),
                    PREFECT_API_DATABASE_CONNECTION_URL: f"sqlite+aiosqlite:///{home / 'prefect.db'}",
                    # the template has the schema and the block types already
                    PREFECT_API_DATABASE_MIGRATE_ON_START: False,
                    PREFECT_API_BLOCKS_REGISTER_ON_START: False}):
                app = create_app(ephemeral=True, final=True)
                uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="on")).run(sockets=[sock])
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(0)
    sock.close()
    url = f"http://127.0.0.1:{port}/api"
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return pid, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"Prefect's API server did not answer on {url} in time")
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            try:
                tail = (home / "server.log").read_text(errors="replace")[-600:]
            except OSError:
                tail = "(no log)"
            raise RuntimeError(f"Prefect's API server ended at start: {tail}")
        time.sleep(0.05)


def _box(spec: dict, api_url: str | None) -> isolate.Box:
    box = spec["box"]
    env = {**box["env"], **QUIET}
    if api_url:
        env["PREFECT_API_URL"] = api_url
    limits = box["limits"]
    return isolate.Box(root=box["root"], uid=box["uid"], binds=tuple(tuple(b) for b in box["binds"]),
                       env=env, cwd=box["cwd"], isolated=box["isolated"],
                       limits=isolate.Limits(limits["cpu_seconds"], limits["memory_bytes"],
                                             limits["file_bytes"]))


def main(spec_file: str) -> int:
    spec = json.loads(Path(spec_file).read_text())
    home = Path(spec["home"])
    started = time.monotonic()
    marks: dict[str, float] = {}  # seconds from the start to each step, for the benchmark
    result: dict = {"events": [], "timed_out": None, "returncode": None, "error": None, "marks": marks}
    phase = "boot"
    server = None
    server_home = None
    try:
        os.environ.update(QUIET)
        if spec["engine"] == "prefect":
            # The server's own folder, beside the grading home, that only the server's uid may enter.
            # Named after the grading folder, so that the caller removes it if this process is
            # killed at its deadline before it could.
            server_home = Path(tempfile.mkdtemp(prefix=f"prefect-server-{home.parent.name}-",
                                                dir=home.parent.parent))
        _warm(spec["engine"])
        marks["warm"] = time.monotonic() - started
        box = spec["box"]
        learner = Path(box["env"]["HOME"])
        for name in ("prefect", "dagster"):
            (learner / name).mkdir(exist_ok=True)
            if box["isolated"]:
                os.chown(learner / name, box["uid"], box["uid"])
        (learner / "dagster" / "dagster.yaml").write_text(DAGSTER_YAML)
        if box["isolated"]:
            isolate.own_network()  # the sandbox and the server share it; nothing else answers
        api_url = None
        if spec["engine"] == "prefect":
            server, api_url = _start_prefect_server(server_home, spec,
                                                    started + spec["boot_timeout"],
                                                    prefect_template(Path(spec["cache"])))
            marks["server"] = time.monotonic() - started
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(read_end)
                # What the learner's code prints is no fact and no message: not the engine's log,
                # which is in memory (/dev/shm) and would grow to the file-size limit.
                quiet = os.open(os.devnull, os.O_WRONLY)
                os.dup2(quiet, 1)
                os.dup2(quiet, 2)
                os.close(quiet)
                sandbox = _box(spec, api_url)
                isolate.enter(isolate.Box(**{**sandbox.__dict__, "keep_fds": (write_end,)}))
                from autograder.orchestrators import inside

                inside.main(spec["engine"], spec["submission"], write_end, api_url)
            finally:
                os._exit(0)
        os.close(write_end)
        phase = "import"
        deadline = time.monotonic() + spec["import_timeout"]
        buffer, total = b"", 0
        while True:
            ready, _, _ = select.select([read_end], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                result["timed_out"] = phase
                break
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            total += len(chunk)
            if total > MAX_MESSAGE:
                result["overflow"] = True  # the learner's process wrote into the grader's pipe
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                event = channel_event(line)
                if event is None:
                    result["junk"] = True  # not a line ``inside`` writes: the learner's code wrote it
                    continue
                result["events"].append(event)
                name = event["event"] if event["event"] != "phase" else event.get("phase")
                if isinstance(name, str) and name in EVENTS:
                    marks.setdefault(name, time.monotonic() - started)
                # One step forward, once: a process that keeps announcing a phase gains no time.
                if event["event"] == "phase" and event.get("phase") == "run" and phase == "import":
                    phase = "run"
                    deadline = time.monotonic() + spec["run_timeout"]
        if result["timed_out"] or result.get("overflow"):
            os.kill(pid, signal.SIGKILL)
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
        result["returncode"] = os.waitstatus_to_exitcode(status)
    except Exception as exc:  # the grader's own failure, reported as such
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        if server:
            os.kill(server, signal.SIGKILL)
            os.waitpid(server, 0)
        if server_home is not None and not spec.get("keep"):
            shutil.rmtree(server_home, ignore_errors=True)
    result["phase"] = phase
    result["seconds"] = round(time.monotonic() - started, 3)
    try:
        text = json.dumps(result)
    except (ValueError, RecursionError):  # an event nested just short of the limit, one level in
        text = json.dumps({**result, "events": [], "junk": True})
    tmp = home / "result.json.tmp"
    tmp.write_text(text)
    os.replace(tmp, home / "result.json")
    return 0


def serve() -> None:
    """A fork server: import Prefect and Dagster once, then fork ``main`` for each spec file read
    from stdin, replying ``{"id", "pid"}``; each child writes its ``result.json`` as a cold run
    does. Ends when stdin closes (its grader has gone) or after ``IDLE`` seconds unused."""
    home = Path(tempfile.mkdtemp(prefix="grade-engine-"))
    os.chmod(home, 0o755)  # only empty: Prefect's default home below it is searched, never there
    os.environ.update(QUIET, HOME=str(home))
    os.chdir(home)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    warmed: set[str] = set()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    out.write(b'{"ready": true}\n')
    out.flush()
    stdin = sys.stdin.buffer
    while True:
        ready, _, _ = select.select([stdin], [], [], IDLE)
        if not ready:
            break
        line = stdin.readline()
        if not line:
            break
        request = json.loads(line)
        engine = request.get("engine")
        if engine in ("prefect", "dagster") and engine not in warmed:
            # Each library is imported here on its first submission, then shared by every fork:
            # a single grade pays for its own library only.
            _warm(engine)
            if engine == "prefect" and os.environ.get("AUTOGRADER_CACHE"):
                prefect_template(Path(os.environ["AUTOGRADER_CACHE"]))
            warmed.add(engine)
        pid = os.fork()
        if pid == 0:
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.setsid()
                isolate.prctl(isolate.PR_SET_PDEATHSIG, signal.SIGKILL)
                spec = Path(request["spec"])
                log = os.open(spec.parent / "engine.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                os.dup2(log, 1)
                os.dup2(log, 2)
                os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # the requests are not its business
                os.chdir(spec.parent)
                isolate.close_fds({0, 1, 2})
                main(str(spec))
            finally:
                os._exit(0)
        out.write(json.dumps({"id": request["id"], "pid": pid}).encode() + b"\n")
        out.flush()
    shutil.rmtree(home, ignore_errors=True)


IDLE = 600.0

if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        serve()
    else:
        sys.exit(main(sys.argv[1]))
