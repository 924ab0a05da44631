"""The course manifest is the table of contents: every entry exists in every tree."""

from __future__ import annotations

from pathlib import Path

from autograder.exercises import all_exercises
from course.manifest import lessons

ROOT = Path(__file__).resolve().parent.parent


def test_lessons_are_numbered_in_order():
    slugs = [lesson.slug for lesson in lessons()]
    assert slugs == sorted(slugs)
    assert [int(s[:2]) for s in slugs] == list(range(len(slugs)))


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


def test_section_exercises_share_the_notebook_number():
    for lesson in lessons():
        for ex in lesson.exercises:
            if lesson.slug != "09_exercises":
                assert ex[2:4] == lesson.slug[:2], (ex, lesson.slug)


def test_nothing_graded_is_missing_from_the_manifest():
    listed = {ex for lesson in lessons() for ex in lesson.exercises}
    assert set(all_exercises()) == listed
    assert {p.name for p in (ROOT / "exercises").iterdir() if p.is_dir()} == listed
