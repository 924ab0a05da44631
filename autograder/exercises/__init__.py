"""The graded exercises: one module per exercise, named like its folder in ``exercises/``."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from autograder.checks import Check

# The graded run is the first slot of the exercise's own schedule from this moment on: an afternoon
# hour, where a 12-hour clock (%I) and a 24-hour clock (%H) print different hours.
RUN_FROM = datetime.fromisoformat("2024-01-02T13:00:00+00:00")
HIDDEN = Path(__file__).resolve().parent.parent / "hidden"
EXERCISES = Path(__file__).resolve().parent.parent.parent / "exercises"


class SpecError(ValueError):
    """An exercise spec contradicts itself: raised when the registry loads."""


# One section of a README checklist: its heading (Markdown, "" for none), its lines, each with the
# ids of the checks that verify it, and a paragraph after its lines ("" for none).
Line = tuple[str, tuple[str, ...]]
Section = tuple[str, tuple[Line, ...], str]


def dag_section(dag_id: str, schedule: str, *more: Line, heading: str = "**The DAG**",
                schedule_checks: tuple[str, ...] = ("schedule.timing",)) -> Section:
    """The usual first section of a checklist: dag_id, ``schedule`` (its line, verified by
    ``schedule_checks``), start_date and catchup as the course sets them, then ``more`` lines."""
    return (heading, ((f'`dag_id="{dag_id}"`', ("import.dag_id",)), (schedule, schedule_checks),
                      ('`start_date=pendulum.datetime(2023, 10, 1, tz="UTC")`', ("schedule.start_date",)),
                      ("`catchup=False`", ("schedule.catchup",)), *more), "")


def chain(*tasks: str) -> frozenset[tuple[str, str]]:
    """The edges of ``a >> b >> c``."""
    return frozenset(zip(tasks, tasks[1:], strict=False))


@dataclass(frozen=True)
class Arrival:
    """A file the grader makes appear during a run: ``arrivals/<source>`` becomes
    ``data/<target>`` ``after[i]`` seconds after run ``i`` started; None: it never arrives. The
    runs are made in a random order; ``Facts.run`` is the one of ``after[0]``, ``Facts.rerun``
    the one of ``after[1]``."""

    source: str
    target: str
    after: tuple[float | None, ...]


@dataclass(frozen=True)
class Exercise:
    """The contract of one exercise, as its README states it."""

    id: str
    title: str
    dag_id: str
    edges: frozenset[tuple[str, str]]
    schedule: str
    schedule_text: str
    checks: tuple[Check, ...]
    points: float  # what the checks' points add up to: a check added or removed shows here
    tasks: frozenset[str] = frozenset()  # default: the tasks the edges name
    checklist: tuple[Section, ...] = ()  # the README's checklist; gives each check its line
    start_date: date = date(2023, 10, 1)
    catchup: bool = False
    expected_from: Callable[[Path], dict[str, Any]] = field(default=lambda _: {})
    email_to: str = "team@company.com"
    warehouse_table: str | None = None
    runs: int = 1  # 2: run again on the next day, to see whether a re-run duplicates rows
    # Other DAGs of the same file that the grader reads too (their structure in ``Facts.others``).
    also_dags: tuple[str, ...] = ()
    # After the graded runs, the grader creates the runs their asset events trigger, as Airflow's
    # scheduler does, and runs them (``Facts.triggered``).
    asset_runs: bool = False
    # A file that arrives while a run waits for it: copied from the exercise's ``arrivals/``
    # folder to ``data/<target>`` that many seconds after each run starts (None: never).
    arrival: Arrival | None = None
    # "airflow", or "prefect"/"dagster": graded in .venv-orchestrators (autograder.orchestrators)
    engine: str = "airflow"

    def __post_init__(self) -> None:
        if not self.tasks:
            object.__setattr__(self, "tasks", frozenset(t for edge in self.edges for t in edge))
        lined: dict[str, tuple[str, str]] = {}
        for heading, lines, _ in self.checklist:
            for text, ids in lines:
                for check_id in ids:
                    if check_id in lined:
                        raise SpecError(f"{self.id}: check {check_id!r} verifies two checklist "
                                        f"lines; a check verifies one line (split it in two).")
                    lined[check_id] = (heading, text)
        unknown = sorted(set(lined) - {c.id for c in self.checks})
        if unknown:
            raise SpecError(f"{self.id}: the checklist names {', '.join(map(repr, unknown))}, which "
                            "is no check of this exercise.")
        checks = tuple(replace(c, section=lined[c.id][0], line=lined[c.id][1], visibility="learner")
                       if c.id in lined else c for c in self.checks)
        object.__setattr__(self, "checks", checks)

    @property
    def run_date(self) -> datetime:
        """The logical date of the graded run: a slot of the schedule itself, in the afternoon
        when the schedule has one."""
        # croniter, not Airflow: importing Airflow here would reconfigure the grader's logging.
        # Imported here: the grade command that the lab's grader answers never needs it.
        from croniter import croniter

        return croniter(self.schedule, RUN_FROM - timedelta(seconds=1)).get_next(datetime)

    @property
    def run_ds(self) -> str:
        """The graded run's date as ``{{ ds }}`` renders it."""
        return self.run_date.date().isoformat()

    @property
    def hidden_data(self) -> Path:
        return HIDDEN / self.id / "data"

    @property
    def sample_data(self) -> Path:
        return EXERCISES / self.id / "data"

    @property
    def arrivals(self) -> Path:
        """The files the grader makes arrive during a run: beside the data, never in it, so that
        no task can read them before they arrive."""
        return self.grading_data.parent / "arrivals"

    @property
    def grading_data(self) -> Path:
        """The hidden data where the course has it; in a learner release, the sample data."""
        return self.hidden_data if self.hidden_data.exists() else self.sample_data


def validate(exercise: Exercise, where: str) -> None:
    """Raise SpecError naming the spec ``where`` and the check when the checks contradict each
    other: an id twice, a prerequisite that is no earlier check, points that miss the total."""
    ids = [c.id for c in exercise.checks]
    seen: set[str] = set()
    for c in exercise.checks:
        if c.id in seen:
            raise SpecError(f"{where}: check {c.id!r} is declared twice; give each check its own id.")
        for need in c.needs:
            if need not in ids:
                raise SpecError(f"{where}: check {c.id!r} needs {need!r}, which is no check of this "
                                f"exercise (its checks: {', '.join(ids)}).")
            if need not in seen:
                raise SpecError(f"{where}: check {c.id!r} needs {need!r}, which runs after it: "
                                f"list {need!r} first.")
        if c.visibility == "learner" and not c.line:
            raise SpecError(f"{where}: check {c.id!r} is in no line of the checklist: name it in "
                            "the line it verifies, or declare it visibility=\"instructor\" (on "
                            "purpose in no line).")
        seen.add(c.id)
    total = round(sum(c.points for c in exercise.checks), 6)
    if total != exercise.points:
        each = ", ".join(f"{c.id} {c.points:g}" for c in exercise.checks if c.points)
        raise SpecError(f"{where}: the checks' points add up to {total:g} ({each}), but the "
                        f"exercise declares points={exercise.points:g}: fix a check's points or "
                        "the total.")


def all_exercises() -> dict[str, Exercise]:
    """Every exercise module's ``EXERCISE``, by id, in course order, each validated."""
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "EXERCISE"):
            validate(module.EXERCISE, f"autograder/exercises/{info.name}.py")
            found[module.EXERCISE.id] = module.EXERCISE
    return found


def exercise_ids() -> list[str]:
    """Every exercise's id, in course order, without loading the exercises: each module is named
    after its exercise (ex02_parallel_regions.py)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name[:2] == "ex")


def resolve(name: str) -> str:
    """The id of the exercise that ``name`` names: its id or a unique prefix of it (``ex02``)."""
    ids = exercise_ids()
    if name in ids:
        return name
    matches = [i for i in ids if i.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise KeyError(f"{name!r} matches several exercises: {', '.join(matches)}. Give more of the id.")
    raise KeyError(f"No exercise {name!r}. Known exercises: {', '.join(ids)}.")


def find(name: str) -> Exercise:
    """An exercise by id or a unique prefix of it (``ex02``)."""
    return all_exercises()[resolve(name)]
