"""The course manifest is the table of contents: every entry exists in every tree."""

from __future__ import annotations

from pathlib import Path

from autograder.exercises import all_exercises
from course.manifest import lessons

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


def test_exercises_come_in_the_order_of_their_lessons():
    order = [ex for lesson in lessons() for ex in lesson.exercises]
    assert len(order) == len(set(order)), order
    sections = [ex for lesson in lessons() if lesson.slug != "14_exercises" for ex in lesson.exercises]
    assert sections == sorted(sections), sections


def test_nothing_graded_is_missing_from_the_manifest():
    listed = {ex for lesson in lessons() for ex in lesson.exercises}
    assert set(all_exercises()) == listed
    assert {p.name for p in (ROOT / "exercises").iterdir() if p.is_dir()} == listed
