"""Where the course keeps its files: one typed object, built from the repo root and the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
HOME_ENV = "COURSE_AIRFLOW_HOME"


@dataclass(frozen=True)
class LabPaths:
    """Every file the embedded lab reads or writes, all under one Airflow home."""

    root: Path
    home: Path

    @classmethod
    def default(cls, home: str | os.PathLike[str] | None = None) -> LabPaths:
        """Paths for the given home, else ``$COURSE_AIRFLOW_HOME``, else ``<repo>/.airflow``."""
        chosen = home or os.environ.get(HOME_ENV) or REPO_ROOT / ".airflow"
        return cls(root=REPO_ROOT, home=Path(chosen).expanduser().resolve())

    @property
    def dags(self) -> Path:
        """The lesson DAG folder the notebooks deploy into."""
        return self.home / "dags"

    @property
    def exercises(self) -> Path:
        return self.root / "exercises"

    @property
    def config_file(self) -> Path:
        return self.home / "airflow.cfg"

    @property
    def connections_file(self) -> Path:
        return self.home / "connections.json"

    @property
    def warehouse(self) -> Path:
        """The SQLite database behind the ``warehouse`` connection."""
        return self.home / "warehouse.db"

    @property
    def mail_dir(self) -> Path:
        """Maildir where the SMTP sink stores every message it receives."""
        return self.home / "mail"

    @property
    def state_file(self) -> Path:
        return self.home / "lab.json"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def airflow_log(self) -> Path:
        return self.logs / "standalone.log"

    @property
    def smtp_log(self) -> Path:
        return self.logs / "smtp.log"

    @property
    def password_file(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json.generated"

    @property
    def grader_dir(self) -> Path:
        """The warm grader's folder (mode 0700): its socket's home, log and wake-up file."""
        return self.home / "grader"

    @property
    def grader_log(self) -> Path:
        return self.logs / "grader.log"

    @property
    def grader_socket(self) -> Path:
        """Where the lab's warm grader listens (``make grade`` asks it first)."""
        path = self.grader_dir / "grader.sock"
        if len(os.fsencode(path)) < 100:  # Unix socket paths are limited to about 107 bytes
            return path
        import hashlib
        import tempfile

        folder = Path(tempfile.gettempdir()) / f"course-grader-{os.getuid()}"
        return folder / f"{hashlib.sha256(os.fsencode(self.home)).hexdigest()[:16]}.sock"

    # Prefect and Dagster of the comparison lesson keep their state beside Airflow's.
    @property
    def prefect_home(self) -> Path:
        return self.home / "prefect"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def prefect_code(self) -> Path:
        """Prefect flow files: a flow must live in a file for Prefect to deploy it."""
        return self.home / "prefect_code"

    @property
    def dagster_code(self) -> Path:
        """Dagster definitions files: each one is a code location of the lab's `dagster dev`."""
        return self.home / "dagster_code"

    @property
    def orchestrators_state(self) -> Path:
        return self.home / "orchestrators.json"
