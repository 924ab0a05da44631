"""The course manifest (course/course.yml): lessons in order, their objectives and exercises."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from course.paths import REPO_ROOT

MANIFEST = Path(__file__).resolve().parent / "course.yml"


@dataclass(frozen=True)
class Lesson:
    slug: str
    title: str
    objectives: tuple[str, ...]
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
                            objectives=tuple(entry.get("objectives", [])),
                            exercises=tuple([exercise] if isinstance(exercise, str) else exercise)))
    return found
