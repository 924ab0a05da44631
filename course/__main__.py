"""Command line of the course toolkit.

    python -m course airflow start|stop|status|logs [COMPONENT] [-n LINES]
    python -m course mail [-n COUNT]
    python -m course orchestrators start|stop|status [prefect|dagster]   # lesson 15's servers
    python -m course lab          # Airflow + JupyterLab; Ctrl-C stops both
    python -m course cluster start|stop|status [--workers N] [--postgres-url URL]   # CeleryExecutor
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

from course import engine
from course.paths import LabPaths


def _airflow(args: argparse.Namespace, paths: LabPaths) -> int:
    if args.action == "start":
        status = engine.start(paths, timeout=args.timeout)
        print(status.report())
    elif args.action == "stop":
        engine.stop(paths)
    elif args.action == "status":
        print(engine.status(paths).report())
    elif args.action == "logs":
        if args.component:
            print(engine.component_log_tail(paths, args.component, args.lines))
        else:
            lines = paths.airflow_log.read_text(errors="replace").splitlines() \
                if paths.airflow_log.exists() else ["(no log yet: the lab has not been started)"]
            print("\n".join(lines[-args.lines:]))
    return 0


def _mail(args: argparse.Namespace, paths: LabPaths) -> int:
    from course.mail import read_mail

    mails = read_mail(paths, args.count)
    if not mails:
        print(f"No mail yet in {paths.mail_dir}. Tasks that send email deliver it here.")
    for mail in mails:
        print(mail.summary())
        if args.body:
            print("    " + mail.body.strip().replace("\n", "\n    "))
    return 0


def _orchestrators(args: argparse.Namespace, paths: LabPaths) -> int:
    from course import orchestrators

    if args.action == "start":
        for name in [args.name] if args.name else list(orchestrators.NAMES):
            orchestrators.start(name, paths, timeout=args.timeout)
    elif args.action == "stop":
        orchestrators.stop(args.name, paths)
    else:
        print(orchestrators.status(paths))
    return 0


def _cluster(args: argparse.Namespace, paths: LabPaths) -> int:
    from course import cluster

    try:
        if args.action == "start":
            state = cluster.start(workers=args.workers, concurrency=args.concurrency,
                                  postgres_url=args.postgres_url, timeout=args.timeout)
            print(f"Cluster ready at {state.url} (login admin, password in "
                  f"{state.home}/passwords.json); DAG grade_class, {len(state.workers)} Celery "
                  f"worker(s). Trigger it with "
                  '{"submitted": "/path/to/submitted", "out": "/path/to/out"}.')
        elif args.action == "stop":
            cluster.stop()
        else:
            print(cluster.status())
    except cluster.ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _lab(args: argparse.Namespace, paths: LabPaths) -> int:
    """Airflow and JupyterLab together, until Ctrl-C."""

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    # Ctrl-C, a closed terminal or `kill` all end both servers (even where SIGINT came ignored).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)
    jupyter = None
    try:
        status = engine.start(paths, timeout=args.timeout)
        env = engine.airflow_env(paths)
        env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        # nbgrader's JupyterLab extensions read the course's settings from course/nbgrader_config.py;
        # its assignment list needs the exchange folder named there.
        (paths.root / ".cache" / "nbgrader" / "exchange").mkdir(parents=True, exist_ok=True)
        env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
            filter(None, [str(paths.root / "course"), env.get("JUPYTER_CONFIG_PATH")]))
        argv = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
                f"--ServerApp.root_dir={paths.root}", "--ServerApp.default_url=/lab/tree/notebooks",
                *(["--allow-root"] if os.geteuid() == 0 else []), *args.jupyter_args]
        print(status.report())
        print("Starting JupyterLab: open the http://127.0.0.1:... URL it prints below. "
              "Press Ctrl-C once to stop JupyterLab and Airflow.", flush=True)
        jupyter = subprocess.Popen(argv, env=env, cwd=paths.root, start_new_session=True)
        return jupyter.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if jupyter is not None and jupyter.poll() is None:
            os.killpg(jupyter.pid, signal.SIGTERM)
            try:
                jupyter.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(jupyter.pid, signal.SIGKILL)
        from course import orchestrators  # lesson 15 may have started Prefect and Dagster

        orchestrators.stop(paths=paths, quiet=True)
        engine.stop(paths)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    af = sub.add_parser("airflow", help="start, stop or inspect the embedded Airflow")
    af.add_argument("action", choices=["start", "stop", "status", "logs"])
    af.add_argument("component", nargs="?", help="with logs: scheduler, dag_processor, "
                    "triggerer, api_server or standalone")
    af.add_argument("-n", "--lines", type=int, default=40)
    af.add_argument("--timeout", type=float, default=engine.START_TIMEOUT)
    af.set_defaults(func=_airflow)
    mail = sub.add_parser("mail", help="list the mail the lab's SMTP sink received")
    mail.add_argument("-n", "--count", type=int, default=None)
    mail.add_argument("--body", action="store_true", help="print message bodies too")
    mail.set_defaults(func=_mail)
    orch = sub.add_parser("orchestrators", help="start, stop or inspect the Prefect server and "
                          "Dagster UI of lesson 15")
    orch.add_argument("action", choices=["start", "stop", "status"])
    orch.add_argument("name", nargs="?", choices=["prefect", "dagster"], help="one of them (default: both)")
    orch.add_argument("--timeout", type=float, default=120.0)
    orch.set_defaults(func=_orchestrators)
    cl = sub.add_parser("cluster", help="Airflow on the CeleryExecutor (Redis, PostgreSQL, N "
                        "workers) for grading a class")
    cl.add_argument("action", choices=["start", "stop", "status"])
    cl.add_argument("--workers", type=int, default=2)
    cl.add_argument("--concurrency", type=int, default=1, help="tasks at once per worker")
    cl.add_argument("--postgres-url", default=None, help="a PostgreSQL server and a role that may "
                    "create databases, e.g. postgresql://USER:PASSWORD@127.0.0.1:5432/postgres "
                    "(default: $COURSE_POSTGRES_URL)")
    cl.add_argument("--timeout", type=float, default=300.0)
    cl.set_defaults(func=_cluster)
    lab = sub.add_parser("lab", help="Airflow and JupyterLab together; Ctrl-C stops both")
    lab.add_argument("--timeout", type=float, default=engine.START_TIMEOUT)
    lab.set_defaults(func=_lab)
    # Unknown options of `lab` go to JupyterLab, e.g. `python -m course lab --ServerApp.port=9999`.
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "lab":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.jupyter_args = extra
    try:
        return args.func(args, LabPaths.default())
    except engine.LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
