"""Declaring checks and running them over the facts a grading run collected.

A check is a plain function over the facts: it returns None (pass), or a string (pass, with a
message worth showing), or raises AssertionError with a message that names the learner's tasks,
lines and values (fail). Any other exception is a bug of the check itself (error). A check whose
prerequisite did not pass is skipped, unless that prerequisite failed with ``KeepGoing`` (a wrong
dag_id, say: the DAG that is there can still be graded). A hint may name the submission as
``{file}``. A check may raise ``Failed(message, hint)`` to give a hint that names what it found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from autograder.model import CheckResult
from autograder.text import plain


class KeepGoing(AssertionError):
    """A failure that the checks needing this one can still work around: they run anyway."""


# learner: the check verifies a line of the exercise's README checklist (the spec's `checklist`
# gives it its ``line``). instructor: on purpose in no line of the checklist (a prerequisite such
# as "the file parses", a safety net, advice); its result is reported all the same.
Visibility = Literal["learner", "instructor"]


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    points: float
    hint: str
    needs: tuple[str, ...]
    func: Callable[[Any], str | None]
    hidden: bool = False  # its messages reveal grading data: withheld in class feedback
    visibility: Visibility = "learner"
    show_pass: bool = False  # what it found is worth showing when it passes (a run's results)
    line: str = ""  # the checklist line (Markdown) it verifies, set by the exercise's checklist
    section: str = ""  # the checklist heading that line goes under


class Failed(AssertionError):
    """A failed check whose hint depends on what was found (it names the learner's task)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def check(id: str, *, title: str, points: float, hint: str = "", needs: Iterable[str] = (),
          hidden: bool = False, visibility: Visibility = "learner", show_pass: bool = False,
          ) -> Callable[[Callable[[Any], str | None]], Check]:
    """Turn a function over the facts into a named check worth ``points``."""
    def wrap(func: Callable[[Any], str | None]) -> Check:
        return Check(id=id, title=title, points=points, hint=hint, needs=tuple(needs), func=func,
                     hidden=hidden, visibility=visibility, show_pass=show_pass)
    return wrap


def evaluate(checks: Iterable[Check], facts: Any) -> list[CheckResult]:
    """Run the checks in order; a failed prerequisite skips the checks that need it."""
    results: list[CheckResult] = []
    status_of: dict[str, str] = {}  # "pass" also for a KeepGoing failure: it blocks nothing
    where = getattr(facts, "shown_as", "") or getattr(facts, "filename", "") or "dag.py"
    title_of: dict[str, str] = {}
    for c in checks:
        title_of[c.id] = c.title
        keep_going = False
        blocked = [n for n in c.needs if status_of.get(n) != "pass"]
        if blocked:
            first = blocked[0]
            result = CheckResult(c.id, c.title, "skip", 0.0, c.points,
                                 f"Checked once \"{title_of.get(first, first)}\" ({first}) passes.")
        else:
            try:
                message = c.func(facts) or ""
                shown = message if c.show_pass else ""  # the spec says whether a pass is worth words
                result = CheckResult(c.id, c.title, "pass", c.points, c.points, plain(shown))
            except AssertionError as exc:
                keep_going = isinstance(exc, KeepGoing)
                hint = getattr(exc, "hint", None) or c.hint.replace("{file}", where)
                result = CheckResult(c.id, c.title, "fail", 0.0, c.points, plain(str(exc)), plain(hint))
            except Exception as exc:  # a defect of the check, not of the submission
                result = CheckResult(c.id, c.title, "error", 0.0, c.points,
                                     plain(f"The grader could not run this check: "
                                           f"{type(exc).__name__}: {exc}. Please report it to "
                                           "your instructor."))
        status_of[c.id] = "pass" if keep_going else result.status
        results.append(result)
    return results
