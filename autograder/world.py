"""The outside world a graded DAG talks to: a real SMTP sink and a real warehouse database."""

from __future__ import annotations

import errno
import json
import secrets
import socket
import sqlite3
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
        if not self.path.exists():
            raise LookupError(f"nothing was written to the warehouse (no table {table!r})")
        with sqlite3.connect(self.path) as db:
            db.row_factory = sqlite3.Row
            try:
                return [dict(r) for r in db.execute(f'SELECT * FROM "{table}"')]
            except sqlite3.OperationalError as exc:
                raise LookupError(f"the warehouse has no table {table!r} ({exc})") from exc


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
        import psycopg2.extras

        conn = psycopg2.connect(host=self.url.hostname, port=self.url.port or 5432,
                                user=self.url.username, password=self.url.password,
                                dbname=self.database)
        try:
            with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                try:
                    cur.execute(f'SELECT * FROM "{table}"')
                except psycopg2.Error as exc:
                    raise LookupError(f"the warehouse has no table {table!r} "
                                      f"({str(exc).strip().splitlines()[0]})") from exc
                return [dict(r) for r in cur.fetchall()]
        finally:
            conn.close()


def warehouse_for(url: str | None, folder: Path) -> SqliteWarehouse | PostgresWarehouse:
    return PostgresWarehouse(url) if url else SqliteWarehouse(folder)


def conn_env(conn_id: str, conn: dict) -> tuple[str, str]:
    """An ``AIRFLOW_CONN_*`` variable; JSON because SQLite URIs are awkward."""
    return f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn)
