"""Notebook pictures without a lab: graph extraction and layout, run timelines, run-time tables."""

from __future__ import annotations

import io
from datetime import datetime, timezone

import matplotlib
import pytest

matplotlib.use("Agg")

from airflow.providers.standard.operators.empty import EmptyOperator  # noqa: E402
from airflow.sdk import DAG  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.text import Annotation  # noqa: E402

from course import display, lab  # noqa: E402

DIAMOND = [
    {"task_id": "extract", "downstream_task_ids": ["clean", "validate"]},
    {"task_id": "clean", "downstream_task_ids": ["load"]},
    {"task_id": "validate", "downstream_task_ids": ["load"]},
    {"task_id": "load", "downstream_task_ids": []},
]
FAN_OUT = [
    {"task_id": "extract_all", "downstream_task_ids": ["process_us", "process_eu", "process_apac"]},
    {"task_id": "process_us", "downstream_task_ids": ["report"]},
    {"task_id": "process_eu", "downstream_task_ids": ["report"]},
    {"task_id": "process_apac", "downstream_task_ids": ["report"]},
    {"task_id": "report", "downstream_task_ids": []},
]


class FakeClient:
    """Answers like lab.Client for one DAG and one run."""

    def __init__(self, tasks=None, task_instances=None):
        self._tasks, self._tis = tasks, task_instances
        self.calls = []

    def tasks(self, dag_id):
        self.calls.append(("tasks", dag_id))
        return self._tasks

    def task_instances(self, dag_id, run_id):
        self.calls.append(("task_instances", dag_id, run_id))
        return self._tis


def ti(task_id, state, start, end):
    return {"task_id": task_id, "state": state, "map_index": -1,
            "start_date": f"2023-10-01T03:00:{start:02d}Z" if start is not None else None,
            "end_date": f"2023-10-01T03:00:{end:02d}Z" if end is not None else None}


def texts(fig):
    return {text.get_text(): text for text in fig.axes[0].texts if not isinstance(text, Annotation)}


def rendered(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


# --- edges and layers ---------------------------------------------------------------------

def test_edges_of_rest_task_dicts():
    task_ids, edges = display.edges_of(DIAMOND)
    assert task_ids == ["extract", "clean", "validate", "load"]
    assert edges == [("extract", "clean"), ("extract", "validate"), ("clean", "load"), ("validate", "load")]


def test_edges_of_a_dag_object():
    with DAG(dag_id="diamond", schedule=None) as dag:
        extract, clean, validate, load = (EmptyOperator(task_id=name)
                                          for name in ("extract", "clean", "validate", "load"))
        extract >> [clean, validate] >> load
    task_ids, edges = display.edges_of(dag)
    assert task_ids == ["extract", "clean", "validate", "load"]
    assert sorted(edges) == sorted(display.edges_of(DIAMOND)[1])


def test_edges_of_a_dag_id_asks_the_lab(monkeypatch):
    fake = FakeClient(tasks=FAN_OUT)
    monkeypatch.setattr(lab, "client", lambda: fake)
    task_ids, edges = display.edges_of("regions")
    assert fake.calls == [("tasks", "regions")]
    assert task_ids[0] == "extract_all" and len(edges) == 6


def test_edges_of_rejects_what_is_not_a_task_list():
    with pytest.raises(ValueError, match="task_id"):
        display.edges_of([{"id": "extract"}])


def test_layers_of_a_diamond():
    assert display.layers(*display.edges_of(DIAMOND)) == {"extract": 0, "clean": 1, "validate": 1, "load": 2}


def test_layer_is_the_longest_path_not_the_shortest():
    edges = [("a", "b"), ("b", "c"), ("a", "c"), ("c", "d"), ("a", "d")]
    assert display.layers(["a", "b", "c", "d"], edges) == {"a": 0, "b": 1, "c": 2, "d": 3}


def test_layers_of_separate_chains_start_at_zero():
    assert display.layers(["a", "b", "x"], [("a", "b")]) == {"a": 0, "b": 1, "x": 0}


def test_a_cycle_is_named():
    with pytest.raises(ValueError, match="cycle") as error:
        display.layers(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "b")])
    assert "b, c" in str(error.value)


def test_an_edge_to_an_unknown_task_is_named():
    with pytest.raises(ValueError, match="ghost"):
        display.layers(["a"], [("a", "ghost")])


# --- dag_graph ------------------------------------------------------------------------------

def test_fan_out_stacks_parallel_tasks_in_one_column():
    fig = display.dag_graph(FAN_OUT, title="regions")
    boxes = texts(fig)
    assert set(boxes) == {"extract_all", "process_us", "process_eu", "process_apac", "report"}
    xs = {name: box.get_position()[0] for name, box in boxes.items()}
    ys = {name: box.get_position()[1] for name, box in boxes.items()}
    parallel = ["process_us", "process_eu", "process_apac"]
    assert {xs[name] for name in parallel} == {1.0}
    assert len({ys[name] for name in parallel}) == 3
    assert xs["extract_all"] == 0.0 and xs["report"] == 2.0
    assert fig.axes[0].get_title() == "regions"
    arrows = [text for text in fig.axes[0].texts if isinstance(text, Annotation)]
    assert len(arrows) == 6
    assert rendered(fig).startswith(b"\x89PNG")


def test_chain_keeps_one_row_and_titles_with_the_dag_id():
    with DAG(dag_id="chain", schedule=None) as dag:
        EmptyOperator(task_id="first") >> EmptyOperator(task_id="second")
    fig = display.dag_graph(dag)
    boxes = texts(fig)
    assert boxes["first"].get_position() == (0.0, 0.0)
    assert boxes["second"].get_position() == (1.0, 0.0)
    assert fig.axes[0].get_title() == "chain"


def test_dag_graph_of_a_dag_id(monkeypatch):
    monkeypatch.setattr(lab, "client", lambda: FakeClient(tasks=DIAMOND))
    fig = display.dag_graph("diamond")
    assert set(texts(fig)) == {"extract", "clean", "validate", "load"}
    assert fig.axes[0].get_title() == "diamond"


# --- gantt ----------------------------------------------------------------------------------

def bars(fig):
    """{task label: (left, width, facecolor)} read back from the drawn bars."""
    ax = fig.axes[0]
    labels = [tick.get_text() for tick in ax.get_yticklabels()]
    found = {}
    for bar in ax.patches:
        row = round(bar.get_y() + bar.get_height() / 2)
        found[labels[row]] = (bar.get_x(), bar.get_width(), bar.get_facecolor())
    return found


def test_gantt_bars_of_parallel_tasks_overlap():
    fig = display.gantt_figure([
        ti("extract", "success", 0, 5),
        ti("process_us", "success", 6, 16),
        ti("process_eu", "failed", 8, 12),
    ])
    drawn = bars(fig)
    assert drawn["extract"][:2] == (0.0, 5.0)
    assert drawn["process_us"][:2] == (6.0, 10.0)
    assert drawn["process_eu"][:2] == (8.0, 4.0)
    us_left, us_width, _ = drawn["process_us"]
    eu_left, eu_width, _ = drawn["process_eu"]
    assert eu_left < us_left + us_width and us_left < eu_left + eu_width  # they ran at the same time
    assert drawn["extract"][0] + drawn["extract"][1] <= us_left  # extract finished before
    assert drawn["process_eu"][2] == to_rgba("red")
    assert drawn["extract"][2] == to_rgba("green")
    assert "seconds since" in fig.axes[0].get_xlabel()
    assert rendered(fig).startswith(b"\x89PNG")


def test_gantt_skips_tasks_without_times_and_says_so():
    fig = display.gantt_figure([ti("extract", "success", 0, 5), ti("load", "upstream_failed", None, None),
                                ti("report", "running", 7, None)], title="etl")
    assert list(bars(fig)) == ["extract"]
    title = fig.axes[0].get_title()
    assert title.startswith("etl") and "load" in title and "report" in title


def test_gantt_with_no_finished_task():
    fig = display.gantt_figure([ti("load", None, None, None)])
    assert "load" in fig.axes[0].get_title()
    assert len(fig.axes[0].patches) == 0


def test_gantt_labels_mapped_instances_by_index():
    tis = [dict(ti("square", "success", 0, 2), map_index=0), dict(ti("square", "success", 1, 3), map_index=1)]
    assert list(bars(display.gantt_figure(tis))) == ["square[0]", "square[1]"]


def test_gantt_of_a_lab_run(monkeypatch):
    fake = FakeClient(task_instances=[ti("a", "success", 0, 4), ti("b", "success", 2, 6)])
    monkeypatch.setattr(lab, "client", lambda: fake)
    fig = display.gantt("etl", "manual__1")
    assert fake.calls == [("task_instances", "etl", "manual__1")]
    assert bars(fig)["b"][:2] == (2.0, 4.0)
    assert "etl" in fig.axes[0].get_title()


# --- next_runs_table ----------------------------------------------------------------------------

def test_next_runs_table():
    friday_evening = datetime(2023, 10, 6, 17, 50, tzinfo=timezone.utc)
    table = display.next_runs_table(["0 3 * * *", "*/15 9-17 * * 1-5", None], n=3, after=friday_evening)
    assert list(table.columns) == [
        "0 3 * * * — every day at 03:00 UTC",
        "*/15 9-17 * * 1-5 — every 15 minutes, between 09:00 and 17:59 UTC, Monday through Friday",
        "None — never, external triggers only",
    ]
    assert table.iloc[:, 0].tolist() == ["Sat 2023-10-07 03:00 UTC", "Sun 2023-10-08 03:00 UTC",
                                         "Mon 2023-10-09 03:00 UTC"]
    assert table.iloc[:, 1].tolist() == ["Mon 2023-10-09 09:00 UTC", "Mon 2023-10-09 09:15 UTC",
                                         "Mon 2023-10-09 09:30 UTC"]
    assert table.iloc[:, 2].tolist() == ["", "", ""]
    assert table.index.tolist() == [1, 2, 3]


def test_next_runs_table_of_one_schedule_string():
    table = display.next_runs_table("@daily", n=2, after=datetime(2023, 10, 1, tzinfo=timezone.utc))
    assert table.shape == (2, 1)
    assert table.iloc[0, 0] == "Mon 2023-10-02 00:00 UTC"


def test_run_graph_fills_each_task_with_its_state_colour(monkeypatch):
    from airflow.utils.state import State

    tis = [ti("extract", "success", 0, 2), ti("clean", "failed", 2, 3), ti("validate", "success", 2, 4),
           {"task_id": "load", "state": "upstream_failed", "map_index": -1, "start_date": None,
            "end_date": None}]
    monkeypatch.setattr(lab, "client", lambda: FakeClient(tasks=DIAMOND, task_instances=tis))
    fig = display.run_graph("diamond", "manual__1")
    boxes = texts(fig)
    assert fig.axes[0].get_title() == "diamond / manual__1"
    for task, state in [("extract", "success"), ("clean", "failed"), ("load", "upstream_failed")]:
        assert boxes[task].get_bbox_patch().get_facecolor() == to_rgba(State.color(state)), task
    legend = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert legend == ["success", "failed", "upstream_failed"], legend


def test_dag_graph_without_states_has_no_legend_and_a_task_never_run_says_so():
    fig = display.dag_graph(DIAMOND)
    assert fig.axes[0].get_legend() is None
    fig = display.dag_graph(DIAMOND, states={"extract": "success"})
    assert [text.get_text() for text in fig.axes[0].get_legend().get_texts()] == ["success", "no status"]
