"""The learner's two web apps in a real browser: JupyterLab runs a lesson, the Airflow UI runs its DAG.

The lab starts as `make lab` starts it (`python -m course lab`, here in a temporary Airflow home) and
Playwright drives Debian's Chromium headless. Each step leaves a screenshot in
test-artifacts/browser/; a failed wait leaves one named FAILED-... and says what it waited for.
Run these alone with `make test-browser`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import ConsoleMessage, Page, Response, expect, sync_playwright

from course import engine
from course import lab as course_lab
from course.paths import HOME_ENV, LabPaths

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = Path(os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 800}

NOTEBOOK = "notebooks/03_first_dag.ipynb"
LESSON_DAG = "l03_hello_world"
LESSON_TASK = "say_hello"
LESSON_LINE = "Hello from Airflow!"  # what say_hello echoes
EXERCISE_DAGS = ("daily_etl", "parallel_regions")  # from the exercises/ DAG bundle
# JupyterLab settings for the test only: no autosave, so running cells never writes into the
# repository's notebook; no news pop-up over the screenshots.
JUPYTERLAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False},
}


@dataclass(frozen=True)
class RunningLab:
    """What a learner reads off the terminal after `make lab`."""

    paths: LabPaths
    airflow_url: str
    jupyter_url: str
    token: str
    password: str


@dataclass
class BrowserLog:
    """Console messages, uncaught page errors and failed requests of one browser page."""

    console: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        self.console.append(f"{message.type}: {message.text}")

    def on_page_error(self, error: Exception) -> None:
        self.page_errors.append(str(error))

    def on_response(self, reply: Response) -> None:
        if reply.status >= 400:
            self.failed_requests.append(f"{reply.status} {reply.request.method} {reply.url}")

    @property
    def errors(self) -> list[str]:
        return [line for line in self.console if line.startswith("error:")] + self.page_errors

    def write(self, path: Path) -> None:
        sections = {"console": self.console, "page errors": self.page_errors,
                    "failed requests (HTTP >= 400)": self.failed_requests}
        path.write_text("".join(f"== {name}\n" + "".join(f"{line}\n" for line in lines)
                                for name, lines in sections.items()))


@pytest.fixture(scope="module")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = (f"No Chromium at {CHROMIUM}: install Debian's package (`apt-get install chromium`) "
                   "or point COURSE_CHROMIUM at a Chromium binary.")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, chromium: Path, artifacts: Path) -> Iterator[RunningLab]:
    """`python -m course lab` on free ports; stopped with Ctrl-C (SIGINT) at the end."""
    work = tmp_path_factory.mktemp("browser-lab")
    paths = LabPaths.default(work / ".airflow")
    for name, values in JUPYTERLAB_SETTINGS.items():
        target = work / "jupyterlab-settings" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    airflow_port = engine.free_port(18480)
    jupyter_port = engine.free_port(18990, taken={airflow_port})
    env = {**os.environ, HOME_ENV: str(paths.home), "COURSE_AIRFLOW_PORT": str(airflow_port)}
    # Options after `lab` go to JupyterLab. They keep its state out of the repository and of
    # ~/.jupyter: settings, workspaces and checkpoints live in the temporary folder.
    argv = [sys.executable, "-m", "course", "lab", f"--ServerApp.port={jupyter_port}",
            "--ServerApp.port_retries=50", f"--LabApp.user_settings_dir={work / 'jupyterlab-settings'}",
            f"--LabApp.workspaces_dir={work / 'workspaces'}",
            f"--FileCheckpoints.checkpoint_dir={work / 'checkpoints'}"]
    log = work / "lab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        found = None
        while found is None:
            text = log.read_text(errors="replace")
            assert proc.poll() is None, f"`python -m course lab` exited early:\n{text[-3000:]}"
            assert time.monotonic() < deadline, \
                f"No JupyterLab URL from `python -m course lab` within 300 s:\n{text[-3000:]}"
            found = re.search(r"(http://127\.0\.0\.1:\d+)/lab\?token=(\w+)", text)
            time.sleep(1)
        state = engine.read_state(paths)
        assert state is not None, f"`python -m course lab` printed a URL but {paths.state_file} is missing"
        yield RunningLab(paths=paths, airflow_url=state.url, jupyter_url=found.group(1),
                         token=found.group(2), password=course_lab.admin_password(paths))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        engine.stop(paths, quiet=True)
        shutil.copy(log, artifacts / "lab.log")


@pytest.fixture
def browser_page(chromium: Path, artifacts: Path, tmp_path: Path,
                 request: pytest.FixtureRequest) -> Iterator[tuple[Page, BrowserLog]]:
    """A fresh headless Chromium profile and one page whose console is recorded."""
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            tmp_path / "chromium-profile", executable_path=str(chromium), args=CHROMIUM_ARGS,
            headless=True, viewport=VIEWPORT)
        page = context.pages[0] if context.pages else context.new_page()
        record = BrowserLog()
        page.on("console", record.on_console)
        page.on("pageerror", record.on_page_error)
        page.on("response", record.on_response)
        try:
            yield page, record
        finally:
            record.write(artifacts / f"console-{request.node.name}.txt")
            context.close()


def shot(page: Page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path)
    return path


@contextmanager
def awaiting(page: Page, what: str) -> Iterator[None]:
    """Turn a failed wait into a message that names what was awaited, with a screenshot."""
    try:
        yield
    except (PlaywrightError, AssertionError) as exc:
        name = "FAILED-" + re.sub(r"\W+", "-", what)[:60].strip("-")
        try:
            where = shot(page, name)
        except PlaywrightError:
            where = "(no screenshot: the page is gone)"
        raise AssertionError(f"Waited in vain for {what}.\nScreenshot: {where}\n{exc}") from None


def seconds(value: float) -> float:
    """Playwright counts in milliseconds."""
    return value * 1000


def lesson_cells() -> list[dict]:
    return json.loads((ROOT / NOTEBOOK).read_text())["cells"]


def lesson_dag_source() -> str:
    """The lesson DAG as the notebook writes it (the body of its %%writefile cell)."""
    for cell in lesson_cells():
        source = "".join(cell["source"])
        first, _, body = source.partition("\n")
        if first.startswith("%%writefile") and first.rstrip().endswith(f'{LESSON_DAG}.py"'):
            return body
    raise AssertionError(f"{NOTEBOOK} has no %%writefile cell for {LESSON_DAG}.py")


def test_jupyterlab_runs_the_first_dag_lesson(lab: RunningLab, browser_page) -> None:
    page, record = browser_page
    cells = lesson_cells()
    first_code = next(i for i, cell in enumerate(cells) if cell["cell_type"] == "code")
    deploy = next(i for i, cell in enumerate(cells) if "lab.deploy_dag(" in "".join(cell["source"]))
    writefile = next(i for i, cell in enumerate(cells) if "".join(cell["source"]).startswith("%%writefile"))

    page.goto(f"{lab.jupyter_url}/lab/tree/{NOTEBOOK}?token={lab.token}")
    dom_cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
    with awaiting(page, f"JupyterLab to show the cells of {NOTEBOOK}"):
        expect(dom_cells.nth(deploy)).to_be_attached(timeout=seconds(90))

    # nbgrader's JupyterLab extensions: the Validate button and the Nbgrader menu.
    # (a <jp-button> web component: its role=button is the <button> inside its shadow root)
    validate = page.locator(".jp-NotebookPanel-toolbar .validate-button")
    with awaiting(page, "nbgrader's Validate button in the notebook toolbar"):
        expect(validate).to_be_visible(timeout=seconds(30))
        expect(validate).to_have_text("Validate")
        expect(validate).to_have_attribute("title", "Validate Assignment")
    with awaiting(page, "the Nbgrader menu with its Assignment List entry"):
        page.locator("#jp-MainMenu").get_by_role("menuitem", name="Nbgrader").click(timeout=seconds(30))
        expect(page.locator('.lm-Menu-item[data-command="nbgrader:open-assignment-list"]')) \
            .to_be_visible(timeout=seconds(10))
    shot(page, "jupyterlab-1-nbgrader-menu")
    page.keyboard.press("Escape")
    shot(page, "jupyterlab-2-notebook-open")

    # Run the first cells as a learner does: select the first code cell, Shift+Enter each cell.
    with awaiting(page, "the first code cell to take the selection"):
        dom_cells.nth(first_code).locator(".jp-InputPrompt").click(timeout=seconds(30))
        expect(dom_cells.nth(first_code)).to_have_class(re.compile(r"\bjp-mod-selected\b"))
    page.keyboard.press("Escape")  # command mode: Shift+Enter runs the cell and moves on
    for _ in range(first_code, deploy + 1):
        page.keyboard.press("Shift+Enter")
    with awaiting(page, f"cells {first_code + 1}-{deploy + 1} of {NOTEBOOK} to finish (prompt [n]:)"):
        expect(dom_cells.nth(deploy).locator(".jp-InputPrompt")) \
            .to_have_text(re.compile(r"\[\d+\]:"), timeout=seconds(150))
    errors = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]')
    assert errors.count() == 0, "A notebook cell raised:\n" + "\n".join(errors.all_inner_texts())

    # lab.start() in the kernel found the running lab (same URL), the DAG file went into its
    # Airflow home, and deploy_dag drew the graph that Airflow parsed.
    status = dom_cells.nth(first_code).locator(".jp-OutputArea-output")
    expect(status).to_contain_text(f"Airflow lab: running at {lab.airflow_url}")
    expect(dom_cells.nth(writefile).locator(".jp-OutputArea-output")) \
        .to_contain_text(str(lab.paths.dags / f"{LESSON_DAG}.py"))
    graph = dom_cells.nth(deploy).locator(".jp-RenderedImage img")
    with awaiting(page, f"the graph of {LESSON_DAG} under the deploy cell"):
        expect(graph).to_be_visible(timeout=seconds(10))
    graph.scroll_into_view_if_needed()
    page.mouse.move(0, 0)
    shot(page, "jupyterlab-3-dag-deployed")

    nbgrader_errors = [line for line in record.errors if "nbgrader" in line.lower()]
    assert nbgrader_errors == [], "nbgrader's extension logged errors:\n" + "\n".join(nbgrader_errors)
    nbgrader_requests = [line for line in record.failed_requests if "nbgrader" in line.lower()]
    assert nbgrader_requests == [], "nbgrader requests failed:\n" + "\n".join(nbgrader_requests)
    assert str(lab.paths.home) not in (ROOT / NOTEBOOK).read_text(), \
        f"JupyterLab saved the test's outputs into {NOTEBOOK}: autosave must stay off in this test"


def test_airflow_ui_lists_triggers_and_logs_the_lesson_dag(lab: RunningLab, browser_page,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    page, record = browser_page
    # The lesson DAG as the notebook deploys it, so this test also runs on its own.
    monkeypatch.setenv(HOME_ENV, str(lab.paths.home))
    monkeypatch.setattr(course_lab, "_client", None)
    assert course_lab.deploy_dag(f"{LESSON_DAG}.py", lesson_dag_source()) == LESSON_DAG
    client = course_lab.client()
    deadline = time.monotonic() + 120
    while not set(EXERCISE_DAGS) <= {dag["dag_id"] for dag in client.dags()}:
        assert time.monotonic() < deadline, \
            f"Airflow did not parse {EXERCISE_DAGS} from the exercises bundle within 120 s"
        time.sleep(1)

    # Airflow 3's simple auth manager: user admin, the password the lab generated.
    page.goto(f"{lab.airflow_url}/")
    with awaiting(page, "the Airflow login form"):
        expect(page.get_by_label("Username")).to_be_visible(timeout=seconds(60))
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(lab.password)
    shot(page, "airflow-1-login")
    page.get_by_role("button", name="Sign in").click()
    with awaiting(page, "the Airflow UI after signing in as admin"):
        expect(page.get_by_test_id("nav-dags-link")).to_be_visible(timeout=seconds(60))

    page.get_by_test_id("nav-dags-link").click()
    with awaiting(page, "the table view button of the DAG list"):
        page.get_by_role("button", name="Show table view").click(timeout=seconds(30))
    listed = page.get_by_test_id("main-content")
    for dag_id in (LESSON_DAG, *EXERCISE_DAGS):
        with awaiting(page, f"{dag_id} in the DAG list"):
            expect(listed.get_by_role("link", name=dag_id, exact=True)).to_be_visible(timeout=seconds(60))
    shot(page, "airflow-2-dag-list")

    listed.get_by_role("link", name=LESSON_DAG, exact=True).click()
    with awaiting(page, f"the page of {LESSON_DAG}"):
        page.wait_for_url(re.compile(rf"/dags/{LESSON_DAG}$"), timeout=seconds(30))
    toggle = page.get_by_test_id("header-card").get_by_test_id("toggle-pause")
    with awaiting(page, f"the pause switch of {LESSON_DAG}"):
        expect(toggle).to_be_visible(timeout=seconds(60))
    if toggle.get_attribute("data-state") != "checked":
        toggle.click()
        with awaiting(page, f"{LESSON_DAG} to be unpaused"):
            expect(toggle).to_have_attribute("data-state", "checked", timeout=seconds(30))

    page.get_by_test_id("trigger-dag-button").click()
    dialog = page.locator('[role="dialog"][data-state="open"]')
    with awaiting(page, "the Trigger Dag dialog"):
        expect(dialog).to_contain_text(f"Trigger Dag - {LESSON_DAG}", timeout=seconds(30))
    shot(page, "airflow-3-trigger-dialog")
    dialog.get_by_test_id("trigger-dag-submit").click()
    with awaiting(page, "the page of the new manual run"):
        page.wait_for_url(re.compile(rf"/dags/{LESSON_DAG}/runs/manual__"), timeout=seconds(60))
    run_id = unquote(page.url.rsplit("/runs/", 1)[1].split("?")[0])

    run_state = page.get_by_test_id("header-card").get_by_test_id("state-badge")
    with awaiting(page, f"run {run_id} to finish (its state badge to read Success or Failed)"):
        expect(run_state).to_have_text(re.compile(r"Success|Failed"), timeout=seconds(150))
    shot(page, "airflow-4-run-finished")
    assert run_state.inner_text().strip() == "Success", (
        f"Run {run_id} of {LESSON_DAG} failed; task states: "
        f"{course_lab.task_states(LESSON_DAG, run_id)}")

    page.get_by_test_id("table-cell-task_display_name") \
        .get_by_role("link", name=LESSON_TASK, exact=True).click()
    # The output line itself, not the "Running command: ... echo" line that quotes it.
    output = page.locator('[data-testid^="virtualized-item-"]') \
        .filter(has_text=re.compile(rf"INFO - {re.escape(LESSON_LINE)}\s*$"))
    with awaiting(page, f"'{LESSON_LINE}' in the log of {LESSON_TASK}"):
        expect(output).to_be_visible(timeout=seconds(60))
    page.mouse.move(VIEWPORT["width"] - 10, VIEWPORT["height"] - 10)  # no tooltip over the log
    shot(page, "airflow-5-task-log")
    assert record.page_errors == [], "The Airflow UI raised:\n" + "\n".join(record.page_errors)
