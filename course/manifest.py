"""The course manifest (course/course.yml): lessons in order, their objectives and exercises.

Each objective names the graded questions that exercise it, by their nbgrader ``grade_id``::

    objectives:
      - text: Read and write cron schedules and presets
        cells: [l08_q1_answer, l08_q3_answer]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from course.paths import REPO_ROOT

MANIFEST = Path(__file__).resolve().parent / "course.yml"
OBJECTIVE_FORMAT = """\
    objectives:
      - text: {text}
        cells: [l{number}_q1_answer, l{number}_q2_answer]"""


class ManifestError(ValueError):
    """course.yml does not say what a lesson needs, in the form readers expect."""


@dataclass(frozen=True)
class Objective:
    """What a learner can do after a lesson, and the graded questions (grade_ids) that check it."""

    text: str
    cells: tuple[str, ...]

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Lesson:
    slug: str
    title: str
    objectives: tuple[Objective, ...]
    exercises: tuple[str, ...]

    @property
    def notebook(self) -> Path:
        return REPO_ROOT / "notebooks" / f"{self.slug}.ipynb"


def lessons(path: Path = MANIFEST) -> list[Lesson]:
    """Every lesson of the manifest, in course order."""
    data = yaml.safe_load(path.read_text())
    found = []
    for entry in data["lessons"]:
        exercise = entry.get("exercise") or []
        found.append(Lesson(slug=entry["slug"], title=entry["title"],
                            objectives=tuple(_objective(path, entry["slug"], item)
                                             for item in entry.get("objectives") or []),
                            exercises=tuple([exercise] if isinstance(exercise, str) else exercise)))
    return found


def _objective(path: Path, slug: str, item: object) -> Objective:
    """One objective entry: a mapping with its `text` and the `cells` (grade_ids) that grade it."""
    where = f"{path.name}, lesson {slug}"
    if isinstance(item, str):
        raise ManifestError(f"{where}: the objective {item!r} names no graded cells. Write it as "
                            f"`text:` plus the `cells:` (nbgrader grade_ids) that exercise it:\n"
                            f"{OBJECTIVE_FORMAT.format(text=item, number=slug[:2])}")
    if not isinstance(item, dict) or set(item) != {"text", "cells"}:
        example = OBJECTIVE_FORMAT.format(text="Read and write cron schedules", number=slug[:2])
        raise ManifestError(f"{where}: an objective has exactly the keys `text` and `cells`, got "
                            f"{item!r}. For example:\n{example}")
    text, cells = item["text"], item["cells"]
    if not isinstance(text, str) or not text.strip():
        raise ManifestError(f"{where}: the objective's `text` must be a sentence, got {text!r}")
    if not isinstance(cells, list) or not all(isinstance(cell, str) for cell in cells):
        raise ManifestError(f"{where}: the `cells` of {text!r} must be a list of grade_ids such as "
                            f"[l{slug[:2]}_q1_answer], got {cells!r}")
    return Objective(text=text, cells=tuple(cells))
