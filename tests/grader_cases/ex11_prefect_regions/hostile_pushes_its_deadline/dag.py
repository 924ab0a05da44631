"""Hostile: at import, tells the grader every second, on every file descriptor it has, that a new
phase begins, to push the grader's deadline back for ever. The grader moves from import to run
once: the import runs out of time."""

import os
import time

while True:
    for fd in range(3, 64):
        try:
            os.write(fd, b'{"event": "phase", "phase": "run"}\n{"event": "phase", "phase": "import"}\n')
        except OSError:
            pass
    time.sleep(1)
