"""The trust boundary: where learner code runs, and who may write which fact.

Every submission is treated as hostile code. It may try to forge its result, read hidden data or
classmates' files, harm the grader or the machine. The grader's answer is to run it the way
Airflow 3 runs DAG code, and to keep every fact a verdict rests on out of its reach.

What runs where
---------------
=====================  ========================================  ===============================
process                runs                                      as
=====================  ========================================  ===============================
grader (trusted)       checks, reports, mail sink, warehouse     the instructor or learner
                       reads, ``grades.csv``
grading process        one per submission, forked from the warm  the same user, its own network
(trusted)              server (or a fresh interpreter): the      namespace
                       metadata DB, the scheduling loop, the
                       in-process Execution API, Airflow's task
                       supervisor (``supervise``)
sandbox                one per submission: imports the file,     a throwaway uid; own mount, pid,
                       sends the DAG serialized                  ipc, uts namespaces (``isolate``)
                       (``inside.parse_main``), then stays as
                       the task launcher (``inside.serve_tasks``)
task process           one per task instance, forked in the      the same uid, in the same
                       sandbox from the imported DAG: Airflow's  sandbox, a process group of its
                       task runner                               own
=====================  ========================================  ===============================

Who may write what
------------------
- The **metadata database** (task states, XComs, the DAG run) lives in the grading process's
  home, which no sandbox can see. A task changes it only through the supervisor's socket, as a
  real Airflow worker does; the supervisor (``supervise.GradedTask``) refuses a write about any
  other task, a Variable, a DAG trigger, and XComs over 1 MB.
- The **DAG's structure** comes out of the parse sandbox as Airflow's serialized JSON (at most
  8 MB, checked by ``protocol``) and is read by Airflow's own deserializer in the grading
  process, which imports only Airflow's registered classes. Run times are computed there, from
  the deserialized timetable. A file that lies about its DAG still has its tasks run, by id, from
  the same file, on the structure it claimed.
- **Asset events** are rows the Execution API writes when a task succeeds, with that task as
  their source; which assets a task updated is its own word, as in Airflow, so the checks read a
  task's outlets from the serialized DAG. The runs those events trigger are created in the grading
  process by the scheduler's own function (``autograder.flows``); a task cannot trigger a run.
- **A file that arrives** during a run is written by the grading process into the submission's
  data folder, from outside the sandbox, which sees it read-only.
- **Mail** is what reached the grader's SMTP sink; **rows** are what the tasks left in the
  warehouse; both are read by the grader after the run.
- The **task launcher** is learner code's process too: what it says is validated
  (``protocol.launcher_message``), a task's pid is the kernel's (``SCM_CREDENTIALS``), and it
  can only say how the submission's own tasks ended, which their own code decides anyway.
- The grading process's **events** (phases, the parse result, the learner's exceptions) go to a
  file in its home. The learner's exceptions and logs are only ever used for messages, always
  escaped (``autograder.text``) and capped.

What a sandbox sees
-------------------
A read-only view of the interpreter, the venv and ``/usr``; its own copy of the submission and
of the data that exercise's tasks read (never ``autograder/``, ``solutions/``, the repository,
other submissions, the output folder, the template database); a writable home and warehouse
folder; a private ``/tmp``, ``/proc`` and minimal ``/dev``; an allow-listed environment; no
network but the forwarded mail sink and warehouse (``network``); rlimits on CPU, memory, file
size, processes and open files; no file descriptor of the grader's. Its processes die with it:
pid 1 of its namespace has ``PR_SET_PDEATHSIG``, and the grading process is killed at the
overall deadline.

Where the kernel's namespaces are not available (not root, macOS), ``isolate.available()``
says why: ``make grade`` grades the learner's own file anyway and says "not isolated" in the
report; ``grade-class`` and the grading DAG refuse unless told ``--no-sandbox``.

The private Airflow functions the grader relies on are named in one place,
``supervise._seams``, with the reason for each.
"""
