"""The learner release: built with nbgrader, free of solutions and hidden data, and usable as is."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from course.release import build

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    archive = build(dist=tmp_path_factory.mktemp("dist"))
    into = tmp_path_factory.mktemp("learner")
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    (top,) = into.iterdir()
    return top


def _text_files(root: Path) -> dict[Path, str]:
    found = {}
    for path in root.rglob("*"):
        if path.is_file() and path.suffix in {".py", ".ipynb", ".md", ".csv", ".json", ".yml", ""}:
            try:
                found[path] = path.read_text()
            except UnicodeDecodeError:
                continue
    return found


def _public_lines() -> set[str]:
    """Lines that the course shows learners anyway: starters, READMEs, lesson text, toolkit, the
    autograder's own code, without its hidden data."""
    lines = set()
    for folder in ("exercises", "course", "autograder"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".md", ".yml"} and "hidden" not in path.parts:
                lines |= {line.strip() for line in path.read_text().splitlines()}
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        for cell in json.loads(nb.read_text())["cells"]:
            source = re.sub(r"### BEGIN (SOLUTION|HIDDEN TESTS).*?### END \1", "", "".join(cell["source"]),
                            flags=re.S)
            lines |= {line.strip() for line in source.splitlines()}
    return lines


def _solution_lines() -> set[str]:
    """Lines only the reference solutions have, long enough to matter."""
    public = _public_lines()
    lines = set()
    for solution in (ROOT / "solutions").glob("*/dag.py"):
        for line in solution.read_text().splitlines():
            line = line.strip()
            if len(line) >= 25 and line not in public and not line.startswith(("#", "import ", "from ")):
                lines.add(line)
    return lines


def _notebook_secrets() -> set[str]:
    """Lines inside solution regions and hidden tests of the source notebooks."""
    secrets = set()
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        for cell in json.loads(nb.read_text())["cells"]:
            source = "".join(cell["source"])
            for block in re.findall(r"### BEGIN (?:SOLUTION|HIDDEN TESTS)\n(.*?)### END", source, re.S):
                secrets |= {line.strip() for line in block.splitlines() if len(line.strip()) >= 20}
    return secrets


def test_release_holds_what_a_learner_needs(release):
    for part in ("Makefile", "README.md", "pyproject.toml", "uv.lock", "environment.yml",
                 "orchestrators/pyproject.toml", "orchestrators/uv.lock", "environment-orchestrators.yml",
                 "course/lab.py", "course/orchestrators.py", "autograder/__main__.py"):
        assert (release / part).is_file(), part
    for exercise in (ROOT / "exercises").glob("ex*"):
        for part in ("README.md", "dag.py"):
            assert (release / "exercises" / exercise.name / part).is_file()
    notebooks = sorted(p.name for p in (release / "notebooks").glob("*.ipynb"))
    assert notebooks == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))


def test_release_has_no_solutions_tests_or_hidden_data(release):
    for absent in ("solutions", "tests", "benchmarks", "autograder/hidden", ".ci"):
        assert not (release / absent).exists(), absent
    texts = _text_files(release)
    secret = _solution_lines() | (_notebook_secrets() - _public_lines())
    shipped = set()
    for path, text in texts.items():
        if path.suffix == ".ipynb":  # compare source lines, not JSON-escaped ones
            text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"])
        shipped |= {line.strip() for line in text.splitlines()}
    leaked = secret & shipped
    assert leaked == set()


def test_release_notebooks_are_nbgrader_student_versions(release):
    for nb in (release / "notebooks").glob("*.ipynb"):
        cells = json.loads(nb.read_text())["cells"]
        graded = [c for c in cells if c.get("metadata", {}).get("nbgrader", {}).get("solution")]
        for cell in graded:
            assert "BEGIN SOLUTION" not in "".join(cell["source"]), nb.name
        locked = [c for c in cells if c.get("metadata", {}).get("nbgrader", {}).get("locked")]
        assert all("checksum" in c["metadata"]["nbgrader"] for c in locked
                   if c["metadata"]["nbgrader"].get("grade")), nb.name


def test_make_grade_works_in_the_unpacked_release(release):
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "COURSE_AIRFLOW_HOME")}
    done = subprocess.run(["make", "grade"], cwd=release, env=env, capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    exercises = sorted(p.name for p in (release / "exercises").glob("ex*"))
    for exercise in exercises:
        assert f"{exercise} — exercises/{exercise}/dag.py" in done.stdout
    assert done.stdout.count("NOT YET:") == len(exercises)
    assert "PASS:" not in done.stdout
    assert "Graded on your sample data" in done.stdout
    assert "could not run this check" not in done.stdout
