"""Pictures and tables for notebooks: a DAG's shape, a run's timeline, a schedule's next runs.

    from course import display
    display.dag_graph("hello")                  # boxes and arrows, left to right
    display.run_graph("hello", run["dag_run_id"])  # the same, each task coloured by its state
    display.gantt("hello", run["dag_run_id"])   # which tasks ran when, and in parallel
    display.next_runs_table(["@daily", "0 3 * * *"])

Every picture is a matplotlib ``Figure`` made without pyplot: Jupyter shows the returned figure
once, inline, and nothing stays registered in pyplot's global list of open figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure
from matplotlib.patches import Patch

if TYPE_CHECKING:
    import pandas

BOX_STYLE = {"boxstyle": "round,pad=0.4", "facecolor": "#e8f0fe", "edgecolor": "#3b6fb6"}


# --- graph --------------------------------------------------------------------------------

def edges_of(dag_or_tasks: Any) -> tuple[list[str], list[tuple[str, str]]]:
    """Task ids and (upstream, downstream) edges of a dag_id, REST task dicts or a DAG object."""
    if isinstance(dag_or_tasks, str):
        from course import lab

        dag_or_tasks = lab.client().tasks(dag_or_tasks)
    if hasattr(dag_or_tasks, "task_dict"):
        downstream = {task_id: sorted(task.downstream_task_ids)
                      for task_id, task in dag_or_tasks.task_dict.items()}
    elif isinstance(dag_or_tasks, Iterable) and not isinstance(dag_or_tasks, Mapping):
        downstream = {}
        for task in dag_or_tasks:
            if not isinstance(task, Mapping) or "task_id" not in task:
                raise ValueError(f"Expected task dicts with 'task_id' and 'downstream_task_ids' (as "
                                 f"lab.client().tasks(dag_id) returns), got {task!r}.")
            downstream[task["task_id"]] = list(task.get("downstream_task_ids") or [])
    else:
        raise ValueError(f"Cannot read tasks from {type(dag_or_tasks).__name__}: pass a dag_id, a list "
                         "of task dicts from the REST API, or a DAG object.")
    task_ids = list(downstream)
    task_ids += [down for downs in downstream.values() for down in downs if down not in downstream]
    edges = [(up, down) for up, downs in downstream.items() for down in downs]
    return list(dict.fromkeys(task_ids)), edges


def layers(task_ids: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Layer of each task: the length of the longest path to it from a task with no upstream."""
    unknown = sorted({task for edge in edges for task in edge} - set(task_ids))
    if unknown:
        raise ValueError(f"Edges mention tasks that are not in the task list: {', '.join(unknown)}.")
    upstream_count = dict.fromkeys(task_ids, 0)
    downstream: dict[str, list[str]] = {task: [] for task in task_ids}
    for up, down in edges:
        upstream_count[down] += 1
        downstream[up].append(down)
    layer = dict.fromkeys(task_ids, 0)
    ready = [task for task in task_ids if upstream_count[task] == 0]
    done = 0
    while ready:
        task = ready.pop()
        done += 1
        for down in downstream[task]:
            layer[down] = max(layer[down], layer[task] + 1)
            upstream_count[down] -= 1
            if upstream_count[down] == 0:
                ready.append(down)
    if done < len(task_ids):
        stuck = [task for task in task_ids if upstream_count[task] > 0]
        raise ValueError(f"The tasks contain a cycle, so they are not a DAG: {', '.join(stuck)} "
                         "each wait for one another.")
    return layer


def positions(task_ids: list[str], edges: list[tuple[str, str]]) -> dict[str, tuple[float, float]]:
    """(x, y) of each task: x is its layer, tasks of one layer are stacked around y = 0."""
    layer = layers(task_ids, edges)
    upstream: dict[str, list[str]] = {task: [] for task in task_ids}
    for up, down in edges:
        upstream[down].append(up)
    placed: dict[str, tuple[float, float]] = {}
    for x in range(max(layer.values(), default=-1) + 1):
        column = [task for task in task_ids if layer[task] == x]
        # Ordering a layer by the mean height of its upstream tasks keeps most arrows uncrossed.
        column.sort(key=lambda task: -_mean([placed[up][1] for up in upstream[task]], 0.0))
        for row, task in enumerate(column):
            placed[task] = (float(x), (len(column) - 1) / 2 - row)
    return placed


def _mean(values: list[float], default: float) -> float:
    return sum(values) / len(values) if values else default


def dag_graph(dag_or_tasks: Any, title: str | None = None,
              states: Mapping[str, str | None] | None = None) -> Figure:
    """Draw a DAG left to right: one column per layer, parallel tasks stacked in their column.

    With ``states`` ({task_id: state}, as ``lab.task_states`` returns), each task is filled with
    the colour the Airflow UI gives its state, and a legend names the states.
    """
    task_ids, edges = edges_of(dag_or_tasks)
    if title is None:
        title = dag_or_tasks if isinstance(dag_or_tasks, str) else getattr(dag_or_tasks, "dag_id", None)
    where = positions(task_ids, edges)
    columns = int(max((x for x, _ in where.values()), default=0)) + 1
    rows = max([sum(1 for x, _ in where.values() if x == col) for col in range(columns)] + [1])
    longest = max((len(task) for task in task_ids), default=8)
    fig = Figure(figsize=(max(4.0, columns * (1.0 + 0.11 * longest)), max(2.0, 0.8 * rows + 0.8)))
    ax = fig.subplots()
    ax.set_axis_off()
    if not task_ids:
        ax.text(0.5, 0.5, "no tasks", ha="center", va="center", transform=ax.transAxes)
    boxes = {task: ax.text(x, y, task, ha="center", va="center", fontsize=10, zorder=3,
                           bbox=BOX_STYLE if states is None else _state_box(states.get(task)))
             for task, (x, y) in where.items()}
    for up, down in edges:
        # Anchoring the arrow to the text boxes makes it end at their edges whatever the font size.
        skips = where[down][0] - where[up][0] > 1
        ax.annotate("", xy=(0.0, 0.5), xycoords=boxes[down], xytext=(1.0, 0.5), textcoords=boxes[up],
                    arrowprops={"arrowstyle": "-|>", "color": "#555555", "shrinkA": 2, "shrinkB": 2,
                                "connectionstyle": f"arc3,rad={-0.25 if skips else 0.0}"})
    ax.set_xlim(-0.6, columns - 0.4)
    ax.set_ylim(-rows / 2, rows / 2)
    if title:
        ax.set_title(title)
    if states is not None:
        shown = list(dict.fromkeys(str(states.get(task)) for task in task_ids))
        ax.legend(handles=[Patch(**_state_box(None if state == "None" else state, patch=True),
                                 label="no status" if state == "None" else state) for state in shown],
                  loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(shown), fontsize=8,
                  frameon=False)
    return fig


def run_graph(dag_id: str, run_id: str) -> Figure:
    """The DAG of one run of the lab, each task coloured by the state it has in that run."""
    from course import lab

    return dag_graph(lab.client().tasks(dag_id), title=f"{dag_id} / {run_id}",
                     states=lab.task_states(dag_id, run_id))


def _state_box(state: str | None, patch: bool = False) -> dict:
    """A box (or legend patch) filled with the Airflow UI's colour of a task state."""
    from airflow.utils.state import State

    fill = State.color(state)  # None: the UI's "no status"
    if patch:
        return {"facecolor": fill, "edgecolor": "#555555"}
    return {**BOX_STYLE, "facecolor": fill, "edgecolor": "#555555"}


# --- run timeline -------------------------------------------------------------------------

def gantt(dag_id: str, run_id: str) -> Figure:
    """Timeline of one run of the lab: which task ran when (see gantt_figure)."""
    from course import lab

    return gantt_figure(lab.client().task_instances(dag_id, run_id), title=f"{dag_id} / {run_id}")


def runs_gantt(dag_id: str, runs: list[dict], title: str | None = None) -> Figure:
    """Timeline of several runs of the lab (a backfill, a re-run): one bar per task of each run.

    Each bar is labelled with its run's logical date, so runs that ran side by side show as
    overlapping bars.
    """
    from course import lab

    c = lab.client()
    bars = []
    for run in sorted(runs, key=lambda r: r.get("logical_date") or ""):
        day = (run.get("logical_date") or run["dag_run_id"])[:10]
        for ti in c.task_instances(dag_id, run["dag_run_id"]):
            bars.append({**ti, "task_id": f"{day} {ti['task_id']}"})
    return gantt_figure(bars, title=title or f"{dag_id}: {len(runs)} runs")


def gantt_figure(task_instances: list[dict], title: str | None = None) -> Figure:
    """One bar per task instance from start to end, coloured by state, in seconds from the first start."""
    from airflow.utils.state import State  # the colours of Airflow's own UI

    timed, skipped = [], []
    for ti in task_instances:
        index = ti.get("map_index")
        label = ti["task_id"] if index is None or index < 0 else f"{ti['task_id']}[{index}]"
        if ti.get("start_date") and ti.get("end_date"):
            timed.append((_parse(ti["start_date"]), _parse(ti["end_date"]), label, ti.get("state")))
        else:
            skipped.append(label)
    timed.sort(key=lambda bar: (bar[0], bar[2]))
    fig = Figure(figsize=(8.0, max(2.0, 0.45 * len(timed) + 1.2)))
    ax = fig.subplots()
    heading = [title] if title else []
    if skipped:
        heading.append(f"not shown, never started or still running: {', '.join(skipped)}")
    if not timed:
        ax.text(0.5, 0.5, "no task has both a start and an end yet", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        ax.set_title("\n".join(heading))
        return fig
    origin = timed[0][0]
    for row, (start, end, _, state) in enumerate(timed):
        ax.barh(row, (end - start).total_seconds(), left=(start - origin).total_seconds(), height=0.6,
                color=State.color(state), edgecolor="black", linewidth=0.5)
    ax.set_yticks(range(len(timed)), [label for _, _, label, _ in timed])
    ax.invert_yaxis()  # first task on top, like the Airflow UI
    ax.set_xlabel(f"seconds since the first task started ({origin:%Y-%m-%d %H:%M:%S} UTC)")
    ax.grid(axis="x", alpha=0.3)
    states = list(dict.fromkeys(state for *_, state in timed))
    ax.legend(handles=[Patch(facecolor=State.color(state), edgecolor="black", label=str(state))
                       for state in states], loc="lower right", fontsize=8)
    if heading:
        ax.set_title("\n".join(heading), fontsize=10)
    fig.tight_layout()
    return fig


def _parse(stamp: str) -> datetime:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"Time {stamp!r} has no timezone; Airflow's API gives UTC times like "
                         "'2023-10-01T03:00:00Z'.")
    return moment


# --- schedules ----------------------------------------------------------------------------

def next_runs_table(schedules: Any, n: int = 5, after: datetime | None = None) -> pandas.DataFrame:
    """One column per schedule with its next ``n`` run times, e.g. 'Mon 2023-10-02 03:00 UTC'."""
    import pandas

    from course import schedules as timing

    if isinstance(schedules, str) or not isinstance(schedules, Iterable):
        schedules = [schedules]  # one schedule, not a list of its characters
    names, columns = [], []
    for schedule in schedules:
        names.append(f"{as_written(schedule)} — {timing.describe(schedule)}")
        times = [f"{moment:%a %Y-%m-%d %H:%M} UTC" for moment in timing.next_run_times(schedule, n, after)]
        columns.append(times + [""] * (n - len(times)))
    rows = [[column[row] for column in columns] for row in range(n)]
    table = pandas.DataFrame(rows, columns=names, index=pandas.RangeIndex(1, n + 1, name="run"))
    return table


def as_written(schedule: Any) -> str:
    """The schedule as one would type it in a DAG file: '@daily', 'timedelta(hours=2)', ..."""
    if isinstance(schedule, str):
        return schedule
    if schedule is None:
        return "None"
    if hasattr(schedule, "total_seconds"):
        return repr(schedule).removeprefix("datetime.")
    written = repr(schedule)
    summary = getattr(schedule, "summary", None)
    if written.startswith("<") and isinstance(summary, str):  # scheduler-side timetables lack a repr
        return f"{type(schedule).__name__}({summary!r})"
    return written


# --- assets -------------------------------------------------------------------------------

def asset_graph(names: Iterable[str] | None = None, title: str | None = "assets") -> Figure:
    """Which tasks update each asset of the lab, and which DAGs it schedules (``names``: only these)."""
    from course import lab

    wanted = None if names is None else set(names)
    downstream: dict[str, list[str]] = {}
    for asset in lab.client().get("/assets", limit=1000)["assets"]:
        if wanted is not None and asset["name"] not in wanted:
            continue
        node = f"Asset {asset['name']}"
        downstream.setdefault(node, [])
        for producer in asset["producing_tasks"]:
            downstream.setdefault(f"{producer['dag_id']}.{producer['task_id']}", []).append(node)
        downstream[node] += [f"DAG {consumer['dag_id']}" for consumer in asset["scheduled_dags"]]
    if wanted is not None and not downstream:
        raise ValueError(f"The lab has no asset named {', '.join(sorted(wanted))}: deploy the DAG that "
                         "declares it first.")
    tasks = [{"task_id": node, "downstream_task_ids": downs} for node, downs in downstream.items()]
    return dag_graph(tasks, title=title)
