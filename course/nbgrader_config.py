"""nbgrader settings of the course (found by JupyterLab through JUPYTER_CONFIG_PATH=course/).

Instructors build releases with `make release`; the notebooks are the nbgrader "source", all
in one assignment named after the lesson.
"""

from pathlib import Path

c = get_config()  # noqa: F821 - provided by traitlets when nbgrader loads this file

ROOT = Path(__file__).resolve().parent.parent
c.CourseDirectory.course_id = "airflow3-orchestration"
c.CourseDirectory.root = str(ROOT / ".cache" / "nbgrader")
c.CourseDirectory.db_url = f"sqlite:///{ROOT / '.cache' / 'nbgrader' / 'gradebook.db'}"
c.Exchange.root = str(ROOT / ".cache" / "nbgrader" / "exchange")
c.Exchange.path_includes_course = True
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
