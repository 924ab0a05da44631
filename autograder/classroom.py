"""Grade a whole class: `python -m autograder grade-class SUBMITTED --out OUT [--jobs N]`.

SUBMITTED follows nbgrader's layout: ``SUBMITTED/<student>/<exercise_id>/dag.py``. Every
submission is graded in isolation (a child forked from one warm Airflow process), several at a
time. Each report is written the moment it is ready, keyed by a hash of what was graded, so an
interrupted run loses nothing and a re-run skips what has not changed.

OUT/
  grades.csv                        student, exercise, status, score, max_score, duration_s
  reports/<student>/<exercise>.json the full report (instructors)
  feedback/<student>/<exercise>.md  what the student sees: hidden checks say only that they failed
  gradebook.csv                     one row per student: every exercise's score, notebook scores
                                    merged in from nbgrader's gradebook when one is given
  class-report.html                 the class at a glance: scores, checks, common mistakes
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from autograder.config import GradeConfig
from autograder.exercises import Exercise, all_exercises
from autograder.grade import grade
from autograder.model import CheckResult, Report
from autograder.runner import WarmServer
from autograder.sandbox import isolate
from autograder.text import markdown_cell

HIDDEN_MESSAGE = ("This check runs your DAG on grading data you have not seen, and it did not pass. "
                  "Re-read the exercise's contract and test your DAG on more varied data.")
REFUSED_ID = "submission.refused"


@dataclass(frozen=True)
class Submission:
    student: str
    exercise: Exercise
    path: Path

    @property
    def key(self) -> str:
        return f"{self.student}/{self.exercise.id}"


def find_submissions(submitted: Path, exercises: dict[str, Exercise] | None = None) -> list[Submission]:
    """Every ``<student>/<exercise_id>/dag.py`` under ``submitted``, in a stable order.

    Symbolic links are listed too (not followed): ``snapshot`` refuses them with a reason.
    """
    exercises = exercises or all_exercises()
    found = []
    for student in sorted(p for p in submitted.iterdir() if p.is_dir()):
        for folder in sorted(p for p in student.iterdir() if p.is_dir()):
            if folder.name in exercises and os.path.lexists(folder / "dag.py"):
                found.append(Submission(student.name, exercises[folder.name], folder / "dag.py"))
    return found


class Refused(ValueError):
    """A submission the grader will not open (a link, a device, a file too large)."""


MAX_SUBMISSION_BYTES = 1 << 20


def snapshot(sub: Submission) -> bytes:
    """The submission's bytes, read once: a regular file in real folders, nothing it links to."""
    for part in (sub.path.parent.parent, sub.path.parent, sub.path):
        if part.is_symlink():
            raise Refused(f"{part.name} is a symbolic link; hand in the file itself, not a link to it")
    try:
        fd = os.open(sub.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise Refused(f"dag.py cannot be opened ({exc.strerror})") from exc
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Refused("dag.py is not a regular file; hand in the Python file itself")
        data = f.read(MAX_SUBMISSION_BYTES + 1)
    if len(data) > MAX_SUBMISSION_BYTES:
        raise Refused(f"dag.py is larger than {MAX_SUBMISSION_BYTES >> 20} MB; a DAG file is a few KB")
    return data


def grader_sources(exercise: Exercise) -> list[Path]:
    """Every file a verdict depends on: the grader's code, the schedule helpers, the data."""
    root = Path(__file__).resolve().parent
    files = sorted(root.rglob("*.py")) + [root.parent / "course" / "schedules.py"]
    data = exercise.grading_data
    files += sorted(p for p in data.rglob("*") if p.is_file()) if data.exists() else []
    return files


def grader_fingerprint(exercise: Exercise) -> str:
    """Changes when any grader source, check or grading data changes: such reports are re-graded."""
    digest = hashlib.sha256()
    for path in grader_sources(exercise):
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def content_hash(data: bytes, fingerprint: str) -> str:
    return hashlib.sha256(data + fingerprint.encode()).hexdigest()[:16]


def refused_report(sub: Submission, reason: str) -> Report:
    return Report(sub.exercise.id, f"{sub.key}/dag.py", [CheckResult(
        REFUSED_ID, "The submission is a Python file the grader can open", "fail", 0, 0,
        f"Not graded: {reason}.")])


def stored_report(out: Path, student: str, exercise_id: str) -> dict:
    """The report stored in ``out`` for one submission, or {} when there is none to read."""
    try:
        return json.loads((out / "reports" / student / f"{exercise_id}.json").read_text())
    except (OSError, ValueError):
        return {}


def pending(subs: list[Submission], out: Path) -> tuple[list[tuple[Submission, str]],
                                                       list[tuple[Submission, dict]]]:
    """Split submissions into (to grade, with their content hash) and (unchanged, with the stored
    report): a report is current when it was made from the same file by the same checks and data."""
    fingerprints: dict[str, str] = {}
    todo, unchanged = [], []
    for sub in subs:
        if sub.exercise.id not in fingerprints:
            fingerprints[sub.exercise.id] = grader_fingerprint(sub.exercise)
        try:
            data = snapshot(sub)
        except Refused as exc:
            todo.append((sub, f"refused:{exc}"))
            continue
        digest = content_hash(data, fingerprints[sub.exercise.id])
        stored = stored_report(out, sub.student, sub.exercise.id)
        if stored.get("content_hash") == digest:
            unchanged.append((sub, stored))
        else:
            todo.append((sub, digest))
    return todo, unchanged


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8", errors="backslashreplace")  # a lone byte never stops a write
    os.replace(tmp, path)


def feedback_markdown(report: Report, exercise: Exercise) -> str:
    """The student's feedback: every check, with the data of hidden checks withheld."""
    hidden = {c.id for c in exercise.checks if c.hidden}
    secret = hidden_lines(exercise)
    lines = [f"# {exercise.title}", "",
             f"**{'Passed' if report.status == 'pass' else 'Not passed yet'}** — "
             f"{report.score:g} / {report.max_score:g} points", "",
             "| | check | points | feedback |", "|---|---|---|---|"]
    mark = {"pass": "✓", "fail": "✗", "error": "!", "skip": "–"}
    for c in report.checks:
        message = c.message
        if c.id in hidden and c.status in ("fail", "error"):
            message = HIDDEN_MESSAGE
        elif c.id in hidden and c.status == "pass":
            message = "Passed on the grading data."
        if c.status in ("fail", "error") and c.hint:
            message = f"{message} *Hint: {c.hint}*"
        points = f"{c.points:g}/{c.max_points:g}" if c.max_points else "advice"
        cell = markdown_cell(withhold(message, secret))
        lines.append(f"| {mark[c.status]} | {c.title} | {points} | {cell} |")
    lines += ["", *[f"> {markdown_cell(withhold(note, secret))}" for note in report.notes]]
    return "\n".join(lines) + "\n"


WITHHELD = "[grading data withheld]"


def hidden_lines(exercise: Exercise) -> list[str]:
    """The lines of the hidden grading data a learner's message could quote, longest first."""
    if not exercise.hidden_data.exists():
        return []
    found = set()
    for path in exercise.hidden_data.rglob("*"):
        if path.is_file():
            found.update(line.strip() for line in path.read_text(errors="replace").splitlines()
                         if len(line.strip()) >= 8)
    return sorted(found, key=len, reverse=True)


def withhold(text: str, secret: list[str]) -> str:
    """``text`` with every quoted line of the hidden data replaced: feedback never carries it."""
    for line in secret:
        if line in text:
            text = text.replace(line, WITHHELD)
    return text


class Progress:
    """One line on a terminal (count, percent, failures, ETA); a line per submission elsewhere."""

    def __init__(self, total: int, stream=sys.stderr) -> None:
        self.total, self.done, self.failed, self.skipped = total, 0, 0, 0
        self.started = time.monotonic()
        self.stream = stream
        self.tty = stream.isatty()

    def update(self, sub: Submission, report: Report | None, skipped: bool = False) -> None:
        self.done += 1
        self.skipped += skipped
        self.failed += bool(report and report.status != "pass")
        graded = self.done - self.skipped
        elapsed = time.monotonic() - self.started
        eta = elapsed / graded * (self.total - self.done) if graded else 0.0
        text = (f"[{self.done}/{self.total}] {100 * self.done // max(self.total, 1)}% · "
                f"{self.failed} not passed · {self.skipped} unchanged · ETA {eta:4.0f} s")
        if self.tty:
            self.stream.write(f"\r{text}  ")
        else:
            verdict = "unchanged" if skipped else (report.status if report else "error")
            self.stream.write(f"{text} · {sub.key}: {verdict}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
        elapsed = time.monotonic() - self.started
        self.stream.write(f"Graded {self.done - self.skipped} submission(s), {self.skipped} unchanged, "
                          f"in {elapsed:.1f} s.\n")


def store_report(out: Path, student: str, exercise: Exercise, report: Report, digest: str | None) -> None:
    """Write the report and the student's feedback, each atomically: a crash loses nothing.

    A report the grader could not finish is stored without its hash, so a re-run grades again.
    """
    if student in ("", ".", "..") or "/" in student or "\0" in student:
        # Folder names never look like this; anything that does must not write outside OUT.
        raise ValueError(f"{readable(student)!r} is not a student folder name")
    crashed = any(c.id == "grader.crashed" for c in report.checks)
    data = {**report.to_dict(), "student": readable(student), "content_hash": None if crashed else digest}
    data["submission"] = readable(data["submission"])
    _write_atomic(out / "reports" / student / f"{exercise.id}.json",
                  json.dumps(data, indent=1, ensure_ascii=False))
    _write_atomic(out / "feedback" / student / f"{exercise.id}.md", feedback_markdown(report, exercise))


def grade_class(submitted: Path, out: Path, jobs: int | None = None, config: GradeConfig | None = None,
                nbgrader_db: Path | None = None, notebooks: bool = True) -> list[dict]:
    """Grade every submission under ``submitted`` into ``out``; return the grades rows.

    Lesson notebooks handed in beside the DAGs are autograded with nbgrader unless ``notebooks``
    is False or an existing gradebook (``nbgrader_db``) is given to merge from.
    """
    config = config or GradeConfig.from_env()
    if config.sandbox and (why := isolate.available()):
        raise SystemExit(f"Cannot grade a class safely: {why}. Run grade-class as root on Linux, "
                         "or pass --no-sandbox if you trust every submission.")
    jobs = jobs or os.cpu_count() or 2
    subs = find_submissions(submitted)
    progress = Progress(len(subs))
    todo, unchanged = pending(subs, out)
    for sub, data in unchanged:
        _write_atomic(out / "feedback" / sub.student / f"{sub.exercise.id}.md",
                      feedback_markdown(Report.from_dict(data), sub.exercise))
        progress.update(sub, None, skipped=True)
    for sub, digest in [t for t in todo if t[1].startswith("refused:")]:
        report = refused_report(sub, digest.removeprefix("refused:"))
        store_report(out, sub.student, sub.exercise, report, None)
        progress.update(sub, report)
    todo = [t for t in todo if not t[1].startswith("refused:")]
    if todo:
        snapshots = Path(tempfile.mkdtemp(prefix="grade-class-"))  # the bytes graded, the grader's
        with WarmServer(config) as server, ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {}
            for sub, digest in todo:
                copy = snapshots / f"{len(futures)}" / "dag.py"
                copy.parent.mkdir()
                try:
                    copy.write_bytes(snapshot(sub))
                except Refused as exc:
                    store_report(out, sub.student, sub.exercise, refused_report(sub, str(exc)), None)
                    continue
                futures[pool.submit(grade, sub.exercise, copy, config, server, f"{sub.key}/dag.py")] \
                    = (sub, digest)
            for future in as_completed(futures):
                sub, digest = futures[future]
                try:
                    report = future.result()
                except Exception as exc:  # a defect of the grader costs this submission only
                    report = Report(sub.exercise.id, str(sub.path), [CheckResult(
                        "grader.crashed", "The grader could run this submission", "error", 0, 0,
                        f"{type(exc).__name__}: {exc}. Grade it again; report it if it persists.")])
                store_report(out, sub.student, sub.exercise, report, digest)
                progress.update(sub, report)
        shutil.rmtree(snapshots, ignore_errors=True)
    progress.close()
    if nbgrader_db is None and notebooks:
        nbgrader_db = autograde_notebooks(submitted, out)
    rows = write_tables(out, subs, nbgrader_db)
    from autograder.class_report import write_class_report

    write_class_report(out)
    return rows


def write_tables(out: Path, subs: Iterable[Submission], nbgrader_db: Path | None = None) -> list[dict]:
    """grades.csv from the stored reports, and the per-student gradebook export."""
    rows = []
    for sub in subs:
        try:
            data = json.loads((out / "reports" / sub.student / f"{sub.exercise.id}.json").read_text())
        except (OSError, ValueError):  # one lost report costs its own row only
            data = {"status": "error", "score": 0, "max_score": "", "duration_s": ""}
        rows.append({"student": readable(sub.student), "exercise": sub.exercise.id,
                     "status": data["status"], "score": data["score"], "max_score": data["max_score"],
                     "duration_s": data["duration_s"]})
    _write_csv(out / "grades.csv", ["student", "exercise", "status", "score", "max_score", "duration_s"],
               rows)
    notebook_scores = read_nbgrader_scores(nbgrader_db) if nbgrader_db else {}
    students = sorted({r["student"] for r in rows} | set(notebook_scores))
    exercises = sorted({r["exercise"] for r in rows})
    notebooks = sorted({nb for scores in notebook_scores.values() for nb in scores})
    book = []
    for student in students:
        mine = {r["exercise"]: r["score"] for r in rows if r["student"] == student}
        nb = notebook_scores.get(student, {})
        entry = {"student": student, **{e: mine.get(e, "") for e in exercises},
                 **{f"notebook:{n}": nb.get(n, "") for n in notebooks}}
        entry["total"] = round(sum(v for v in [*mine.values(), *nb.values()]), 2)
        book.append(entry)
    _write_csv(out / "gradebook.csv",
               ["student", *exercises, *[f"notebook:{n}" for n in notebooks], "total"], book)
    return rows


def notebook_submissions(submitted: Path, assignment: str) -> dict[str, list[Path]]:
    """Student -> the lesson notebooks they handed in under ``<student>/<assignment>/``."""
    found = {}
    for student in sorted(p for p in submitted.iterdir() if p.is_dir()):
        notebooks = sorted((student / assignment).glob("*.ipynb"))
        if notebooks:
            found[student.name] = notebooks
    return found


def autograde_notebooks(submitted: Path, out: Path, timeout: float = 600.0) -> Path | None:
    """Run `nbgrader autograde` on the handed-in lesson notebooks; return the gradebook.

    The notebooks drive a live Airflow, so a lab is started for the class (in OUT) and stopped
    afterwards. nbgrader restores the hidden tests and locked cells from the course's own source.
    """
    from course import engine
    from course.paths import HOME_ENV, REPO_ROOT, LabPaths
    from course.release import ASSIGNMENT

    handed_in = notebook_submissions(submitted, ASSIGNMENT)
    if not handed_in:
        return None
    course = out / "nbgrader"
    db = course / "gradebook.db"
    source = course / "source" / ASSIGNMENT
    source.mkdir(parents=True, exist_ok=True)
    for nb in (REPO_ROOT / "notebooks").glob("*.ipynb"):
        shutil.copy(nb, source / nb.name)
    for student, notebooks in handed_in.items():
        target = course / "submitted" / student / ASSIGNMENT
        target.mkdir(parents=True, exist_ok=True)
        for nb in notebooks:
            shutil.copy(nb, target / nb.name)
    lab = LabPaths.default(course / "lab")
    env = {**os.environ, HOME_ENV: str(lab.home),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    common = [f"--course-dir={course}", f"--db=sqlite:///{db}",
              f"--NbGrader.config_file={REPO_ROOT / 'course' / 'nbgrader_config.py'}"]
    nbgrader = str(Path(sys.executable).parent / "nbgrader")
    engine.start(lab, progress=lambda *_: None)
    try:
        for step in (["generate_assignment", ASSIGNMENT, "--force", "--create"],
                     ["autograde", ASSIGNMENT, "--create", f"--ExecutePreprocessor.timeout={int(timeout)}"]):
            done = subprocess.run([nbgrader, *step, *common], cwd=course, env=env, capture_output=True,
                                  text=True)
            if done.returncode != 0:
                raise RuntimeError(f"nbgrader {step[0]} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    finally:
        engine.stop(lab, quiet=True)
    return db


def read_nbgrader_scores(db: Path) -> dict[str, dict[str, float]]:
    """Student -> notebook -> score from an nbgrader gradebook (after `nbgrader autograde`)."""
    from nbgrader.api import Gradebook

    scores: dict[str, dict[str, float]] = {}
    with Gradebook(f"sqlite:///{db}") as gb:
        for assignment in gb.assignments:
            for notebook in assignment.notebooks:
                for submission in gb.notebook_submissions(notebook.name, assignment.name):
                    scores.setdefault(submission.student.id, {})[notebook.name] = float(submission.score)
    return scores


def readable(name: str) -> str:
    """A folder name as text: bytes that are not UTF-8 shown as backslash escapes (``\\xff``)."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """``value`` as a spreadsheet shows it, never runs it: text that could start a formula gets a
    leading single quote (OWASP's advice on CSV injection). Numbers are left as numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[spreadsheet_safe(c) for c in columns])
        writer.writeheader()
        writer.writerows({spreadsheet_safe(k): spreadsheet_safe(v) for k, v in row.items()}
                         for row in rows)
    os.replace(tmp, path)
