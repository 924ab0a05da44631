"""The checklist of an exercise's README, generated from its spec: every line is a check's line.

    python -m autograder checklist EXERCISE...          print the checklist the spec gives
    python -m autograder checklist --write [EXERCISE]   write it into exercises/<id>/README.md

The spec's ``checklist`` lists the lines in README order, each with the checks that verify it;
each of those checks then carries its line (``Check.line``). A check in no line is declared
instructor-only on purpose (a prerequisite, a safety net, advice): the registry refuses any other.
"""

from __future__ import annotations

from pathlib import Path

from autograder.exercises import EXERCISES, Exercise

BEGIN = ("<!-- checklist: generated from autograder/exercises/{id}.py by `python -m autograder "
         "checklist --write`; change the spec, not these lines -->")
END = "<!-- end of checklist -->"


def render(exercise: Exercise) -> str:
    """The checklist as it stands in the README, between its markers."""
    parts = [BEGIN.format(id=exercise.id)]
    for heading, lines, note in exercise.checklist:
        parts += [heading] if heading else []
        parts.append("\n".join(f"- [ ] {text}" for text, _ in lines))
        parts += [note] if note else []
    parts.append(END)
    return "\n\n".join(parts)


def readme(exercise: Exercise) -> Path:
    return EXERCISES / exercise.id / "README.md"


def current(exercise: Exercise) -> str | None:
    """The checklist in the README now, markers included; None when it has no markers."""
    text = readme(exercise).read_text(encoding="utf-8")
    start = text.find(BEGIN.format(id=exercise.id))
    end = text.find(END, start)
    return None if start < 0 or end < 0 else text[start:end + len(END)]


def write(exercise: Exercise) -> bool:
    """Put the generated checklist into the README; True when that changed the file."""
    path = readme(exercise)
    text = path.read_text(encoding="utf-8")
    old = current(exercise)
    if old is None:
        raise ValueError(f"{path} has no checklist markers: put the two lines\n"
                         f"{BEGIN.format(id=exercise.id)}\n{END}\nwhere its checklist goes.")
    new = text.replace(old, render(exercise))
    path.write_text(new, encoding="utf-8")
    return new != text
