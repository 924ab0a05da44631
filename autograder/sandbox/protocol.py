"""The messages that cross the trust boundary, as typed dicts, and their validation.

Everything a sandboxed process sends is untrusted: it is read with a size cap, parsed as JSON and
checked against these shapes before the grading process uses a single field. A message that does
not fit gets a verdict ("the file's process sent something the grader cannot read"), never a
crash.
"""

from __future__ import annotations

import json
import os
import select
import time
from typing import Any, TypedDict

MAX_PARSE_BYTES = 8 << 20     # a serialized DAG of thousands of tasks fits easily
MAX_ADVICE_BYTES = 256 << 10  # what a task says about its own failure
MAX_TEXT = 4000               # one message or traceback as shown to the learner


class Malformed(ValueError):
    """A sandboxed process sent data of the wrong shape or size."""


class ErrorDict(TypedDict, total=False):
    type: str
    message: str
    line: int | None
    code: str | None
    traceback: str


class ParseResult(TypedDict, total=False):
    """From the parse sandbox: the DAGs the file defines, the one to grade serialized."""

    ok: bool
    error: ErrorDict
    dag_ids: list[str]
    dag_id: str | None
    serialized: dict[str, Any] | None
    others: dict[str, dict[str, Any]]  # other DAGs the grader asked for, serialized


class TaskAdvice(TypedDict, total=False):
    """From a task's sandbox: the learner's exception, located in their file (messages only)."""

    error: ErrorDict


def read_capped(fd: int, limit: int, deadline: float) -> bytes:
    """Read ``fd`` to its end, at most ``limit`` bytes, until ``deadline`` (monotonic)."""
    data = _read_up_to(fd, limit + 1, deadline)
    if len(data) > limit:
        raise Malformed(f"more than {limit >> 20} MB")
    return data


def read_frame(fd: int, limit: int, deadline: float) -> bytes:
    """One length-prefixed message from ``fd`` (8 bytes, big-endian, then the data); ``b""`` when
    the writer ended before sending one."""
    header = _read_up_to(fd, 8, deadline)
    if len(header) < 8:
        return b""
    size = int.from_bytes(header, "big")
    if size > limit:
        raise Malformed(f"more than {limit >> 20} MB")
    data = _read_up_to(fd, size, deadline)
    if len(data) < size:
        raise Malformed("the message ended early")
    return data


def _read_up_to(fd: int, size: int, deadline: float) -> bytes:
    """``size`` bytes of ``fd``, or fewer if it ends first; TimeoutError at ``deadline``."""
    chunks, got = [], 0
    while got < size:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        data = os.read(fd, min(size - got, 1 << 20))
        if not data:
            break
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


class LauncherMessage(TypedDict, total=False):
    """From a submission's task launcher: a task's process started, failed to start, or ended."""

    hello: int
    started: int
    pid: int
    exited: int
    code: int
    failed: int
    reason: str


def launcher_message(raw: bytes) -> LauncherMessage:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Malformed("not JSON") from exc
    if not isinstance(data, dict):
        raise Malformed("not an object")
    for name in ("hello", "started", "pid", "exited", "code", "failed"):
        value = data.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise Malformed(f"{name} is not a number")
    if "exited" in data and "code" not in data:
        raise Malformed("an exit without its code")
    message = LauncherMessage(**{k: data[k] for k in ("hello", "started", "pid", "exited", "code",
                                                      "failed") if k in data})
    if "failed" in data:
        message["reason"] = _text(data.get("reason", ""), 500)
    return message


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise Malformed("a text field is not text")
    return value[:limit]


def error_dict(value: Any) -> ErrorDict:
    if not isinstance(value, dict):
        raise Malformed("an error is not an object")
    line = value.get("line")
    if line is not None and (not isinstance(line, int) or isinstance(line, bool)):
        raise Malformed("an error's line is not a number")
    code = value.get("code")
    return ErrorDict(type=_text(value.get("type", "Error"), 200), message=_text(value.get("message", "")),
                     line=line, code=None if code is None else _text(code, 500),
                     traceback=_text(value.get("traceback", "")))


def parse_result(raw: bytes) -> ParseResult:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Malformed("not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("ok"), bool):
        raise Malformed("not a parse result")
    if not data["ok"]:
        return ParseResult(ok=False, error=error_dict(data.get("error")))
    dag_ids = data.get("dag_ids")
    if not isinstance(dag_ids, list) or not all(isinstance(d, str) for d in dag_ids):
        raise Malformed("dag ids are not a list of texts")
    dag_id, serialized = data.get("dag_id"), data.get("serialized")
    if dag_id is not None and (not isinstance(dag_id, str) or dag_id not in dag_ids):
        raise Malformed("the chosen DAG is not among the file's DAGs")
    if (dag_id is None) != (serialized is None) or not isinstance(serialized, dict | None):
        raise Malformed("a serialized DAG is missing or not an object")
    others = data.get("others") or {}
    if not isinstance(others, dict) or not all(
            isinstance(k, str) and k in dag_ids and isinstance(v, dict) for k, v in others.items()):
        raise Malformed("the other DAGs are not serialized DAGs of the file")
    return ParseResult(ok=True, dag_ids=[d[:250] for d in dag_ids[:1000]], dag_id=dag_id,
                       serialized=serialized, others=others)


def task_advice(raw: bytes) -> TaskAdvice | None:
    """The last well-formed line of what a task said about its failure, if any."""
    for line in reversed(raw.splitlines()):
        try:
            data = json.loads(line)
            if isinstance(data, dict) and "error" in data:
                return TaskAdvice(error=error_dict(data["error"]))
        except (ValueError, UnicodeDecodeError, Malformed):
            continue
    return None
