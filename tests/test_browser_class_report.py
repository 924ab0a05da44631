"""The class report in a real browser, opened from the file: charts drawn, no errors, no network.

Playwright drives Debian's Chromium headless; the screenshot lands in
test-artifacts/browser/class-report.png (the README's instructor section shows one).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from autograder.class_report import write_class_report
from autograder.classroom import REFUSED_ID, store_report
from autograder.exercises import all_exercises
from autograder.model import CheckResult, Report

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = Path(os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _class(out: Path) -> None:
    """Twenty students on two exercises: most pass, a few go wrong in different places."""
    exercises = all_exercises()
    for n in range(20):
        student = f"student{n:02}"
        for ex in (exercises["ex01_daily_etl"], exercises["ex02_parallel_regions"]):
            if n == 7 and ex.id == "ex02_parallel_regions":
                checks = [CheckResult(REFUSED_ID, "The submission is a Python file the grader can open",
                                      "fail", 0, 0, "Not graded: dag.py is a symbolic link.")]
            else:
                edges = n % 4 != 0
                runs = n % 5 != 0
                checks = [
                    CheckResult("import.loads", "Airflow can import the DAG file", "pass", 1, 1),
                    CheckResult("structure.edges", "Dependencies are exactly as asked",
                                "pass" if edges else "fail", 2 if edges else 0, 2,
                                "" if edges else "transform does not wait for extract"),
                    CheckResult("run.tasks_succeeded", "A test run succeeds", "pass" if runs else "fail",
                                2 if runs else 0, 2,
                                "" if runs else "The test run did not finish in time: load was running."),
                ]
            store_report(out, student, ex, Report(ex.id, f"{student}/{ex.id}/dag.py", checks, 2.0),
                         "digest")


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}")
def test_class_report_renders_offline_without_errors(tmp_path):
    out = tmp_path / "out"
    _class(out)
    page_path, summaries = write_class_report(out)
    errors, requests = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_path.as_uri())
            charts = page.locator(".chart svg")
            assert charts.count() == len(summaries) == 2
            for i in range(charts.count()):
                box = charts.nth(i).bounding_box()
                assert box and box["width"] > 400 and box["height"] > 150, box
            bars = page.locator(".chart svg [id^=patch_]")
            assert bars.count() > 10  # histogram and pass-rate bars are drawn as patches
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=ARTIFACTS / "class-report.png")
            link = page.locator('a[href="reports/student07/ex02_parallel_regions.json"]').first
            assert link.is_visible()
            link.click()
            page.wait_for_load_state()
            assert page.url.endswith("/reports/student07/ex02_parallel_regions.json")
            assert REFUSED_ID in page.content()
        finally:
            browser.close()
    assert errors == []
    assert all(url.startswith("file://") for url in requests), requests
