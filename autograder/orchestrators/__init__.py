"""Grading the Prefect and Dagster exercises (ex11, ex12): the same reports, another environment.

Prefect 3 and Dagster cannot be imported beside Airflow, so ``grade()`` hands an exercise whose
spec says ``engine="prefect"`` or ``"dagster"`` to ``client.collect``, which starts
``.venv-orchestrators/bin/python -m autograder.orchestrators.engine`` for the submission. That
process forks the sandbox of ``autograder.sandbox.isolate`` (the same namespaces, throwaway uid,
limits and hidden project as the Airflow exercises) where ``inside`` imports the file and runs it
once on the grading data. The checks are the exercise spec's, run over ``client.FlowFacts`` in
the grader's own process, so ``grade``, ``grade-class``, ``make grade``, the class report and the
feedback treat these exercises like every other one.

Which facts a verdict rests on
------------------------------
Prefect's API lets any client write any flow or task run state, and a Dagster run's events come
from the process that ran the assets: both are the learner's process speaking. So:

=============================  =======================================  =========================
fact                           read by                                  trusted because
=============================  =======================================  =========================
the file's bytes, its syntax,  the grader, from its own copy (``ast``)  learner code never runs
the schedule (``cron=`` of     before the sandbox exists                 in the grader's process
``serve``/``to_deployment``/
``deploy``, ``Cron(...)``),
``.submit()``/``.map()`` calls
warehouse rows                 the grader, from the SQLite file it      only the run can have
                               created for this submission, after the   written them; the checks
                               sandbox has ended (``world.sqlite_rows``: compare them with the
                               a copy of the regular file, no link,     grading data
                               a few rows, a time limit)
how the run ended              the kernel (exit status of the sandbox,  not writable from inside
                               time-outs the grader measured)
what the file declares:        the sandbox (Prefect's ``Flow``/``Task``  the learner's code decides
tasks, retries, assets and     attributes, Dagster's                     them anyway: a file that
their dependencies, retry      ``resolve_asset_graph()``), as JSON on    lies about them gains
policies, asset checks,        a capped pipe                             nothing it could not get
Dagster schedules                                                        by declaring them
errors, task and step states,  the sandbox                              used for messages, escaped
the run's own state                                                     and capped, and the state
                                                                         beside the exit status:
                                                                         the code decides it anyway
=============================  =======================================  =========================

The pipe is the learner's process speaking, and its code can write on it too. The engine keeps
only JSON objects (and moves from import to run once, so no line buys time); the client takes
each account in the shapes ``inside`` writes (``client.STRUCTURE``, ``client.RAN``), once. Any
other line, a second account, or a shape ``inside`` never writes is meddling: a failing check,
never a grader error and never a belief.

"Side by side" is judged from what the file says, never from timings the run reports: Prefect's
``.submit()``/``.map()`` on the region task in the grader's own parse, Dagster's graph (no summary
reads another). The region tasks do no I/O the grader could time from outside the sandbox, and
task-run start and end times are written by the learner's process, so the grader does not
measure their overlap.

No verdict reads Prefect's server or Dagster's instance. The Prefect API server a flow reports to
is started per submission by the engine in a sandbox of its own (``isolate`` again: another
throwaway uid, the interpreter and its own folder only, since learner code talks to it), inside the
submission's private network, with its database copied from a template: a submission can write
only to its own server, and the grader reads nothing from it. ``PREFECT_HOME`` and
``DAGSTER_HOME`` are folders of the
sandbox's own home; telemetry is off (``DO_NOT_TRACK=1``, ``PREFECT_SERVER_ANALYTICS_ENABLED=false``,
``DAGSTER_DISABLE_TELEMETRY=1`` and ``telemetry: enabled: false`` in ``dagster.yaml``).

Speed: the engine imports Prefect (or Dagster) once and forks the server and the sandbox from that
warm interpreter; the server's start-up on a fresh database is about a second, where Prefect's
own ephemeral server (what a bare ``python flow.py`` starts) takes ten or more.

This package's ``__init__`` imports nothing: ``engine`` and ``inside`` run in
``.venv-orchestrators``, ``client`` in Airflow's ``.venv``.
"""
