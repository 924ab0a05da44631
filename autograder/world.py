"""The outside world a graded DAG talks to: a real SMTP sink and a real warehouse database."""

from __future__ import annotations

import errno
import json
import os
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


class PostgresWarehouse:
    """A fresh database per submission on a PostgreSQL server, dropped afterwards."""

    kind = "PostgreSQL"

    def __init__(self, url: str) -> None:
        self.url = urlparse(url)
        self.database = f"grade_{secrets.token_hex(6)}"

    def _admin(self):
        import psycopg2

        conn = psycopg2.connect(host=self.url.hostname, port=self.url.port or 5432,
                                user=self.url.username, password=self.url.password,
                                dbname=(self.url.path or "/postgres").lstrip("/") or "postgres")
        conn.autocommit = True
        return conn

    def __enter__(self) -> PostgresWarehouse:
        conn = self._admin()
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{self.database}"')
        conn.close()
        return self

    def __exit__(self, *exc: object) -> None:
        conn = self._admin()
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        conn.close()

    def connection(self) -> dict:
        return {"conn_type": "postgres", "host": self.url.hostname or "localhost",
                "port": self.url.port or 5432, "login": self.url.username,
                "password": self.url.password, "schema": self.database}

    def rows(self, table: str) -> list[dict]:
        import psycopg2
        import psycopg2.errors
        import psycopg2.extras

        conn = psycopg2.connect(host=self.url.hostname, port=self.url.port or 5432,
                                user=self.url.username, password=self.url.password,
                                dbname=self.database,
                                options=f"-c statement_timeout={int(READ_SECONDS * 1000)}")
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


def warehouse_for(url: str | None, folder: Path) -> SqliteWarehouse | PostgresWarehouse:
    return PostgresWarehouse(url) if url else SqliteWarehouse(folder)


def conn_env(conn_id: str, conn: dict) -> tuple[str, str]:
    """An ``AIRFLOW_CONN_*`` variable; JSON because SQLite URIs are awkward."""
    return f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn)
