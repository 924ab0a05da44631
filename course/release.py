"""Build the learner release: `python -m course.release` (what `make release` runs).

The release is the course a learner downloads: student notebooks made by nbgrader (solutions
replaced by stubs, hidden tests removed, cells locked and checksummed), the exercise starters with
their READMEs and sample data, the autograder without its hidden grading data, the lab toolkit,
the environment files, Makefile and README. No reference solution and no hidden data go in.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from pathlib import Path

from course.manifest import lessons
from course.paths import REPO_ROOT

ASSIGNMENT = "week14"
TOP_FILES = ("Makefile", "README.md", "pyproject.toml", "uv.lock", "environment.yml", ".gitignore",
             # Prefect and Dagster's own environment (lesson 15)
             "orchestrators/pyproject.toml", "orchestrators/uv.lock", "environment-orchestrators.yml")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")


def version(root: Path = REPO_ROOT) -> str:
    return tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]


def student_notebooks(root: Path, into: Path) -> list[Path]:
    """Run `nbgrader generate_assignment` on the lesson notebooks; copy the student versions."""
    notebooks = [lesson.notebook for lesson in lessons() if lesson.notebook.exists()]
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp)
        source = course / "source" / ASSIGNMENT
        source.mkdir(parents=True)
        for nb in notebooks:
            shutil.copy(nb, source / nb.name)
        done = subprocess.run(
            [str(Path(sys.executable).parent / "nbgrader"), "generate_assignment", ASSIGNMENT,
             "--force", "--create", f"--course-dir={course}", f"--db=sqlite:///{course / 'gradebook.db'}",
             f"--NbGrader.config_file={root / 'course' / 'nbgrader_config.py'}"],
            capture_output=True, text=True, cwd=course,
            # nbgrader runs `alembic` for its gradebook: our environment's scripts come first.
            env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
        if done.returncode != 0:
            raise RuntimeError(f"nbgrader generate_assignment failed:\n{done.stdout[-3000:]}"
                               f"{done.stderr[-3000:]}")
        into.mkdir(parents=True, exist_ok=True)
        made = []
        for nb in sorted((course / "release" / ASSIGNMENT).glob("*.ipynb")):
            shutil.copy(nb, into / nb.name)
            made.append(into / nb.name)
    return made


def build(root: Path = REPO_ROOT, dist: Path | None = None) -> Path:
    """Build dist/airflow-course-<version>.tar.gz and return its path."""
    dist = dist or root / "dist"
    name = f"airflow-course-{version(root)}"
    stage = dist / name
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    for top in TOP_FILES:
        (stage / top).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / top, stage / top)
    shutil.copytree(root / "course", stage / "course", ignore=SKIP)
    shutil.copytree(root / "autograder", stage / "autograder",
                    ignore=shutil.ignore_patterns("hidden", "__pycache__", "*.pyc"))
    for exercise in sorted((root / "exercises").glob("ex*")):
        target = stage / "exercises" / exercise.name
        target.mkdir(parents=True)
        for part in ("README.md", "dag.py"):
            if (exercise / part).exists():
                shutil.copy(exercise / part, target / part)
        for folder in ("data", "arrivals"):  # arrivals: files the grader delivers during a run
            if (exercise / folder).is_dir():
                shutil.copytree(exercise / folder, target / folder, ignore=SKIP)
    made = student_notebooks(root, stage / "notebooks")
    archive = dist / f"{name}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(stage, arcname=name)
    print(f"Release {archive} ({len(made)} notebooks, "
          f"{len(list((stage / 'exercises').iterdir()))} exercises)")
    return archive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.release", description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=None, help="output folder (default: dist/)")
    args = parser.parse_args(argv)
    build(dist=args.dist)
    return 0


if __name__ == "__main__":
    sys.exit(main())
