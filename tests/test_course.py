"""The course manifest is the table of contents: every entry exists in every tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autograder.exercises import all_exercises
from course.manifest import ManifestError, lessons

ROOT = Path(__file__).resolve().parent.parent


def test_lessons_are_numbered_in_order():
    slugs = [lesson.slug for lesson in lessons()]
    assert slugs == sorted(slugs)
    numbers = [int(s[:2]) for s in slugs]
    assert numbers[0] == 0 and len(set(numbers)) == len(numbers), numbers


def test_every_lesson_has_its_notebook_and_objectives():
    for lesson in lessons():
        assert lesson.notebook.is_file(), f"{lesson.slug}: missing {lesson.notebook}"
        assert lesson.objectives, f"{lesson.slug}: no objectives"


def test_every_exercise_exists_in_every_tree():
    graded = all_exercises()
    for lesson in lessons():
        for ex in lesson.exercises:
            assert (ROOT / "exercises" / ex / "README.md").is_file(), ex
            assert (ROOT / "exercises" / ex / "dag.py").is_file(), ex
            assert (ROOT / "solutions" / ex / "dag.py").is_file(), ex
            assert ex in graded, f"{ex}: no autograder/exercises/{ex}.py"
            assert len(list((ROOT / "tests" / "grader_cases" / ex).glob("*/expected.json"))) >= 6, ex


def test_every_exercise_belongs_to_one_lesson():
    # Exercise ids are names, not positions: lessons were renumbered (ex08 is lesson 13's, ex09
    # lesson 09's), so only each exercise's single place is checked.
    order = [ex for lesson in lessons() for ex in lesson.exercises]
    assert len(order) == len(set(order)), order


def test_nothing_graded_is_missing_from_the_manifest():
    listed = {ex for lesson in lessons() for ex in lesson.exercises}
    assert set(all_exercises()) == listed
    assert {p.name for p in (ROOT / "exercises").iterdir() if p.is_dir()} == listed


def questions_of(notebook: Path) -> list[str]:
    """The grade_ids of a notebook's graded questions: its nbgrader answer (solution) cells."""
    cells = json.loads(notebook.read_text())["cells"]
    return [cell["metadata"]["nbgrader"]["grade_id"] for cell in cells
            if cell.get("metadata", {}).get("nbgrader", {}).get("solution")]


def test_every_objective_names_graded_questions_of_its_notebook():
    for lesson in lessons():
        questions = questions_of(lesson.notebook)
        for objective in lesson.objectives:
            assert objective.cells, (
                f"course.yml, lesson {lesson.slug}: the objective {objective.text!r} has no graded cell; "
                f"name the questions that exercise it under `cells:` (this notebook has {questions})")
            unknown = [cell for cell in objective.cells if cell not in questions]
            assert not unknown, (
                f"course.yml, lesson {lesson.slug}: the objective {objective.text!r} names {unknown}, "
                f"which are not graded questions of {lesson.notebook.name} (it has {questions})")
        serving = {cell for objective in lesson.objectives for cell in objective.cells}
        idle = [question for question in questions if question not in serving]
        assert not idle, (f"{lesson.notebook.name}: the questions {idle} exercise no objective of "
                          f"course.yml; add them to an objective's `cells:`")


def test_an_objective_without_its_graded_cells_is_refused(tmp_path):
    manifest = tmp_path / "course.yml"
    manifest.write_text('lessons:\n  - slug: "08_scheduling"\n    title: Scheduling\n'
                        "    objectives:\n      - Read and write cron schedules\n    exercise: null\n")
    with pytest.raises(ManifestError, match=r"(?s)lesson 08_scheduling: the objective 'Read and write "
                                            r"cron schedules' names no graded cells.*- text: Read and write "
                                            r"cron schedules\n +cells: \[l08_q1_answer, l08_q2_answer\]"):
        lessons(manifest)
    manifest.write_text('lessons:\n  - slug: "08_scheduling"\n    title: Scheduling\n'
                        "    objectives:\n      - text: Read cron\n        cell: l08_q1_answer\n"
                        "    exercise: null\n")
    with pytest.raises(ManifestError, match="exactly the keys `text` and `cells`"):
        lessons(manifest)
    manifest.write_text('lessons:\n  - slug: "08_scheduling"\n    title: Scheduling\n'
                        "    objectives:\n      - text: Read cron\n        cells: l08_q1_answer\n"
                        "    exercise: null\n")
    with pytest.raises(ManifestError, match=r"must be a list of grade_ids such as \[l08_q1_answer\]"):
        lessons(manifest)


def test_a_lesson_reads_its_objectives_and_their_cells():
    scheduling = next(lesson for lesson in lessons() if lesson.slug == "08_scheduling")
    assert [(str(o), o.cells) for o in scheduling.objectives][0] == \
        ("Read and write cron schedules and presets", ("l08_q1_answer",))
