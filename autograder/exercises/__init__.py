"""The graded exercises: one module per exercise, named like its folder in ``exercises/``."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from autograder.checks import Check

HIDDEN = Path(__file__).resolve().parent.parent / "hidden"
EXERCISES = Path(__file__).resolve().parent.parent.parent / "exercises"


@dataclass(frozen=True)
class Exercise:
    """The contract of one exercise, as its README states it."""

    id: str
    title: str
    dag_id: str
    tasks: frozenset[str]
    edges: frozenset[tuple[str, str]]
    schedule: str
    schedule_text: str
    start_date: date
    catchup: bool
    checks: tuple[Check, ...]
    expected_from: Callable[[Path], dict[str, Any]] = field(default=lambda _: {})
    email_to: str = "team@company.com"
    warehouse_table: str | None = None
    runs: int = 1  # 2: run again on the next day, to see whether a re-run duplicates rows

    @property
    def hidden_data(self) -> Path:
        return HIDDEN / self.id / "data"

    @property
    def sample_data(self) -> Path:
        return EXERCISES / self.id / "data"

    @property
    def grading_data(self) -> Path:
        """The hidden data where the course has it; in a learner release, the sample data."""
        return self.hidden_data if self.hidden_data.exists() else self.sample_data


def all_exercises() -> dict[str, Exercise]:
    """Every exercise module's ``EXERCISE``, by id, in course order."""
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "EXERCISE"):
            found[module.EXERCISE.id] = module.EXERCISE
    return found


def find(name: str) -> Exercise:
    """An exercise by id or a unique prefix of it (``ex02``)."""
    exercises = all_exercises()
    if name in exercises:
        return exercises[name]
    matches = [e for key, e in exercises.items() if key.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(exercises)
    if matches:
        raise KeyError(f"{name!r} matches several exercises: "
                       f"{', '.join(m.id for m in matches)}. Give more of the id.")
    raise KeyError(f"No exercise {name!r}. Known exercises: {known}.")
