"""Check factories: what several exercises check, written once and configured by each spec.

Each factory returns a :class:`~autograder.checks.Check`; an exercise spec lists them beside its
own checks. A factory's message names the learner's tasks and values, as every check's does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from autograder.checks import Check, check
from autograder.facts import Facts
from autograder.values import as_int, describe_value, normalize_row, row_differences

Problem = Callable[[Facts, str], str | None]  # why a text is wrong (None: it is right)


def _names(items: Iterable[str]) -> str:
    return ", ".join(f"`{i}`" for i in sorted(items))


def _listed(items: Iterable[str]) -> str:
    """`a`, `b` and `c`."""
    names = [f"`{i}`" for i in sorted(items)]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def edges_equal(points: float = 2, **shown: Any) -> Check:
    """The DAG's dependencies are exactly the exercise's ``edges``."""

    @check("structure.edges", title="Dependencies are exactly as asked", points=points,
           needs=["structure.tasks"],
           hint="Draw the arrows on paper first, then write one `>>` per arrow (or a list for "
                "fan-out).", **shown)
    def edges(facts: Facts) -> None:
        have, want = facts.dag.edges, set(facts.exercise.edges)
        problems = [f"missing {a} >> {b}" for a, b in sorted(want - have)]
        problems += [f"unexpected {a} >> {b}" for a, b in sorted(have - want)]
        assert not problems, "Dependencies differ: " + "; ".join(problems) + "."

    return edges


def schedule_equals(points: float = 1, **shown: Any) -> Check:
    """The DAG's timetable fires at the same times as the exercise's schedule, as Airflow
    computes them (any kind of timetable, any way of writing it)."""

    @check("schedule.timing", title="The schedule runs at the expected times", points=points,
           needs=["import.dag_id"], **shown)
    def timing(facts: Facts) -> None:
        dag, ex = facts.dag, facts.exercise
        assert dag.run_times, (f"Your DAG has no scheduled runs ({dag.schedule_text}). Set "
                               f"`schedule=\"{ex.schedule}\"`.")
        first = [_short(t) for t in dag.run_times[:3]]
        want = [_short(t) for t in dag.expected_run_times[:3]]
        assert dag.run_times == dag.expected_run_times, (
            f"Your schedule runs {dag.schedule_text} (first runs {', '.join(first)}); the exercise asks "
            f"for {ex.schedule_text} ({', '.join(want)}). Set `schedule=\"{ex.schedule}\"` or an "
            "equivalent.")

    return timing


def _short(stamp: str) -> str:
    return datetime.fromisoformat(stamp).strftime("%a %m-%d %H:%M")



def independent(*tasks: str, upstream: str, points: float = 1, **shown: Any) -> Check:
    """None of ``tasks`` waits for another, so that Airflow may run them side by side."""

    @check("structure.parallel", title=f"{_listed(tasks).replace('`', '')} are independent",
           points=points, needs=["structure.tasks"],
           hint=f"Fan out with a list: {upstream} >> [{', '.join(tasks)}].", **shown)
    def parallel(facts: Facts) -> None:
        for a in tasks:
            for b in tasks:
                path = facts.dag.path_between(a, b) if a != b else None
                assert path is None, (
                    f"`{b}` waits for `{a}` via {' >> '.join(path)}: they cannot run at the same "
                    f"time. Make each of {_listed(tasks)} depend only on `{upstream}`.")

    return parallel


def retries(count: int, minutes: int, *, check_id: str = "settings.retries", points: float = 1,
            title: str = "", hint: str = "", why: str = "", **shown: Any) -> Check:
    """Every task has ``retries=count`` and a ``minutes``-minute retry_delay."""

    @check(check_id, title=title or f"Every task retries {count} times, {minutes} minutes apart",
           points=points, needs=["structure.tasks"],
           hint=hint or f"default_args={{'retries': {count}, 'retry_delay': "
                        f"timedelta(minutes={minutes})}} in DAG(...), with `from datetime import "
                        "timedelta`.", **shown)
    def retried(facts: Facts) -> None:
        wrong = []
        for task_id in sorted(facts.exercise.tasks):
            t = facts.dag.tasks[task_id]
            if t.retries != count:
                wrong.append(f"`{task_id}` has retries={t.retries}")
            if t.retry_delay_s != minutes * 60:
                wrong.append(f"`{task_id}` has {retry_delay_text(t.retry_delay_s, minutes)}")
        assert not wrong, ("; ".join(wrong) + f". {why}Every task needs retries={count} and a "
                           f"{minutes}-minute retry_delay.")

    return retried


def retry_delay_text(seconds: float | None, want_minutes: int) -> str:
    """retry_delay as the learner wrote it, in minutes; a bare number is read as seconds."""
    if seconds is None:
        return "no retry_delay"
    text = f"retry_delay={seconds / 60:g} min"
    if seconds == want_minutes:
        text += (f" (a bare {want_minutes:g} means {want_minutes:g} seconds; write "
                 f"`timedelta(minutes={want_minutes:g})`)")
    return text


def operators(kinds: dict[str, tuple[str, str]], *, check_id: str = "structure.operators",
              points: float = 1, title: str = "Each task uses the operator asked for",
              hint: str = "", why: str = "", **shown: Any) -> Check:
    """Each task's operator contains the word asked for: ``{"say_hello": ("Bash", "a BashOperator")}``.

    A word, not a class: a subclass or the operator behind ``@task.bash`` counts too.
    """

    @check(check_id, title=title, points=points, needs=["structure.tasks"], hint=hint, **shown)
    def kinds_match(facts: Facts) -> None:
        wrong = [f"`{t}` is a {facts.dag.tasks[t].operator}, the exercise asks for {name}"
                 for t, (kind, name) in kinds.items() if kind not in facts.dag.tasks[t].operator]
        assert not wrong, "; ".join(wrong) + "." + (f" {why}" if why else "")

    return kinds_match


def warehouse_rows(table: str, columns: tuple[str, ...], want: Callable[[Facts], list[tuple]], *,
                   points: float = 2, hint: str = "", hidden: bool = False,
                   explain: Callable[[list, list], str] | None = None, distinct: bool = False,
                   writer: str = "load", **shown: Any) -> Check:
    """After the run, ``table`` in the warehouse holds exactly the rows ``want(facts)``, which the
    task ``writer`` writes."""

    def default_explain(missing: list, extra: list) -> str:
        shown_rows = [f"missing {r}" for r in missing[:3]] + [f"unexpected {r}" for r in extra[:3]]
        return "; ".join(shown_rows)

    @check("run.warehouse", title=f"Table `{table}` in the warehouse holds exactly the expected rows",
           points=points, needs=["run.tasks_succeeded"], hint=hint, hidden=hidden, show_pass=True,
           **shown)
    def rows_match(facts: Facts) -> str:
        assert facts.warehouse_error is None, (
            f"After the run, {facts.warehouse_error}. `{writer}` must write into table `{table}` of the "
            "database behind the Airflow connection `warehouse`.")
        rows = facts.warehouse_rows or []
        expected = want(facts)
        assert rows or not expected, (
            f"Table `{table}` exists but is empty after the run: `{writer}` wrote no rows. Insert them "
            f"with hook.insert_rows(\"{table}\", rows) after creating the table, in the same task.")
        names = sorted({str(k).lower() for r in rows for k in r})
        assert not set(columns) - set(names), (
            f"Table `{table}` has columns {', '.join(names)}; the exercise asks for "
            f"{', '.join(columns)}.")
        if distinct:
            rows = list({normalize_row(r, columns): r for r in rows}.values())
        missing, extra = row_differences(rows, expected, columns)
        assert not missing and not extra, (
            f"Table `{table}` holds {len(rows)} {'distinct ' if distinct else ''}rows, expected "
            f"{len(expected)}: {(explain or default_explain)(missing, extra)}.")
        return f"{len(rows)} rows in `{table}`."

    return rows_match


def email(*, title: str, subject: Problem, body: Problem | None = None, points: float = 1,
          hint: str = "", needs: Iterable[str] = ("structure.tasks",), **shown: Any) -> Check:
    """The mail sink received a mail to the exercise's ``email_to`` whose subject (and body)
    ``subject(facts, text)`` (and ``body``) find nothing wrong with."""

    @check("run.email", title=title, points=points, needs=needs, hint=hint, show_pass=True, **shown)
    def mailed(facts: Facts) -> str:
        to, mails = facts.exercise.email_to, facts.mails
        assert mails, no_mail(facts)
        for_team = [m for m in mails if to in [r.lower() for r in m["to"]]]
        assert for_team, (f"Emails went to {', '.join(sorted({r for m in mails for r in m['to']}))}, "
                          f"not to {to}.")
        mail = for_team[-1]
        problem = subject(facts, mail["subject"])
        assert problem is None, f"The email to {to} has subject {mail['subject']!r}: {problem}"
        if body is not None:
            problem = body(facts, mail.get("body", ""))
            text = " ".join(str(mail.get("body", "")).split())
            shown_body = text if len(text) <= 200 else text[:200] + "…"
            assert problem is None, f"The body of the email to {to} reads {shown_body!r}: {problem}"
        return f"Received: {mail['subject']!r} to {to}."

    return mailed


def subject_contains(word: str) -> Problem:
    """A subject check: ``word`` appears in it, in any case."""
    def problem(facts: Facts, text: str) -> str | None:
        return None if word.lower() in text.lower() else f"it must contain {word!r}."
    return problem


def airflow2_idioms(check_id: str, *, title: str, points: float, intro: str, outro: str,
                    hint: str = "", **shown: Any) -> Check:
    """No Airflow 2 idiom that ruff's AIR3 rules find is left in the file."""

    @check(check_id, title=title, points=points, needs=["file.parses"], hint=hint,
           show_pass=points > 0, **shown)
    def idioms(facts: Facts) -> str:
        found = facts.airflow2_idioms
        assert not found, f"{intro} {idiom_lines(found)} {outro}"
        return "Only Airflow 3 imports and arguments."

    return idioms


def idiom_lines(findings: list[dict]) -> str:
    """``line 4: `airflow.DAG` still works ... . line 9: ...``, one sentence per idiom."""
    by_message: dict[str, list[int]] = {}
    for finding in findings:
        by_message.setdefault(finding["message"], []).append(finding["line"])
    return " ".join(f"Line{'s' if len(set(at)) > 1 else ''} {', '.join(map(str, sorted(set(at))))}: "
                    f"{message}" for message, at in by_message.items())



def no_mail(facts: Facts) -> str:
    """Why no mail reached the sink, from what the run recorded: no guess beyond it."""
    text = "No email was sent during the run."
    run, dag = facts.run, facts.dag
    if dag is None or run is None:
        return text
    senders = sorted(t.task_id for t in dag.tasks.values() if "email" in t.operator.lower())
    if not senders:
        return (f"{text} No task of your DAG is an EmailOperator: send the mail with one "
                "(`from airflow.providers.smtp.operators.smtp import EmailOperator`).")
    states = {t: run.task_states.get(t, "none") for t in senders}
    stopped = {t: s for t, s in states.items() if s != "success"}
    if stopped:
        failed = sorted(t for t, s in run.task_states.items() if s == "failed" and t not in senders)
        return (f"{text} {_names(stopped)} did not run to the end ("
                + ", ".join(f"`{t}` ended {s}" for t, s in sorted(stopped.items()))
                + (f"; {_names(failed)} failed before" if failed else "") + ").")
    return f"{text} {_names(senders)} succeeded, but no mail reached the grader's mail server."



def returns(task_id: str, check_id: str = "run.output", *, title: str, points: float = 2,
            hint: str = "", hidden: bool = False, **shown: Any,
            ) -> Callable[[Callable[[Facts, Any], str]], Check]:
    """A check of what ``task_id`` returned (its XCom) in the graded run::

        @returns("transform", title="transform keeps the adults")
        def transformed(facts, got): ...   # raise AssertionError, or say what passed
    """
    def wrap(judge: Callable[[Facts, Any], str]) -> Check:
        @check(check_id, title=title, points=points, needs=["run.tasks_succeeded"], hint=hint,
               hidden=hidden, show_pass=True, **shown)
        def returned(facts: Facts) -> str:
            return judge(facts, facts.run.xcoms.get(task_id))
        return returned
    return wrap


def returns_rows(task_id: str, key: str, ids: Callable[[Facts], list[int]], file: str, *,
                 dicts: bool = False, check_id: str = "run.extract", points: float = 1,
                 **shown: Any) -> Check:
    """``task_id`` returns every row of ``data/<file>``: one per ``key`` of ``ids(facts)``.

    A row may be a dict (``key`` is looked up, in any case) or, unless ``dicts``, a list or tuple
    (``key`` first).
    """

    def row_id(row: Any) -> int | None:
        if isinstance(row, dict):
            return as_int({str(k).lower(): v for k, v in row.items()}.get(key))
        return as_int(row[0]) if isinstance(row, list | tuple) and row else None

    @returns(task_id, check_id, title=f"{task_id} returns every row of {file}", points=points,
             hint=f"Read the file next to the DAG: Path(__file__).parent / \"data\" / \"{file}\", and "
                  "return its rows: the return value becomes the task's XCom.", **shown)
    def rows(facts: Facts, got: Any) -> str:
        want = sorted(ids(facts))
        assert isinstance(got, list), (f"`{task_id}` returned {describe_value(got)}; return the rows "
                                       f"of {file} as a list so that the next task can pull them.")
        odd = next((r for r in got if not isinstance(r, dict)), None) if dicts else None
        assert odd is None, (f"`{task_id}` returned rows such as {describe_value(odd)}; return each "
                             "row as a dict of its columns (csv.DictReader gives one per row).")
        have = sorted((row_id(r) for r in got), key=lambda i: (i is None, i or 0))
        if all(i is None for i in have):  # rows without their key column: count them
            assert len(got) == len(want), (
                f"On the grading data, `{task_id}` returned {len(got)} rows; {file} holds "
                f"{len(want)}. Return every row of the file next to the DAG.")
            return f"{len(want)} rows of {file}."
        assert have == want, (
            f"On the grading data, `{task_id}` returned {len(got)} rows with {key}s "
            f"{have[:8]}{'…' if len(have) > 8 else ''}; {file} holds {len(want)} rows with {key}s "
            f"{want[:8]}{'…' if len(want) > 8 else ''}. Return every row of the file next to the DAG.")
        return f"{len(want)} rows of {file}."

    return rows
