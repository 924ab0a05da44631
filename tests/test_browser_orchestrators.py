"""Prefect's and Dagster's UIs in a real browser, each showing the run that lesson 15's code made.

The servers start as notebook 15 starts them (`course.orchestrators`, here in a temporary lab home);
the flow and the assets are the files the notebook writes, run once in the Prefect + Dagster
environment. Playwright drives Debian's Chromium headless; every step leaves a screenshot in
test-artifacts/browser-orchestrators/, and a failed wait one named FAILED-....
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect, sync_playwright

from course import orchestrators
from course.paths import HOME_ENV, LabPaths

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "15_prefect_dagster.ipynb"
ARTIFACTS = ROOT / "test-artifacts" / "browser-orchestrators"
CHROMIUM = Path(os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 800}
# Run the notebook's flow once and materialise its assets, as the notebook does; print what ran.
RUN_BOTH = """\
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import dagster as dg
import l15_regions_assets as assets
import l15_regions_flow as flow

state = flow.daily_regions(return_state=True)
result = dg.materialize([*assets.assets, assets.every_region_has_orders], instance=dg.DagsterInstance.get())
print(json.dumps({"flow_run_id": str(state.state_details.flow_run_id), "dagster_run_id": result.run_id,
                  "dagster_ok": result.success, "prefect_state": state.name}))
"""


@dataclass(frozen=True)
class Runs:
    prefect: orchestrators.Service
    dagster: orchestrators.Service
    flow_run_id: str
    flow_run_name: str
    dagster_run_id: str


def written_files() -> dict[str, str]:
    """File name -> body of every %%writefile cell of notebook 15."""
    files = {}
    for cell in json.loads(NOTEBOOK.read_text())["cells"]:
        first, _, body = "".join(cell["source"]).partition("\n")
        if first.startswith("%%writefile"):
            files[first.rstrip().rstrip('"').rsplit("/", 1)[1]] = body
    return files


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = (f"No Chromium at {CHROMIUM}: install Debian's package (`apt-get install chromium`) "
                   "or point COURSE_CHROMIUM at a Chromium binary.")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return CHROMIUM


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[Runs]:
    paths = LabPaths.default(tmp_path_factory.mktemp("orchestrators-lab"))
    files = written_files()
    for folder, name in ((paths.prefect_code, "l15_regions_flow.py"),
                         (paths.dagster_code, "l15_regions_assets.py")):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(files[name])
    try:
        prefect = orchestrators.start("prefect", paths, port=24700)
        dagster = orchestrators.start("dagster", paths, port=23700)
        env = {**os.environ, **orchestrators.settings(paths), HOME_ENV: str(paths.home),
               "PREFECT_API_URL": prefect.api_url, "PYTHONPATH": str(ROOT)}
        done = subprocess.run([str(orchestrators.ENV_DIR / "bin" / "python"), "-c", RUN_BOTH,
                               str(paths.prefect_code), str(paths.dagster_code)],
                              capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        ran = json.loads(done.stdout.strip().splitlines()[-1])
        assert ran["prefect_state"] == "Completed" and ran["dagster_ok"], ran
        import httpx

        reply = httpx.get(f"{prefect.api_url}/flow_runs/{ran['flow_run_id']}", timeout=30)
        yield Runs(prefect, dagster, ran["flow_run_id"], reply.json()["name"], ran["dagster_run_id"])
    finally:
        orchestrators.stop(paths=paths, quiet=True)
    assert not orchestrators.processes(paths), "Prefect or Dagster processes outlived the test"


@pytest.fixture
def page(chromium: Path, tmp_path: Path) -> Iterator[Page]:
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            tmp_path / "chromium-profile", executable_path=str(chromium), args=CHROMIUM_ARGS,
            headless=True, viewport=VIEWPORT)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
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


def test_prefect_ui_lists_the_flow_run_and_shows_its_task_runs(runs: Runs, page: Page) -> None:
    page.goto(f"{runs.prefect.url}/runs")
    with awaiting(page, f"flow run {runs.flow_run_name} in Prefect's run list"):
        expect(page.get_by_text(runs.flow_run_name).first).to_be_visible(timeout=60_000)
    shot(page, "prefect-1-runs")
    page.goto(f"{runs.prefect.url}/runs/flow-run/{runs.flow_run_id}")
    with awaiting(page, f"the page of flow run {runs.flow_run_name}, Completed"):
        expect(page.get_by_text(runs.flow_run_name).first).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Completed").first).to_be_visible(timeout=60_000)
    with awaiting(page, "the task run process_region in the flow run's page"):
        expect(page.get_by_text(re.compile(r"process_region-\w+")).first).to_be_visible(timeout=60_000)
    shot(page, "prefect-2-flow-run")


def test_dagster_ui_shows_the_materialisation_run_and_the_asset_graph(runs: Runs, page: Page) -> None:
    page.goto(f"{runs.dagster.url}/runs/{runs.dagster_run_id}")
    with awaiting(page, f"run {runs.dagster_run_id[:8]} in Dagster's UI, Success"):
        expect(page.get_by_text("Success").first).to_be_visible(timeout=60_000)
        expect(page.get_by_text("sales_orders").first).to_be_visible(timeout=60_000)
    shot(page, "dagster-1-run")
    page.goto(f"{runs.dagster.url}/asset-groups")
    for asset in ("sales_orders", "us_summary", "region_totals", "warehouse_regions"):
        with awaiting(page, f"asset {asset} in Dagster's asset graph"):
            expect(page.get_by_text(asset, exact=True).first).to_be_visible(timeout=60_000)
    shot(page, "dagster-2-asset-graph")
