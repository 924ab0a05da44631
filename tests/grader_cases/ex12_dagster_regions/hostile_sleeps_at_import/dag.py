"""Hostile: sleeps for ever at import, in a child process too, ignoring SIGTERM. The grader's
deadline ends them all and says the import did not finish in time."""

import os
import signal
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
os.fork()
while True:
    time.sleep(3600)
