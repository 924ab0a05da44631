"""The outside world a graded DAG talks to: a real SMTP sink and a real warehouse database."""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import socket
import sqlite3
import stat
import tempfile
import time
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Collect:
    def __init__(self) -> None:
        self.mails: list[dict] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = message_from_bytes(envelope.content, policy=policy.default)
        body = msg.get_body(preferencelist=("html", "plain"))
        self.mails.append({
            "from": envelope.mail_from, "to": list(envelope.rcpt_tos),
            "subject": str(msg.get("Subject", "")),
            "body": body.get_content() if body is not None else "",
        })
        return "250 Message accepted for delivery"


class MailSink:
    """An aiosmtpd server on a free loopback port that keeps every message it receives."""

    def __init__(self) -> None:
        self._handler = _Collect()
        self.port = 0

    def __enter__(self) -> MailSink:
        for attempt in range(5):
            # A port found free can be taken by another process before the sink binds it.
            self.port = free_port()
            self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)
            try:
                self._controller.start()
                return self
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    @property
    def mails(self) -> list[dict]:
        return list(self._handler.mails)

    def connection(self) -> dict:
        return {"conn_type": "smtp", "host": "127.0.0.1", "port": self.port,
                "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 10,
                          "from_email": "airflow@course.local"}}


class SqliteWarehouse:
    """A fresh SQLite file per submission."""

    kind = "SQLite"

    def __init__(self, folder: Path) -> None:
        self.path = folder / "warehouse.db"

    def __enter__(self) -> SqliteWarehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def connection(self) -> dict:
        return {"conn_type": "sqlite", "host": str(self.path)}

    def rows(self, table: str) -> list[dict]:
        return sqlite_rows(self.path, table)


MAX_ROWS = 10_000      # rows of a warehouse table the grader reads; an exercise needs a few dozen
READ_SECONDS = 10.0    # how long that read may take
MAX_VALUE = 1 << 20    # bytes of one text or blob value


def sqlite_rows(path: Path, table: str, max_rows: int = MAX_ROWS,
                seconds: float = READ_SECONDS) -> list[dict]:
    """Every row of ``table`` in the SQLite file at ``path``, which learner code wrote (and may
    have made a link, a view without end, or no database at all): read once the sandbox has
    ended, from a private copy of the regular file, at most ``max_rows`` rows within ``seconds``.
    A file that cannot be read so raises ``LookupError`` saying why."""
    with tempfile.TemporaryDirectory(prefix="warehouse-", dir=path.parent.parent) as private:
        copy = Path(private) / path.name
        for suffix in ("", "-wal"):  # a connection left open in WAL mode keeps its rows there
            try:
                fd = os.open(f"{path}{suffix}", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except FileNotFoundError:
                if suffix:
                    continue
                raise LookupError(f"nothing was written to the warehouse (no table {table!r})") from None
            except OSError as exc:  # ELOOP: a symbolic link, which the grader would follow
                raise LookupError(f"the warehouse file {path.name}{suffix} was replaced by a link "
                                  f"({exc.strerror})") from None
            with os.fdopen(fd, "rb") as source:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise LookupError(f"the warehouse file {path.name}{suffix} was replaced by "
                                      "something that is not a file")
                with open(f"{copy}{suffix}", "wb") as target:
                    shutil.copyfileobj(source, target)
        db = sqlite3.connect(copy)
        try:
            db.execute("PRAGMA trusted_schema = OFF")  # a view may call only harmless functions
            db.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE)
            deadline = time.monotonic() + seconds
            db.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
            db.row_factory = sqlite3.Row
            got = db.execute(f'SELECT * FROM "{table}" LIMIT {max_rows + 1}').fetchall()
        except sqlite3.Error as exc:
            if time.monotonic() > deadline:
                raise LookupError(f"reading the table {table!r} took longer than {seconds:.0f} s "
                                  "(is it a view without end?)") from None
            if isinstance(exc, sqlite3.OperationalError) and "no such table" in str(exc):
                raise LookupError(f"the warehouse has no table {table!r}") from None
            raise LookupError(f"the warehouse cannot be read ({exc})") from None
        finally:
            db.close()
        if len(got) > max_rows:
            raise LookupError(f"the table {table!r} has more than {max_rows} rows, and the "
                              "exercise needs a few")
        return [dict(r) for r in got]


STALE_SECONDS = 24 * 3600  # a grading never lasts a day: older grade_* roles are a killed grader's


class WarehouseSetupError(RuntimeError):
    """The PostgreSQL warehouse cannot be prepared; the message says what to run."""


class PostgresWarehouse:
    """A database and a role of its own per submission on a PostgreSQL server, both dropped after.

    The submission's tasks log in as the role ``grade_<created, hex>_<random hex>``, which owns
    only its database (no other role may connect to it), may not create databases or roles, and
    is no member of the grader's role: it cannot reach a classmate's database, end the grader's
    sessions or read their queries. The grader's role needs CREATEDB and CREATEROLE.
    """

    kind = "PostgreSQL"

    def __init__(self, url: str) -> None:
        self.url = urlparse(url)
        self.role = f"grade_{int(time.time()):08x}_{secrets.token_hex(4)}"
        self.database = self.role
        self.password = secrets.token_hex(16)

    def _connect(self, dbname: str | None = None, user: str | None = None,
                 password: str | None = None, **options: Any):
        import psycopg2

        return psycopg2.connect(host=self.url.hostname, port=self.url.port or 5432,
                                user=user or self.url.username,
                                password=password if user else self.url.password,
                                dbname=dbname or (self.url.path or "/postgres").lstrip("/")
                                or "postgres", connect_timeout=10, **options)

    def _admin(self):
        conn = self._connect()
        conn.autocommit = True
        return conn

    def __enter__(self) -> PostgresWarehouse:
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                problem = _lacks(cur)
                if problem:
                    raise WarehouseSetupError(problem)
                _drop_stale(cur)
                try:
                    cur.execute(f'CREATE ROLE "{self.role}" LOGIN PASSWORD %s NOSUPERUSER NOCREATEDB '
                                f"NOCREATEROLE CONNECTION LIMIT {CONNECTION_LIMIT}",
                                (self.password,))
                    # the grader may then create the database owned by the role, read and drop it
                    cur.execute(f'GRANT "{self.role}" TO CURRENT_USER')
                    cur.execute(f'CREATE DATABASE "{self.database}" OWNER "{self.role}"')
                    cur.execute(f'REVOKE ALL ON DATABASE "{self.database}" FROM PUBLIC')
                except BaseException:
                    _drop(cur, self.role)
                    raise
        finally:
            conn.close()
        return self

    def __exit__(self, *exc: object) -> None:
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                _drop(cur, self.role)
        finally:
            conn.close()

    def connection(self) -> dict:
        return {"conn_type": "postgres", "host": self.url.hostname or "localhost",
                "port": self.url.port or 5432, "login": self.role,
                "password": self.password, "schema": self.database}

    def rows(self, table: str) -> list[dict]:
        import psycopg2
        import psycopg2.errors
        import psycopg2.extras

        conn = self._admin()  # the run is over: its sessions leave room for the reading one
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE usename = %s", (self.role,))
                # a role may change its own password and session defaults: undo that first
                cur.execute(f'ALTER ROLE "{self.role}" PASSWORD %s', (self.password,))
                cur.execute(f'ALTER ROLE "{self.role}" RESET ALL')
                cur.execute(f'ALTER ROLE "{self.role}" IN DATABASE "{self.database}" RESET ALL')
                cur.execute(f'ALTER DATABASE "{self.database}" RESET ALL')
        finally:
            conn.close()
        # read as the submission's role: a view or function of its own runs with its rights only
        try:
            conn = self._connect(self.database, self.role, self.password,
                                 options=f"-c statement_timeout={int(READ_SECONDS * 1000)}")
        except psycopg2.Error as exc:
            raise LookupError(f"the warehouse cannot be read ({str(exc).strip()})") from None
        try:
            with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                try:
                    cur.execute(f'SELECT * FROM "{table}" LIMIT {MAX_ROWS + 1}')
                except psycopg2.errors.QueryCanceled:
                    raise LookupError(f"reading the table {table!r} took longer than "
                                      f"{READ_SECONDS:.0f} s (is it a view without end?)") from None
                except psycopg2.Error as exc:
                    raise LookupError(f"the warehouse has no table {table!r} "
                                      f"({str(exc).strip().splitlines()[0]})") from exc
                got = [dict(r) for r in cur.fetchall()]
        finally:
            conn.close()
        if len(got) > MAX_ROWS:
            raise LookupError(f"the table {table!r} has more than {MAX_ROWS} rows, and the "
                              "exercise needs a few")
        return got


CONNECTION_LIMIT = 8


def _lacks(cur: Any) -> str | None:
    """What the grader's role lacks to give each submission a database and a role, and the fix."""
    cur.execute("SELECT current_user, rolcreaterole OR rolsuper, rolcreatedb OR rolsuper "
                "FROM pg_roles WHERE rolname = current_user")
    user, createrole, createdb = cur.fetchone()
    lacks = [name for name, has in (("CREATEDB", createdb), ("CREATEROLE", createrole)) if not has]
    if not lacks:
        return None
    return (f"The warehouse's PostgreSQL role {user!r} lacks {' and '.join(lacks)}: the grader gives "
            "each submission a database and a role of its own. Run, as a superuser: "
            f'ALTER ROLE "{user}" CREATEDB CREATEROLE;  (e.g. '
            f"`sudo -u postgres psql -c 'ALTER ROLE \"{user}\" CREATEDB CREATEROLE'`).")


def warehouse_problem(url: str | None) -> str | None:
    """Why the warehouse of ``url`` cannot be used for grading, with the fix; None if it can."""
    if not url:
        return None
    import psycopg2

    try:
        conn = PostgresWarehouse(url)._admin()
    except psycopg2.Error as exc:
        return (f"Cannot connect to the warehouse's PostgreSQL server: {str(exc).strip()}. Is it "
                "running, and are the role and password of AUTOGRADER_WAREHOUSE_URL right?")
    try:
        with conn.cursor() as cur:
            return _lacks(cur)
    finally:
        conn.close()


_GRADE_NAME = re.compile(r"grade_([0-9a-f]{8})_[0-9a-f]{8}")


def _drop(cur: Any, role: str) -> None:
    """Drop a submission's database (ending its sessions) and then its role."""
    cur.execute(f'DROP DATABASE IF EXISTS "{role}" WITH (FORCE)')
    cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
    cur.execute(f'DROP ROLE IF EXISTS "{role}"')


def _drop_stale(cur: Any) -> None:
    """Drop the roles and databases a grader killed more than a day ago left behind."""
    cur.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'grade\\_%'")
    now = time.time()
    for (name,) in cur.fetchall():
        match = _GRADE_NAME.fullmatch(name)
        if match and now - int(match.group(1), 16) > STALE_SECONDS:
            try:
                cur.execute(f'GRANT "{name}" TO CURRENT_USER')
                _drop(cur, name)
            except Exception:  # another grader's cleanup, or a role this one may not drop
                continue


def warehouse_for(url: str | None, folder: Path) -> SqliteWarehouse | PostgresWarehouse:
    return PostgresWarehouse(url) if url else SqliteWarehouse(folder)


def conn_env(conn_id: str, conn: dict) -> tuple[str, str]:
    """An ``AIRFLOW_CONN_*`` variable; JSON because SQLite URIs are awkward."""
    return f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn)
