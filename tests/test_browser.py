"""A real browser (Debian's Chromium through Playwright) clicks through every tab and saves screenshots.

Needs /usr/bin/chromium (``apt-get install chromium``; .ci/run installs it) or $DP_CHROMIUM. Set
$DP_SCREENSHOTS_DIR to keep the screenshots (docs/screenshots holds the ones shown in README.md).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("DP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# How long to wait for the slow steps (Compare's what-if plots, Explore's counterfactuals): generous, since this is
# not a speed test (benchmarks.app_speed is); on a 2-core machine half as fast as usual Explore took over 120 s.
SLOW_MS = 360_000
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update"]


@pytest.fixture(scope="module")
def page(app_url):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        page.goto(app_url)
        page.get_by_text("Dynamic Prompting Lab").first.wait_for()
        yield page
        browser.close()


def screenshot(page, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("DP_SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


def test_train_then_compare_then_explore_then_learn(page, tmp_path):
    page.get_by_role("tab", name="Train").click()
    assert "What 60 s can show on cb" in page.inner_text("body")  # from the committed short-run measurements
    page.get_by_label("Few-shot k (0: the whole train set)").fill("32")
    budget = page.locator("input[type='number'][aria-label*='Budget']")
    budget.fill("15")
    budget.press("Enter")
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Done. Open Compare").wait_for(timeout=180_000)
    assert page.get_by_text("Best dev score of each run").is_visible()
    page.wait_for_timeout(2000)  # the plots redraw after the last update
    assert "DP deep" in page.locator(".vega-embed").first.inner_text()  # both methods' curves, not just the first
    assert "Where DP puts the prompt on the dev set" in page.inner_text("body")
    screenshot(page, "train", tmp_path)

    page.get_by_role("tab", name="Compare").click()
    page.get_by_role("button", name="Pick this dev example").click()
    page.get_by_label("Premise").first.wait_for()
    page.wait_for_function("() => [...document.querySelectorAll('textarea')].some(t => t.value.length > 20)")
    page.get_by_role("button", name="Compare", exact=True).click()
    page.get_by_text(re.compile(r"DP put \d+ of")).wait_for(timeout=60_000)
    # The what-if plots stream in after the predictions, with what moving the prompt changes.
    page.get_by_text(re.compile(r"wherever the prompt goes|the prediction would change at")).first.wait_for(
        timeout=SLOW_MS)
    page.wait_for_timeout(1500)  # the plots redraw
    body = page.inner_text("body")
    assert "Gold label of dev example 0" in body
    assert any(label in body for label in ("entailment", "contradiction", "neutral"))
    assert "prompt tokens after the hypothesis" in body and "trained in this session" in body
    assert any(words in body for words in ("DP is sure", "DP has no preference", "DP leans towards"))
    assert "What if the prompt's place were different" in body
    assert "Where the prompt can go on this backbone" in body and "is an encoder" in body
    assert "both sides on this one" in body  # the backbone picker: the one the run above trained on
    assert page.locator(".dp-token[data-kind='prompt-after'], .dp-token[data-kind='prompt-before']").count() > 0
    screenshot(page, "compare", tmp_path)

    page.get_by_role("tab", name="Explore").click()
    page.get_by_role("button", name="Evaluate on the dev set").click()
    interval = page.locator(r"text=/\d\.\d{3} – \d\.\d{3}/ >> visible=true").first
    interval.wait_for(timeout=SLOW_MS)  # a score's 95 % interval in the table, shown before the counterfactuals
    page.get_by_text(re.compile(r"^On the first \d+ dev items:$")).first.wait_for(timeout=SLOW_MS)  # then those
    page.get_by_text("How decided DP is, and what its choices are worth").wait_for()
    body = page.inner_text("body")
    assert "Where the methods disagree" in body and "per-item oracle (upper bound)" in body
    assert re.search(r"cannot tell DP from the fixed prompt|DP scores \d\.\d{3} (above|below) the fixed prompt", body)
    screenshot(page, "explore", tmp_path)

    page.get_by_role("tab", name="Learn").click()
    page.get_by_text("Soft prompts in four steps").wait_for()
    body = page.inner_text("body")
    assert "What a prompt's place means in each kind of model" in body and "Decoders" in body
    assert page.locator("img").count() >= 2  # the DP figure and the per-family attention grids
    screenshot(page, "learn", tmp_path)
