"""What a grading run found out about a submission: plain data that the checks read.

The runner fills these in; nothing here runs learner code.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autograder.exercises import Exercise


@dataclass(frozen=True)
class ErrorInfo:
    """An exception raised by learner code, located in the learner's file when possible."""

    type: str
    message: str
    line: int | None = None
    code: str | None = None
    traceback: str = ""

    @classmethod
    def from_dict(cls, data: dict | None) -> ErrorInfo | None:
        return cls(**data) if data else None

    def describe(self, filename: str) -> str:
        """KeyError: 'amount' (dag.py, line 31: `return row['amount']`)."""
        text = f"{self.type}: {self.message}" if self.message else self.type
        if self.line:
            where = f"{filename}, line {self.line}"
            if self.code:
                where += f": `{self.code.strip()}`"
            text += f" ({where})"
        return text


@dataclass(frozen=True)
class TaskInfo:
    task_id: str
    operator: str
    retries: int | None
    retry_delay_s: float | None
    owner: str | None
    downstream: tuple[str, ...]
    trigger_rule: str = "all_success"
    outlets: tuple[str, ...] = ()  # the URIs of the assets the task updates
    sensor: bool = False
    reschedule: bool = False  # a sensor in mode="reschedule"


def dependency_order(tasks: Iterable[str], edges: Iterable[tuple[str, str]],
                     prefer: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The tasks in an order where each comes after every task it waits for. Of the tasks ready
    at the same time, those earlier in ``prefer`` come first, then the others by id. Tasks on a
    cycle come last, by id."""
    tasks = list(tasks)
    upstream: dict[str, set[str]] = {t: set() for t in tasks}
    downstream: dict[str, set[str]] = {t: set() for t in tasks}
    for a, b in edges:
        if a in upstream and b in upstream and a != b:
            upstream[b].add(a)
            downstream[a].add(b)
    rank = {t: i for i, t in enumerate(prefer)}

    def key(t: str) -> tuple[int, str]:
        return (rank.get(t, len(rank)), t)

    ready = [key(t) for t in tasks if not upstream[t]]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, t = heapq.heappop(ready)
        order.append(t)
        for d in downstream[t]:
            upstream[d].discard(t)
            if not upstream[d]:
                heapq.heappush(ready, key(d))
    return order + sorted(set(tasks) - set(order))


@dataclass(frozen=True)
class DagInfo:
    """The DAG as Airflow built it from the learner's file."""

    dag_id: str
    tasks: dict[str, TaskInfo]
    schedule: str
    schedule_text: str
    run_times: list[str]
    expected_run_times: list[str]
    start_date: str | None
    catchup: bool
    tags: tuple[str, ...] = ()
    description: str = ""
    schedule_assets: tuple[str, ...] = ()  # the URIs of the assets an asset schedule waits for
    schedule_any: bool = False  # any one of them starts a run (``a | b``), not all (a list)

    @classmethod
    def from_dict(cls, data: dict) -> DagInfo:
        tasks = {tid: TaskInfo(task_id=tid, **{**t, "downstream": tuple(t["downstream"]),
                                               "outlets": tuple(t.get("outlets", ()))})
                 for tid, t in data["tasks"].items()}
        return cls(**{**data, "tasks": tasks, "tags": tuple(data.get("tags", ())),
                      "schedule_assets": tuple(data.get("schedule_assets", ()))})

    def upstream(self, task_id: str) -> set[str]:
        """The tasks ``task_id`` waits for directly."""
        return {t.task_id for t in self.tasks.values() if task_id in t.downstream}

    @property
    def edges(self) -> set[tuple[str, str]]:
        return {(t.task_id, d) for t in self.tasks.values() for d in t.downstream}

    def path_between(self, start: str, end: str) -> list[str] | None:
        """A chain of tasks from ``start`` to ``end`` following dependencies, if there is one.

        Breadth-first with parent links: linear in tasks + edges, the shortest chain first.
        """
        parent: dict[str, str | None] = {start: None}
        queue = deque([start])
        while queue:
            here = queue.popleft()
            for nxt in sorted(self.tasks[here].downstream if here in self.tasks else ()):
                if nxt in parent:
                    continue
                parent[nxt] = here
                if nxt == end:
                    chain = [end]
                    while parent[chain[-1]] is not None:
                        chain.append(parent[chain[-1]])
                    return chain[::-1]
                queue.append(nxt)
        return None

    def dependency_order(self, prefer: list[str] | tuple[str, ...] = ()) -> list[str]:
        """Every task, upstream first; see ``dependency_order``."""
        return dependency_order(self.tasks, self.edges, prefer)

    def find_cycle(self) -> list[str] | None:
        """One cycle of dependencies as ``[a, b, ..., a]``, or None: one linear depth-first pass."""
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        for root in sorted(self.tasks):
            if root in state:
                continue
            path, stack = [root], [iter(sorted(self.tasks[root].downstream))]
            state[root] = 1
            while stack:
                nxt = next(stack[-1], None)
                if nxt is None:
                    state[path.pop()] = 2
                    stack.pop()
                elif state.get(nxt) == 1:
                    return [*path[path.index(nxt):], nxt]
                elif nxt not in state and nxt in self.tasks:
                    state[nxt] = 1
                    path.append(nxt)
                    stack.append(iter(sorted(self.tasks[nxt].downstream)))
        return None


@dataclass(frozen=True)
class RunInfo:
    """One `dag.test()` run: what the metadata database and the child process recorded."""

    state: str | None
    task_states: dict[str, str]
    xcoms: dict[str, Any]
    failures: dict[str, ErrorInfo]
    timed_out: str | None = None       # the phase that ran out of time
    running_tasks: tuple[str, ...] = ()
    crash: str | None = None            # how the process ended when it ended early
    error: ErrorInfo | None = None      # dag.test() itself raised
    xcom_keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> key -> value
    run_type: str = ""                  # manual, asset_triggered, ...
    # The asset events the run was created from: {"uri", "dag_id", "task_id", "run_id"} each.
    consumed: tuple[dict[str, Any], ...] = ()
    # The asset events each task recorded: task -> the URIs of the assets it updated.
    asset_events: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Seconds from a task's first start to its end, and how often a sensor was rescheduled.
    durations: dict[str, float] = field(default_factory=dict)
    reschedules: dict[str, int] = field(default_factory=dict)


@dataclass
class Facts:
    exercise: Exercise
    submission: Path
    filename: str
    source: str | None = None
    read_error: str | None = None
    syntax_error: ErrorInfo | None = None
    airflow2_idioms: list[dict] = field(default_factory=list)
    import_error: ErrorInfo | None = None
    import_timed_out: bool = False
    import_crash: str | None = None
    dag_ids: list[str] = field(default_factory=list)
    dag: DagInfo | None = None
    run: RunInfo | None = None
    rerun: RunInfo | None = None
    # The file's other DAGs that the exercise names (``Exercise.also_dags``), and the runs that
    # Airflow created for them from the graded run's asset events, oldest first.
    others: dict[str, DagInfo] = field(default_factory=dict)
    triggered: dict[str, list[RunInfo]] = field(default_factory=dict)
    warehouse_rows: list[dict] | None = None
    warehouse_error: str | None = None
    mails: list[dict] = field(default_factory=list)
    expected: dict[str, Any] = field(default_factory=dict)
    output_tail: str = ""
    not_isolated: str | None = None  # why learner code ran without the sandbox, when it did
    dags_folder: str = ""  # where the submission ran, to shorten paths in logs
    shown_as: str = ""  # the submission's path as the learner knows it, for hints
