"""Database settings that the lab's airflow.cfg names by import path (Airflow imports this module)."""

# Python's sqlite3 gives up on a locked database after 5 s. On a busy two-core machine the lab's
# components can hold its SQLite file longer than that, and creating a backfill then failed with
# "database is locked" (and a scheduler that had seen its first runs stopped). Waiting 15 s turns
# most of those failures into a short wait, and stays below the course client's 30 s timeout.
SQLITE_CONNECT_ARGS = {"timeout": 15}
