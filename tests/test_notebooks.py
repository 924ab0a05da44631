"""The lesson notebooks: one per lesson of the manifest, stored clean, and every one of them runs.

The fast tests read the notebooks as files. The slow test starts one fresh lab in a temporary
Airflow home and executes every notebook top to bottom in a Jupyter kernel that gets the
environment `make lab` gives JupyterLab; a cell that raises fails the test.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

from course import engine, lab, manifest
from course.paths import HOME_ENV, REPO_ROOT, LabPaths

NOTEBOOKS = REPO_ROOT / "notebooks"
LESSONS = manifest.lessons()
SOLUTION_KEYS = {"grade": False, "solution": True, "locked": False, "schema_version": 3}
TEST_KEYS = {"grade": True, "solution": False, "locked": True, "schema_version": 3}
# Exercise DAG ids that lesson DAGs must never take.
EXERCISE_DAG_ID = re.compile(r"""dag_id\s*=\s*["']([\w.-]+)["']""")
NOTEBOOK_DAG_ID = re.compile(r"""dag_id\s*=\s*["']([\w.-]+)["']|@dag\b[^\n]*\n(?:\s*@.*\n)*\s*def (\w+)""")
DRAWS_FIGURE = re.compile(r"^display\.(dag_graph|gantt)\(")
CELL_TIMEOUT = 900  # seconds; grading every exercise in one cell is the slowest
LAB_PORT = 28080


def by_slug(lesson: manifest.Lesson) -> str:
    return lesson.slug


def read(lesson: manifest.Lesson) -> nbformat.NotebookNode:
    return nbformat.read(lesson.notebook, as_version=4)


def nbgrader(cell: nbformat.NotebookNode) -> dict:
    return cell.metadata.get("nbgrader", {})


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


# --- fast: the notebooks as files --------------------------------------------------------------

def test_every_lesson_has_its_notebook_and_there_are_no_others():
    expected = {lesson.notebook.name for lesson in LESSONS}
    found = {path.name for path in NOTEBOOKS.glob("*.ipynb")}
    assert found == expected, \
        f"missing: {sorted(expected - found)}, not in course.yml: {sorted(found - expected)}"


@pytest.mark.parametrize("lesson", LESSONS, ids=by_slug)
def test_notebook_opens_with_its_title_and_objectives(lesson):
    first = read(lesson).cells[0]
    assert first.cell_type == "markdown", f"{lesson.notebook.name} starts with a {first.cell_type} cell"
    head = first.source
    assert head.startswith("# ") and lesson.title in head.splitlines()[0], head.splitlines()[0]
    assert "**Objectives**" in head
    missing = [objective for objective in lesson.objectives if f"- {objective}" not in head]
    assert not missing, f"{lesson.notebook.name} does not list the objectives {missing} of course.yml"


@pytest.mark.parametrize("lesson", LESSONS, ids=by_slug)
def test_notebook_is_stored_without_outputs(lesson):
    dirty = [i for i, cell in enumerate(read(lesson).cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, f"{lesson.notebook.name}: cells {dirty} have outputs; clear them before saving"


@pytest.mark.parametrize("lesson", LESSONS, ids=by_slug)
def test_notebook_is_valid_and_every_code_cell_is_python(lesson):
    nb = read(lesson)
    nbformat.validate(nb)
    transform = TransformerManager().transform_cell
    for i, cell in enumerate(code_cells(nb)):
        compile(transform(cell.source), f"{lesson.notebook.name} cell {i}", "exec")
        if cell.source.startswith("%%writefile"):  # the cell's body is a DAG file: it must be Python too
            compile(cell.source.split("\n", 1)[1], f"{lesson.notebook.name} cell {i} (file)", "exec")


@pytest.mark.parametrize("lesson", LESSONS, ids=by_slug)
def test_notebook_ends_with_nbgrader_questions(lesson):
    nb = read(lesson)
    graded = [cell for cell in nb.cells if nbgrader(cell)]
    solutions = [cell for cell in graded if nbgrader(cell).get("solution")]
    tests = [cell for cell in graded if nbgrader(cell).get("grade")]
    assert solutions, "no nbgrader solution cell"
    assert tests, "no autograded test cell"
    for cell in solutions:
        meta = nbgrader(cell)
        assert {k: meta.get(k) for k in SOLUTION_KEYS} == SOLUTION_KEYS, meta
        assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source, meta["grade_id"]
    for cell in tests:
        meta = nbgrader(cell)
        assert {k: meta.get(k) for k in TEST_KEYS} == TEST_KEYS, meta
        assert meta.get("points", 0) > 0, meta
        assert "assert" in cell.source, f"{meta['grade_id']} tests nothing"
    assert any("### BEGIN HIDDEN TESTS" in cell.source for cell in tests), "no hidden tests"
    ids = [nbgrader(cell)["grade_id"] for cell in graded]
    assert len(ids) == len(set(ids)), f"duplicate grade_id in {ids}"
    heading = max(i for i, cell in enumerate(nb.cells)
                  if cell.cell_type == "markdown" and "## Check your understanding" in cell.source)
    first_graded = min(i for i, cell in enumerate(nb.cells) if nbgrader(cell))
    assert heading < first_graded, "the questions come after the '## Check your understanding' heading"
    assert len(solutions) <= 3, "1-3 questions per notebook"


@pytest.mark.parametrize("lesson", LESSONS, ids=by_slug)
def test_nbgrader_can_make_the_student_version(lesson):
    nb, resources = ClearSolutions().preprocess(read(lesson), {"language": "python"})
    nb, _ = ClearHiddenTests().preprocess(nb, resources)
    text = "\n".join(cell.source for cell in nb.cells)
    assert "### BEGIN SOLUTION" not in text and "### BEGIN HIDDEN TESTS" not in text
    assert "raise NotImplementedError()" in text
    for cell in nb.cells:
        if nbgrader(cell).get("solution"):
            compile(cell.source, nbgrader(cell)["grade_id"], "exec")


def test_lesson_dag_ids_carry_their_lesson_prefix_and_never_take_an_exercise_id():
    exercise_ids = {m for path in (REPO_ROOT / "exercises").glob("*/*.py")
                    for m in EXERCISE_DAG_ID.findall(path.read_text())}
    seen: dict[str, str] = {}
    for lesson in LESSONS:
        name, prefix = lesson.notebook.name, f"l{lesson.slug[:2]}_"
        for cell in code_cells(read(lesson)):
            for explicit, decorated in NOTEBOOK_DAG_ID.findall(cell.source):
                dag_id = explicit or decorated
                assert dag_id.startswith(prefix), f"{name}: DAG id {dag_id!r} should start with {prefix!r}"
                assert dag_id not in exercise_ids, f"{name}: {dag_id!r} is an exercise's DAG id"
                assert seen.setdefault(dag_id, lesson.slug) == lesson.slug, f"{dag_id!r} is in two notebooks"
    assert len(seen) >= 10, f"found only {sorted(seen)}: is the DAG id pattern still right?"


def test_exercises_notebook_names_only_exercises_of_the_manifest():
    known = {exercise for lesson in LESSONS for exercise in lesson.exercises}
    text = "\n".join(cell.source for cell in read(LESSONS[-1]).cells)
    named = set(re.findall(r"\bex\d\d_[a-z0-9_]+", text))
    assert named, "the exercises notebook names no exercise"
    assert named <= known, f"not in course.yml: {sorted(named - known)}"
    assert set(LESSONS[-1].exercises) <= named


# --- slow: run every notebook against one fresh lab ----------------------------------------------

@pytest.fixture(scope="module")
def notebook_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabPaths]:
    """A lab of its own in a temporary Airflow home, stopped (and checked) at the end."""
    paths = LabPaths.default(tmp_path_factory.mktemp("notebook-lab"))
    # Away from 8080 and up, where a learner's own lab (or another test run) listens.
    engine.start(paths, port=engine.free_port(LAB_PORT), progress=lambda *_: None)
    try:
        # The api-server on our port must be ours: a lab started at the same moment elsewhere
        # could have won the port, and would then answer the health check for us.
        client = lab.Client(paths)
        client.token()
        client.close()
        yield paths
    finally:
        engine.stop(paths, quiet=True)
    assert not engine.status(paths).running, "the lab still answers after engine.stop"


def kernel_env(paths: LabPaths) -> dict[str, str]:
    """What `make lab` gives JupyterLab, so its kernels: the lab's Airflow home and the repo on sys.path."""
    env = engine.airflow_env(paths)
    env[HOME_ENV] = str(paths.home)
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    return env


def error_outputs(nb: nbformat.NotebookNode) -> list[str]:
    return [f"{out.get('ename')}: {out.get('evalue')}" for cell in code_cells(nb)
            for out in cell.outputs if out.output_type == "error"]


def text_of(cell: nbformat.NotebookNode) -> str:
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif "data" in out:
            parts.append(out.data.get("text/plain", ""))
    return "".join(parts)


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS, ids=by_slug)
def test_notebook_runs_top_to_bottom(lesson, notebook_lab):
    state = engine.read_state(notebook_lab)
    nb = read(lesson)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    started = time.monotonic()
    try:
        client.execute(env=kernel_env(notebook_lab))
    except CellExecutionError as error:
        pytest.fail(f"{lesson.notebook.name}: a cell raised\n{str(error)[-4000:]}", pytrace=False)
    took = time.monotonic() - started

    cells = code_cells(nb)
    assert all(cell.execution_count for cell in cells), "some cells did not run"
    assert not error_outputs(nb), error_outputs(nb)
    shown = "".join(text_of(cell) + "".join(out.get("data", {}).get("text/markdown", "")
                                             for out in cell.outputs) for cell in cells)
    assert "could not grade" not in shown, "the exercises notebook failed to run the grader"
    if lesson.slug == "09_exercises":  # the starters, graded: each has a verdict with points
        assert shown.count("NOT YET") >= 8, shown[-3000:]
    # The notebook found the test's lab (COURSE_AIRFLOW_HOME reached the kernel) and did not restart it.
    setup = text_of(cells[0])
    assert f"running at {state.url}" in setup and str(notebook_lab.home) in setup, setup
    assert "Starting Airflow" not in setup, setup
    assert engine.read_state(notebook_lab) == state, "a notebook restarted the lab"
    # Pictures from course.display were drawn, not just printed as <Figure ...>.
    for cell in cells:
        if DRAWS_FIGURE.search(cell.source.strip().splitlines()[-1]):
            assert any("image/png" in out.get("data", {}) for out in cell.outputs), \
                f"{lesson.notebook.name}: no picture from\n{cell.source}"
    print(f"{lesson.notebook.name} ran in {took:.1f} s")
