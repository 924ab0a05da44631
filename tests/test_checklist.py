"""The checklist in each exercise README is the spec's: generated from it, and checked by it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import checklist
from autograder.exercises import all_exercises

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = all_exercises()
CASES = ROOT / "tests" / "grader_cases"


@pytest.mark.parametrize("exercise", sorted(EXERCISES))
def test_the_readme_checklist_is_the_one_the_spec_gives(exercise: str):
    ex = EXERCISES[exercise]
    assert checklist.current(ex) == checklist.render(ex), (
        f"exercises/{exercise}/README.md and autograder/exercises/{exercise}.py disagree: change the "
        "spec, then run `python -m autograder checklist --write`.")


@pytest.mark.parametrize("exercise", sorted(EXERCISES))
def test_every_readme_line_has_a_check_and_every_check_a_line_or_a_reason(exercise: str):
    ex = EXERCISES[exercise]
    lined = {c.line for c in ex.checks if c.line}
    listed = [text for _, lines, _ in ex.checklist for text, _ in lines]
    assert sorted(lined) == sorted(listed)
    for c in ex.checks:
        assert (c.visibility == "learner") == bool(c.line), c.id
    assert all(text in checklist.render(ex) for text in listed)


@pytest.mark.parametrize("exercise", sorted(EXERCISES))
def test_every_checklist_line_has_a_golden_case_that_breaks_it(exercise: str):
    """For each line, a submission that fails one of the checks behind it, graded for real."""
    failed = set()
    for expected in (CASES / exercise).glob("*/expected.json"):
        verdict = json.loads(expected.read_text())
        failed |= {check for check, status in verdict.get("checks", {}).items() if status == "fail"}
    ex = EXERCISES[exercise]
    unbroken = [text.splitlines()[0] for _, lines, _ in ex.checklist for text, ids in lines
                if not failed & set(ids)]
    assert unbroken == [], f"no golden case in tests/grader_cases/{exercise}/ breaks these lines"


def test_the_command_prints_and_writes_the_checklist(tmp_path):
    done = subprocess.run([sys.executable, "-m", "autograder", "checklist", "ex05"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == checklist.render(EXERCISES["ex05_diamond"])
    assert "- [ ] no arrow between `transform_a` and `transform_b`" in done.stdout
