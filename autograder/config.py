"""Grading settings: one typed object, from defaults, the environment and the command line."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
# The logical date of a run when no exercise gives one, and the reference for schedule comparisons.
RUN_DATE = "2024-01-02T03:00:00+00:00"
SCHEDULE_REFERENCE = "2023-10-01T00:00:00+00:00"
RUN_TIMES = 700  # a whole week of a schedule that runs every 15 minutes, day and night


@dataclass(frozen=True)
class GradeConfig:
    # Wall-clock limits per phase of the child process that runs learner code.
    boot_timeout: float = 90.0
    import_timeout: float = 30.0
    run_timeout: float = 120.0
    # Resource limits of that child process.
    cpu_seconds: int = 600
    memory_bytes: int = 6 << 30
    file_bytes: int = 256 << 20
    # None: a fresh SQLite warehouse per submission; else a PostgreSQL server URL on which the
    # grader may create and drop one database per submission.
    warehouse_url: str | None = None
    cache_dir: Path = field(default_factory=lambda: REPO_ROOT / ".cache" / "autograder")
    keep_sandbox: bool = False
    # Run learner code in the sandbox (namespaces, throwaway uid). Off only by explicit request.
    sandbox: bool = True

    @classmethod
    def from_env(cls, **overrides: object) -> GradeConfig:
        """Defaults, then ``AUTOGRADER_*`` environment variables, then explicit overrides."""
        config = cls()
        env = os.environ
        if env.get("AUTOGRADER_WAREHOUSE_URL"):
            config = replace(config, warehouse_url=env["AUTOGRADER_WAREHOUSE_URL"])
        if env.get("AUTOGRADER_CACHE"):
            config = replace(config, cache_dir=Path(env["AUTOGRADER_CACHE"]))
        if env.get("AUTOGRADER_RUN_TIMEOUT"):
            config = replace(config, run_timeout=float(env["AUTOGRADER_RUN_TIMEOUT"]))
        if env.get("AUTOGRADER_KEEP_SANDBOX"):  # to read what a grading left, when debugging
            config = replace(config, keep_sandbox=True)
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(config, **given)


def default_submission(exercise: Any) -> Path:
    """The learner's file of an exercise (or of an exercise id): exercises/<id>/dag.py."""
    return REPO_ROOT / "exercises" / (exercise if isinstance(exercise, str) else exercise.id) / "dag.py"


def display_path(path: Path) -> str:
    """How a report names a graded file: relative to the course when it is inside it."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
